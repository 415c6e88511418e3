"""`lockwatch baseline FILE.json ...`: write the potential deadlocks of saved reports as a CI baseline."""
from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from ..analysis import FAILING, build_report
from ..baseline import render
from ..files import check_writable, write_atomic
from ..model import SavedReport, cycle_id, load

HELP = """Write the potential deadlocks found in saved JSON reports (`python -m lockwatch --json`,
`pytest --lockwatch-json`) as a baseline: with `--baseline FILE` (or `baseline = "FILE"` in
[tool.lockwatch]), cycles in the baseline are known and do not fail a run; new ones do.

\b
  python -m lockwatch --json report.json -m myapp.selftest
  lockwatch baseline report.json -o lockwatch-baseline.json
  python -m lockwatch --baseline lockwatch-baseline.json --fail-on-cycle -m myapp.selftest
"""


@click.command(help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("reports", nargs=-1, required=True, metavar="FILE.json...")
@click.option("-o", "--output", metavar="PATH", default="lockwatch-baseline.json", show_default=True,
              help="Where to write the baseline (- for stdout).")
def command(reports: Sequence[str], output: str) -> int:
    loaded: list[SavedReport] = []
    recorded: dict[tuple[str, str], str] = {}
    for path in reports:
        loaded.append(load(path))  # a ReportError is the CLI's one-line error
        for key, fp in loaded[-1].fingerprints.items():
            recorded.setdefault(key, fp)
    report = build_report([s.snapshot for s in loaded])
    # The baseline holds what would fail a run today: the user's own risks, not the standard
    # library's, not guarded or timed ones.
    cycles = [p for p in report.potential_deadlocks if p.triage in FAILING and p.origin == "user"]
    # Fingerprints hold paths relative to the directory the program ran in (the project), which
    # this command need not run in: keep the ones the recording process gave its cycles.
    for p in cycles:
        p.fingerprint = recorded.get((p.scope, cycle_id([lk.key for lk in p.locks])), p.fingerprint)
    text = render(cycles)
    if output == "-":
        sys.stdout.write(text)
    else:
        problem = check_writable(output)
        if problem:
            raise click.BadParameter(problem, param_hint="--output")
        write_atomic(output, text)
        click.echo(f"lockwatch: wrote a baseline of {len(cycles)} potential deadlock(s) to {output}", err=True)
    return 0
