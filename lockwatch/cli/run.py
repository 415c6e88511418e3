"""`python -m lockwatch [OPTIONS] script.py [ARGS]` (or `-m module`): options in, one control call out
(program.run; the plain form without options is parsed there, without click)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import click

from ..settings import (
    DEFAULT_CONFIRM_PAUSE,
    DEFAULT_CONFIRM_RUNS,
    DEFAULT_DEADLOCK_TIMEOUT,
    DEFAULT_ON_DEADLOCK,
    DEFAULT_TOP,
    EXIT_DEADLOCK,
    EXIT_POTENTIAL_DEADLOCK,
    EXIT_USAGE,
    FIELD_BY_KEY,
    MAX_TOP,
    POLICIES,
    Field,
)
from .program import cli_where, run

HELP = f"""Run a Python program with its locks instrumented, and report the lock-order
inversions (potential deadlocks) and the lock contention it showed, even if it did not hang.

\b
  python -m lockwatch [OPTIONS] script.py [ARGS]...
  python -m lockwatch [OPTIONS] -m module [ARGS]...

Options go before the program; everything after the script (or the module name) is the
program's own arguments. The program runs as under `python`: same sys.argv, sys.path[0],
__main__, exit status and traceback. The report goes to stderr when it ends (also when it raises,
calls sys.exit or is interrupted with Ctrl-C).

Every option can also be set in [tool.lockwatch] of the nearest pyproject.toml (json, html, dot,
top, show_library, deadlock_timeout, on_deadlock, warn_hold, warn_wait, fail_on_cycle, suppressions, baseline,
text, confirm, confirm_runs, confirm_pause); the command line wins.

\b
  lockwatch report FILE.json [FILE.json ...] [--format text|json|html|dot|graphml] [-o PATH]
      re-render a saved report, or merge several (see `lockwatch report --help`)
  lockwatch baseline FILE.json [FILE.json ...] [-o lockwatch-baseline.json]
      write the potential deadlocks of saved reports as a CI baseline (see --baseline)

\b
Examples:
  python -m lockwatch examples/abba_inversion.py
  python -m lockwatch --json report.json -m mypackage.server --port 8080
  python -m lockwatch --fail-on-cycle tests/stress.py   # for CI

