"""`lockwatch report`: re-render a saved JSON report in another format, or merge several into one."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import click

from .. import renderers, sources
from ..analysis import build_report
from ..files import check_writable, write_atomic
from ..model import Report, load
from ..renderers import FORMATS
from ..settings import DEFAULT_TOP, FIELD_BY_KEY
from .run import SettingType

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
  json     a JSON report (format lockwatch-report, version 2), e.g. the merged one
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
Exit status: 0 after writing the output; 2 for a bad option, an output that cannot be written, or
a file that is missing, not JSON, not a lockwatch report, damaged, or of a newer version than this
lockwatch reads. A report is untrusted input: no file is read because it names one (source lines
come with the report, or from the .py files under the working directory).
"""


def combine(paths: Sequence[str]) -> Report:
    """One report from saved ones: the same findings for one file; for several, the findings of
    the union of their lock-order graphs (merged by creation site), and their real deadlocks and
    alerts one after the other. Raises ReportError (one line) for a file it cannot use."""
    loaded = [load(p) for p in paths]
    report = build_report([s.snapshot for s in loaded], deadlocks=[d for s in loaded for d in s.deadlocks],
                          alerts=[a for s in loaded for a in s.alerts], saved=loaded)
    # Source lines come with the report; those it lacks, only from the project's own Python files.
    sources.from_project(report)
    return report


@click.command(help=HELP, context_settings={"help_option_names": ["-h", "--help"],
                                            "max_content_width": 100})
@click.argument("files", nargs=-1, required=True, metavar="FILE.json [FILE.json ...]")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="Output format.")
@click.option("-o", "--output", metavar="PATH", type=click.Path(dir_okay=False),
              help="Write the output to PATH instead of stdout.")
@click.option("--top", type=SettingType(FIELD_BY_KEY["top"], "INTEGER"), default=DEFAULT_TOP, show_default=True,
              help="Rows in each contention table of the text report.")
@click.option("--show-library", "show_library", is_flag=True, default=False,
              help="List the standard library's and installed packages' locks and stack frames with "
                   "the program's (text and HTML; by default they are folded and counted).")
def command(files: Sequence[str], fmt: str, output: Optional[str], top: int, show_library: bool) -> int:
    if output:
        problem = check_writable(output)
        if problem:
            raise click.BadParameter(problem, param_hint="-o/--output")
    report = combine(files)
    content = renderers.render(report, fmt, top=top, show_library=show_library)
    if output:
        write_atomic(output, content)
        found = report.potential_deadlocks
        click.echo(f"lockwatch report: wrote {output} ({fmt}, "
                   f"{len(found)} potential deadlock{'' if len(found) == 1 else 's'})", err=True)
    else:
        click.echo(content, nl=False)
    return 0
