"""Running a program from the command line once its options are parsed: by click (cli/run.py), or,
for the plain form `[-q] [-m] script.py [ARGS]`, by parse_plain() without importing click."""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Optional

from ..settings import DEFAULT_ON_DEADLOCK, Field, Settings, resolve


def cli_where(field: Field) -> str:
    """How an error names a setting given on the command line: its option."""
    return "--" + field.key.replace("_", "-")


def run(args: Sequence[str], *, as_module: bool, quiet: bool, given: dict[str, Any]) -> int:
    """Run ``args`` (a script, or with ``as_module`` a module, and its arguments) with the settings
    ``given`` on the command line (by setting key; None: not given) over [tool.lockwatch]."""
    from .. import config, control

    project = config.load_project(".")
    if quiet:
        given = {**given, "text": False}
    base = Settings(on_deadlock=DEFAULT_ON_DEADLOCK["cli"])
    # [tool.lockwatch] first, the command line over it (values were validated as they were parsed).
    settings = resolve((project.settings, project.where), (given, cli_where), base=base)
    suppressions, known = control.load_policy(settings, project)
    return control.run_program(args[0], list(args[1:]), as_module=as_module, settings=settings,
                               suppressions=suppressions, baseline=known,
                               annotate=_confirmation(settings, args, as_module))


def _confirmation(settings: Settings, args: Sequence[str], as_module: bool) -> Any:
    """--confirm: what adds the confirmations to the report, after the program's own run (None
    without it). The re-runs get the environment, cwd and arguments of that run."""
    if not settings.confirm:
        return None
    import time

    from .. import confirm

    env, cwd, started = dict(os.environ), os.getcwd(), time.monotonic()
    command = confirm.program_command(args[0], args[1:], as_module)

    def annotate(report: Any) -> None:
        confirm.confirm_report(report, lambda p: confirm.not_attempted(p) or command, env=env, cwd=cwd,
                               runs=settings.confirm_runs, pause=settings.confirm_pause,
                               first_run_s=time.monotonic() - started)
    return annotate


# The plain form. Importing click and building the command's options costs more than anything
# else lockwatch imports but wrapt (measured with benchmarks/startup.py), and every run pays it
# before the program starts. These flags take no value, and everything from the first argument that
# is not one of them belongs to the program (click's allow_interspersed_args=False): parsed here,
# they mean what click makes of them (tests/test_cli.py compares the two). Any other option, an
# attached -mMODULE, `--` or a program named "-" goes to click.
PLAIN_FLAGS = {"-q": "quiet", "--quiet": "quiet", "-m": "as_module"}


def parse_plain(argv: Sequence[str]) -> Optional[tuple[bool, bool, list[str]]]:
    """(as_module, quiet, args) when ``argv`` is the plain form, else None."""
    flags = set()
    for i, arg in enumerate(argv):
        if arg in PLAIN_FLAGS:
            flags.add(PLAIN_FLAGS[arg])
        elif arg.startswith("-"):
            return None
        else:
            return "as_module" in flags, "quiet" in flags, list(argv[i:])
    return None  # nothing to run: click says so


def completion_asked(environ: Any = os.environ) -> bool:
    """Is a shell asking click for completions (_LOCKWATCH_COMPLETE and the like)? Then click runs."""
    return any(key.startswith("_") and key.endswith("_COMPLETE") for key in environ)