\b
Exit status: the program's own; with --fail-on-cycle, {EXIT_POTENTIAL_DEADLOCK} when the program
succeeded but a potential deadlock was found (one that can hang: not guarded by a gate lock, not
only timed, not in the standard library, not suppressed, not in the baseline) or a lock order
declared with lockwatch.order()/order_key() was broken; {EXIT_DEADLOCK} when the program really deadlocked
(--on-deadlock exit, the default: lockwatch never leaves it hanging); {EXIT_USAGE} for bad
lockwatch options or a missing script or module.
"""


class SettingType(click.ParamType):
    """A command-line value checked by its setting's one validator (settings.FIELDS), so that the
    CLI, enable(), the environment, pyproject.toml and pytest say the same about a bad value."""

    def __init__(self, field: Field, metavar: str) -> None:
        self.field = field
        self.name = metavar

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> Any:
        # A SettingsError goes through click to the CLI's error funnel as the one line it is.
        return self.field.validate(value, cli_where(self.field))


def setting(key: str, metavar: str, help: str, **kwargs: Any) -> Any:
    field = FIELD_BY_KEY[key]
    return click.option(cli_where(field), key, type=SettingType(field, metavar), metavar=metavar,
                        default=None, help=help, **kwargs)


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """`lockwatch --version`: the version and the core the hot path runs on ("c" for the compiled
    lockwatch._core, "python" without it or with LOCKWATCH_PURE_PYTHON=1)."""
    if not value or ctx.resilient_parsing:
        return
    from .. import __version__
    from ..proxies import CORE

    click.echo(f"lockwatch {__version__} (core: {CORE})")
    ctx.exit()


@click.command(help=HELP, context_settings={"allow_interspersed_args": False,
                                            "help_option_names": ["-h", "--help"],
                                            "max_content_width": 100})
@click.option("-m", "as_module", is_flag=True,
              help="Run library module MODULE (the first argument) as a script, as `python -m MODULE` does.")
@setting("json", "PATH", "Also write the report as JSON (format lockwatch-report, version 2) to PATH.")
@setting("html", "PATH", "Also write a self-contained HTML report (lock-order graph, cycles, contention).")
@setting("dot", "PATH", "Also write the lock-order graph in Graphviz DOT, cycles marked.")
@setting("suppressions", "FILE",
         "Ignore the potential deadlocks listed in FILE (TOML: suppress = [{fingerprint = "
         "..., reason = ...}, {site = \"*/vendor/*\", reason = ...}]), in addition to "
         "[tool.lockwatch] in pyproject.toml. Suppressed ones are still counted.")
@setting("baseline", "FILE",
         "Potential deadlocks listed in this baseline are known: only new ones fail "
         "(--fail-on-cycle); cycles of the baseline no longer seen are reported as gone. "
         "Write one with `lockwatch baseline REPORT.json -o FILE`.")
@click.option("--fail-on-cycle", "fail_on_cycle", is_flag=True, default=None,
              help=f"Exit with status {EXIT_POTENTIAL_DEADLOCK} when a potential deadlock was "
                   "found and the program itself exited 0.")
@click.option("--color/--no-color", "color", default=None,
              help="Colour in the text report, or none. [default: on a terminal, unless NO_COLOR is set; "
                   "FORCE_COLOR forces it]")
@click.option("-q", "--quiet", is_flag=True, default=None,
              help="No text report on stderr (use with --json or --fail-on-cycle).")
@click.option("--show-library", "show_library", is_flag=True, default=None,
              help="List the standard library's and installed packages' locks and stack frames with "
                   "the program's in the text and HTML reports (by default they are folded and counted).")
@setting("top", "INTEGER", f"Rows in each contention table of the text report (0 to {MAX_TOP}).  "
                           f"[default: {DEFAULT_TOP}]")
@setting("deadlock_timeout", "SECONDS",
         "Report threads that really deadlock (each waiting for a lock the next holds) once they "
         f"have all waited this long. 0 switches the watchdog off.  [default: {DEFAULT_DEADLOCK_TIMEOUT}]")
@setting("on_deadlock", "[" + "|".join(POLICIES) + "]",
         f"After a real deadlock: exit (write every report, end with status {EXIT_DEADLOCK}), raise "
         "(lockwatch.DeadlockError in one thread of the cycle) or report (and keep waiting).  "
         f"[default: {DEFAULT_ON_DEADLOCK['cli']}]")
@setting("warn_hold", "SECONDS", "Report, while it happens, a lock held longer than SECONDS (with the holder's stack).")
@setting("warn_wait", "SECONDS", "Report, while it happens, a thread waiting longer than SECONDS for a lock.")
@click.option("--confirm", "confirm", is_flag=True, default=None,
              help="After the run, confirm each potential deadlock that can hang: re-run the program "
                   "(same argv, cwd and environment; output captured, shown for a confirmed cycle) with "
                   "the threads of the cycle held back just before the acquisitions that close it, "
                   "until each holds its first lock, then let go together; a real deadlock on that "
                   "cycle is reported as CONFIRMED, else the reason it was not reproduced. Child "
                   "processes the re-runs start and files they write are the user's business: they "
                   "are neither steered nor undone.")
@setting("confirm_runs", "N", f"Confirmation runs per potential deadlock, at most.  [default: {DEFAULT_CONFIRM_RUNS}]")
@setting("confirm_pause", "SECONDS", "How long a held-back thread waits, at most, for the other "
                                     f"threads of the cycle.  [default: {DEFAULT_CONFIRM_PAUSE:g}]")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version, and which core records (c: compiled, python), and exit.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[script.py | MODULE] [ARGS]...")
def command(as_module: bool, quiet: Optional[bool], args: Sequence[str], **given: Any) -> int:
    if not args:
        raise click.UsageError("nothing to run: give a script, or -m and a module")
    return run(args, as_module=as_module, quiet=bool(quiet), given=given)


def split_attached_module(argv: list[str]) -> list[str]:
    """`-mMODULE` (python's spelling, as `-m MODULE`): -m is a flag here, so its module is given as
    the first argument; split the attached form, only among lockwatch's own options."""
    takes_value = {name for p in command.params if isinstance(p, click.Option) and not p.is_flag
                   for name in p.opts}
    out = list(argv)
    i = 0
    while i < len(out):
        arg = out[i]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            break  # the program starts here
        if arg.startswith("--"):
            i += 2 if "=" not in arg and arg in takes_value else 1
            continue
        k = arg.find("m")
        if k > 0 and arg[k + 1:] and all("-" + c not in takes_value for c in arg[1:k]):
            out[i:i + 1] = [arg[:k + 1], arg[k + 1:]]  # -qmMOD -> -qm MOD
            break
        i += 2 if arg in takes_value else 1
    return out
