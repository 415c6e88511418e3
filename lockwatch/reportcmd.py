"""`lockwatch report`: re-render a saved JSON report in another format, or merge several into one."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import click

from .analysis import Report, analyze, apply_policy, canonical_rotation
from .jsonfile import read_json
from .renderers.jsonreport import ReportError, snapshot_from
from .snapshot import Snapshot, merge

EXIT_USAGE = 2
FORMATS = ("text", "json", "html", "dot", "graphml")

HELP = """Re-render saved lockwatch reports, or merge several into one.

\b
  lockwatch report FILE.json [FILE.json ...] [--format FORMAT] [-o PATH]

FILE.json is a report written by `python -m lockwatch --json FILE.json ...`, `pytest --lockwatch
--lockwatch-json FILE.json` or `lockwatch.enable(json=...)`. One file is shown again in the chosen
format. Several files (processes, CI jobs, test shards) are merged by lock creation site and the
lock-order graph of the union is analysed afresh: a cycle whose edges were seen in different
runs (one took A then B, another B then A) is reported at site scope. The real deadlocks and
alerts of all the files are listed together.

\b
Formats:
  text     the report as `python -m lockwatch` prints it (the default)
  json     a JSON report (format lockwatch-report, version 1), e.g. the merged one
  html     one self-contained page: graph, cycles with their stacks, sortable table, charts
  dot      the lock-order graph between creation sites in Graphviz DOT, cycles in red
  graphml  the same graph in GraphML (yEd, Gephi, Cytoscape, networkx)

\b
Examples:
  lockwatch report run.json
  lockwatch report run.json --format html -o lockwatch.html
  lockwatch report shard-*.json --format json -o merged.json
  lockwatch report run.json --format dot | dot -Tsvg -o lockorder.svg

\b
Exit status: 0 after writing the output; 2 for a bad option, or a file that is missing, not JSON,
not a lockwatch report or of a newer version than this lockwatch reads.
"""


@dataclass
class Saved:
    """What a saved report holds besides its snapshot: the watchdog's findings, and the marks
    its run's suppressions and baseline put on its cycles (kept when it is re-rendered)."""

    snapshot: Snapshot
    deadlocks: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    suppressed: dict[str, str] = field(default_factory=dict)  # fingerprint or cycle id -> reason
    known: set[str] = field(default_factory=set)  # fingerprints or cycle ids in the baseline
    baseline_gone: list[dict[str, Any]] = field(default_factory=list)


def read(path: str) -> Saved:
    """A saved report (jsonreport.load, plus what it leaves out). Raises ReportError (one line)."""
    data = read_json(path, "lockwatch report", ReportError)
    saved = Saved(snapshot_from(data, path))
    lists = {key: data.get(key) or [] for key in ("deadlocks", "alerts", "potential_deadlocks", "baseline_gone")}
    for key, value in lists.items():
        if not isinstance(value, list):
            raise ReportError(f"{path} is a damaged lockwatch report ({key} is not a list)")
    saved.deadlocks, saved.alerts = lists["deadlocks"], lists["alerts"]
    saved.baseline_gone = [e for e in lists["baseline_gone"] if isinstance(e, dict)]
    for p in lists["potential_deadlocks"]:
        if not isinstance(p, dict):
            continue
        ids = [str(p["fingerprint"])] if p.get("fingerprint") else []
        locks = p.get("locks")
        if isinstance(locks, list) and all(isinstance(lk, dict) and lk.get("key") for lk in locks):
            ids.append(_cycle_id([str(lk["key"]) for lk in locks]))
        for ident in ids:
            if p.get("suppressed") is not None:
                saved.suppressed[ident] = str(p["suppressed"])
            if p.get("known"):
                saved.known.add(ident)
    return saved


def _cycle_id(keys: list[str]) -> str:
    # Fingerprints are made from paths relative to the working directory or sys.path, so a report
    # re-rendered elsewhere gets other ones: the cycle's own lock keys identify it too.
    return "keys:" + "\n".join(canonical_rotation(keys))


