"""The command line: `python -m lockwatch [OPTIONS] script.py [ARGS]...` (or `-m module`)."""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from typing import Callable, Optional, Sequence

import click

from .runner import NoSource, ProgramRunner
from .baseline import BaselineError
from .config import ConfigError
from .session import (CHILDREN_PREFIX, DEFAULT_DEADLOCK_TIMEOUT, EXIT_POTENTIAL_DEADLOCK, Session,
                      Settings, check_writable, load_policy)
from .watchdog import EXIT_DEADLOCK, POLICIES

EXIT_USAGE = 2

HELP = f"""Run a Python program with its locks instrumented, and report the lock-order
inversions (potential deadlocks) and the lock contention it showed, even if it did not hang.

\b
  python -m lockwatch [OPTIONS] script.py [ARGS]...
  python -m lockwatch [OPTIONS] -m module [ARGS]...

Options go before the program; everything after the script (or the module name) is the
program's own arguments. The program runs as under `python`: same sys.argv, sys.path[0],
__main__, exit status and traceback. The report goes to stderr when it ends (also when it raises,
calls sys.exit or is interrupted with Ctrl-C).

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


@click.command(help=HELP, context_settings={"allow_interspersed_args": False,
                                            "help_option_names": ["-h", "--help"],
                                            "max_content_width": 100})
@click.option("-m", "module", metavar="MODULE",
              help="Run library module MODULE as a script, as `python -m MODULE` does.")
@click.option("--json", "json_path", metavar="PATH", type=click.Path(dir_okay=False),
              help="Also write the report as JSON (format lockwatch-report, version 1) to PATH.")
@click.option("--html", "html_path", metavar="PATH", type=click.Path(dir_okay=False),
              help="Also write a self-contained HTML report (lock-order graph, cycles, contention).")
@click.option("--dot", "dot_path", metavar="PATH", type=click.Path(dir_okay=False),
              help="Also write the lock-order graph in Graphviz DOT, cycles marked.")
@click.option("--suppressions", "suppressions_path", metavar="FILE",
              help="Ignore the potential deadlocks listed in FILE (TOML: suppress = [{fingerprint = "
                   "..., reason = ...}, {site = \"*/vendor/*\", reason = ...}]), in addition to "
                   "[tool.lockwatch] in pyproject.toml. Suppressed ones are still counted.")
@click.option("--baseline", "baseline_path", metavar="FILE",
              help="Potential deadlocks listed in this baseline are known: only new ones fail "
                   "(--fail-on-cycle); cycles of the baseline no longer seen are reported as gone. "
                   "Write one with `lockwatch baseline REPORT.json -o FILE`.")
@click.option("--fail-on-cycle", is_flag=True,
              help=f"Exit with status {EXIT_POTENTIAL_DEADLOCK} when a potential deadlock was "
                   "found and the program itself exited 0.")
@click.option("-q", "--quiet", is_flag=True,
              help="No text report on stderr (use with --json or --fail-on-cycle).")
@click.option("--top", type=click.IntRange(0, 1000), default=5, show_default=True,
              help="Rows in each contention table of the text report.")
@click.option("--deadlock-timeout", type=click.FloatRange(0), default=DEFAULT_DEADLOCK_TIMEOUT,
              show_default=True, metavar="SECONDS",
              help="Report threads that really deadlock (each waiting for a lock the next holds) "
                   "once they have all waited this long. 0 switches the watchdog off.")
@click.option("--on-deadlock", type=click.Choice(POLICIES), default="exit", show_default=True,
              help=f"After a real deadlock: exit (write every report, end with status {EXIT_DEADLOCK}), "
                   "raise (lockwatch.DeadlockError in one thread of the cycle) or report (and keep waiting).")
@click.option("--warn-hold", type=click.FloatRange(0, min_open=True), metavar="SECONDS",
              help="Report, while it happens, a lock held longer than SECONDS (with the holder's stack).")
@click.option("--warn-wait", type=click.FloatRange(0, min_open=True), metavar="SECONDS",
              help="Report, while it happens, a thread waiting longer than SECONDS for a lock.")
@click.version_option(package_name="pylockwatch", prog_name="lockwatch",
                      message="%(prog)s %(version)s")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[script.py] [ARGS]...")
def command(module: Optional[str], json_path: Optional[str], html_path: Optional[str],
            dot_path: Optional[str], suppressions_path: Optional[str],
            baseline_path: Optional[str], fail_on_cycle: bool, quiet: bool,
            top: int, deadlock_timeout: float, on_deadlock: str, warn_hold: Optional[float],
            warn_wait: Optional[float], args: Sequence[str]) -> int:
    if module is None and not args:
        raise click.UsageError("nothing to run: give a script, or -m and a module")
    for option, path in (("--json", json_path), ("--html", html_path), ("--dot", dot_path)):
        problem = check_writable(path) if path else None
        if problem:
            raise click.BadParameter(problem, param_hint=option)
    try:
        suppressions, known = load_policy(suppressions_path, baseline_path)
    except (ConfigError, BaselineError) as exc:
        raise click.UsageError(str(exc))
    target, prog_args = (module, list(args)) if module is not None else (args[0], list(args[1:]))
    runner = ProgramRunner(target, prog_args, as_module=module is not None)
    import lockwatch

    lockwatch._take_over()  # LOCKWATCH=1 in our own environment: this run is the session
    children = tempfile.mkdtemp(prefix=CHILDREN_PREFIX)
    session = Session(Settings(json_path=json_path, html_path=html_path, dot_path=dot_path,
                               children_dir=children, on_terminate=True,
                               text=not quiet, top=top,
                               deadlock_timeout=deadlock_timeout, on_deadlock=on_deadlock,
                               warn_hold=warn_hold, warn_wait=warn_wait,
                               suppressions=suppressions, baseline=known))

    def finish() -> None:
        # What SIGTERM (and --on-deadlock exit) runs before the process dies: the report, then
        # the children's folder is removed (a forked child leaves it to this process).
        try:
            session.write_reports()
        finally:
            if not session.in_forked_child:
                shutil.rmtree(children, ignore_errors=True)

    session.finish = finish
    # Child processes (subprocesses, multiprocessing workers) switch lockwatch on at start-up
    # through the pylockwatch.pth hook and write their reports where we merge them.
    os.environ.update(_child_environment(children, deadlock_timeout, on_deadlock, warn_hold, warn_wait))
    logging_before = "logging" in sys.modules
    # Patch before anything of the program is imported: `python -m pkg.mod` imports pkg while
    # the module is looked up, and module-level locks are created at import.
    session.start()
    try:
        runner.prepare()
    except NoSource as exc:
        session.stop()
        shutil.rmtree(children, ignore_errors=True)
        raise click.UsageError(str(exc))
    status = runner.run()
    # The program's own atexit handlers (logging's flush, pools' shutdown) take locks too: run
    # them now, while recording, so that they are in the report and run once, before it.
    unwatched = _logging_shutdown_of_lockwatch(logging_before)
    if unwatched is not None:
        atexit.unregister(unwatched)
    atexit._run_exitfuncs()
    if unwatched is not None:
        atexit.register(unwatched)  # at the real exit, after the report, as it would have run
    if session.in_forked_child:
        # The program forked and this child returned from it: its report goes with the
        # children's, and the parent prints the report.
        session.settings.json_path = os.path.join(children, "child-%p.json")
        session.settings.html_path = session.settings.dot_path = None
        try:
            session.write_reports()
        except OSError as exc:
            click.echo(f"lockwatch: cannot write the report of process {os.getpid()}: {exc}", err=True)
        return status
    session.stop()
    try:
        report = session.write_reports()
    except OSError as exc:
        click.echo(f"lockwatch: cannot write the report: {exc}", err=True)
        return status or EXIT_USAGE
    finally:
        shutil.rmtree(children, ignore_errors=True)
    if fail_on_cycle and status == 0 and (report.failing or report.violations):
        return EXIT_POTENTIAL_DEADLOCK
    return status


def _logging_shutdown_of_lockwatch(imported_before: bool) -> Optional[Callable[[], None]]:
    """logging.shutdown, if logging is here only because lockwatch imported it (wrapt imports
    asyncio, which imports logging) and the program gave it no handler: its exit-time flush would
    put two of logging's locks and an edge between them in every report."""
    logging = sys.modules.get("logging")
    if imported_before or logging is None:
        return None
    last_resort = getattr(logging, "lastResort", None)
    for ref in list(getattr(logging, "_handlerList", [])):
        handler = ref()
        if handler is not None and handler is not last_resort:
            return None  # the program configured logging: its shutdown is the program's
    return logging.shutdown


def _end_options_at_module(argv: list[str]) -> list[str]:
    """Insert `--` after `-m MODULE`: as with `python -m`, every later argument is the program's
    own, but click would go on parsing `-m mod --top 3` as lockwatch's --top."""
    takes_value = {name for p in command.params if isinstance(p, click.Option) and not p.is_flag
                   for name in p.opts}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--" or arg == "-" or not arg.startswith("-"):
            return argv  # a script: click itself stops parsing there
        if arg.startswith("--"):
            i += 2 if "=" not in arg and arg in takes_value else 1
            continue
        for k in range(1, len(arg)):  # a cluster of short options: -q, -qm MODULE, -mMODULE
            if "-" + arg[k] not in takes_value:
                continue  # a flag
            end = i + 1 if arg[k + 1:] else i + 2  # the value is the rest, or the next argument
            if arg[k] == "m":
                return argv[:end] + ["--"] + argv[end:] if end <= len(argv) else argv
            i = end - 1
            break
        i += 1
    return argv


def _child_environment(children: str, deadlock_timeout: float, on_deadlock: str,
                       warn_hold: Optional[float], warn_wait: Optional[float]) -> dict[str, str]:
    env = {"LOCKWATCH": "1", "LOCKWATCH_JSON": os.path.join(children, "child-%p.json"),
           "LOCKWATCH_TEXT": "0", "LOCKWATCH_DEADLOCK_TIMEOUT": str(deadlock_timeout),
           "LOCKWATCH_ON_DEADLOCK": on_deadlock}
    if warn_hold:
        env["LOCKWATCH_WARN_HOLD"] = str(warn_hold)
    if warn_wait:
        env["LOCKWATCH_WARN_WAIT"] = str(warn_wait)
    return env