def combine(paths: Sequence[str]) -> Report:
    """One report from saved ones: the same findings for one file; for several, the findings of
    the union of their lock-order graphs (merged by creation site), and their real deadlocks and
    alerts one after the other."""
    loaded = [read(p) for p in paths]
    snap = loaded[0].snapshot if len(loaded) == 1 else merge([s.snapshot for s in loaded])
    report = analyze(snap)
    report.deadlocks = [d for s in loaded for d in s.deadlocks]
    report.alerts = [a for s in loaded for a in s.alerts]
    for p in report.potential_deadlocks:
        ids = (p.fingerprint, _cycle_id([lk.key for lk in p.locks]))
        for s in loaded:
            for ident in ids:
                if ident in s.suppressed and getattr(p, "suppressed", None) is None:
                    p.suppressed = s.suppressed[ident]
                if ident in s.known:
                    p.known = True
    seen = {p.fingerprint for p in report.potential_deadlocks}
    gone: dict[str, dict[str, Any]] = {}
    for s in loaded:
        for entry in s.baseline_gone:
            if entry.get("fingerprint") not in seen:
                gone.setdefault(str(entry.get("fingerprint")), entry)
    report.baseline_gone = list(gone.values())
    return apply_policy(report)  # sorts again: suppressed and known ones after the rest


def render(report: Report, fmt: str, top: int = 5) -> str:
    if fmt == "text":
        from .renderers import text

        return text.render(report, top=top)
    if fmt == "json":
        from .renderers import jsonreport

        return jsonreport.render(report)
    if fmt == "html":
        from .renderers import html

        return html.render(report)
    from .renderers import dot

    return dot.render(report) if fmt == "dot" else dot.graphml(report)


@click.command(help=HELP, context_settings={"help_option_names": ["-h", "--help"],
                                            "max_content_width": 100})
@click.argument("files", nargs=-1, required=True, metavar="FILE.json [FILE.json ...]")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="Output format.")
@click.option("-o", "--output", metavar="PATH", type=click.Path(dir_okay=False),
              help="Write the output to PATH instead of stdout.")
@click.option("--top", type=click.IntRange(0, 1000), default=5, show_default=True,
              help="Rows in each contention table of the text report.")
def command(files: Sequence[str], fmt: str, output: Optional[str], top: int) -> int:
    from .control import check_writable, write_atomic

    if output:
        problem = check_writable(output)
        if problem:
            raise click.BadParameter(problem, param_hint="-o/--output")
    report = combine(files)
    content = render(report, fmt, top)
    if output:
        write_atomic(output, content)
        found = report.potential_deadlocks
        click.echo(f"lockwatch report: wrote {output} ({fmt}, "
                   f"{len(found)} potential deadlock{'' if len(found) == 1 else 's'})", err=True)
    else:
        click.echo(content, nl=False)
    return 0


def main(argv: Optional[Sequence[str]] = None, prog_name: str = "lockwatch report") -> int:
    """`lockwatch report ...`, called by lockwatch.cli.main; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = command.main(args=args, prog_name=prog_name, standalone_mode=False)
    except click.UsageError as exc:
        # One line the user can act on, never a usage dump or a traceback (as lockwatch.cli).
        hint = f" (see '{prog_name} --help')" if not isinstance(exc, click.BadParameter) else ""
        click.echo(f"{prog_name}: error: {exc.format_message()}{hint}", err=True)
        return EXIT_USAGE
    except ReportError as exc:
        click.echo(f"{prog_name}: error: {exc}", err=True)
        return EXIT_USAGE
    except OSError as exc:  # the output vanished between the check and the write
        click.echo(f"{prog_name}: error: cannot write {exc.filename or 'the output'}: "
                   f"{exc.strerror or exc}", err=True)
        return EXIT_USAGE
    except click.exceptions.Abort:
        return 130
    except click.exceptions.Exit as exc:  # --help
        return exc.exit_code
    return int(result or 0)