def main(argv: Optional[Sequence[str]] = None, prog_name: str = "lockwatch") -> int:
    """Entry point of the `lockwatch` console script and of `python -m lockwatch`."""
    raw = list(sys.argv[1:] if argv is None else argv)
    if raw[:1] == ["baseline"]:
        from .baselinecmd import main as baseline_main

        return baseline_main(raw[1:], prog_name=f"{prog_name} baseline")
    if raw[:1] == ["report"]:
        # `lockwatch report FILE.json ...`: re-render and merge saved reports (a script that is
        # literally called `report` runs as ./report).
        from .reportcmd import main as report_main

        return report_main(raw[1:], prog_name=f"{prog_name} report")
    try:
        args = _end_options_at_module(raw)
        result = command.main(args=args, prog_name=prog_name, standalone_mode=False)
    except click.UsageError as exc:
        # One line the user can act on, never a usage dump or a traceback.
        hint = f" (see '{prog_name} --help')" if not isinstance(exc, click.BadParameter) else ""
        click.echo(f"{prog_name}: error: {exc.format_message()}{hint}", err=True)
        return EXIT_USAGE
    except click.exceptions.Abort:
        return 130
    except click.exceptions.Exit as exc:  # --help, --version
        return exc.exit_code
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(prog_name=os.path.basename(sys.argv[0])))
