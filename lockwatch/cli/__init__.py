"""The `lockwatch` command: one main() for running a program and for the offline report commands."""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional

from ..errors import UserError
from ..settings import EXIT_INTERRUPTED, EXIT_USAGE

if TYPE_CHECKING:
    import click

SUBCOMMANDS = ("report", "baseline")


def main(argv: Optional[Sequence[str]] = None, prog_name: str = "lockwatch") -> int:
    """Entry point of the `lockwatch` console script and of `python -m lockwatch`. Every error the
    user can fix ends here as one line on stderr and status 2, never a traceback from lockwatch."""
    raw = list(sys.argv[1:] if argv is None else argv)
    # `lockwatch report FILE.json`: the offline commands (a script literally called `report` runs
    # as ./report). They import neither the runtime nor the program runner.
    if raw[:1] == ["report"]:
        from .report import command as report_command

        return run_click(report_command, raw[1:], f"{prog_name} report")
    if raw[:1] == ["baseline"]:
        from .baseline import command as baseline_command

        return run_click(baseline_command, raw[1:], f"{prog_name} baseline")
    from .program import completion_asked, parse_plain

    plain = parse_plain(raw)
    if plain is not None and not completion_asked():
        return _run_plain(*plain, prog_name=prog_name)
    from .run import command, split_attached_module

    return run_click(command, split_attached_module(raw), prog_name)


def _run_plain(as_module: bool, quiet: bool, args: list[str], prog_name: str) -> int:
    """The plain form, parsed without click (see program.parse_plain). What the run raises ends
    as it would have ended under click: raised again in a command of click's, through run_click."""
    from .program import run

    try:
        return run(args, as_module=as_module, quiet=quiet, given={})
    except (UserError, OSError, KeyboardInterrupt, EOFError) as exc:
        error = exc
    return run_click(_raising(error), [], prog_name)


def _raising(error: BaseException) -> click.Command:
    import click

    def fail() -> None:
        raise error

    return click.Command("lockwatch", callback=fail)


def run_click(command: click.Command, argv: list[str], prog_name: str) -> int:
    """The one error funnel: run ``command`` and map what it raises to an exit status."""
    import click

    try:
        result = command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except click.UsageError as exc:
        # One line the user can act on, never a usage dump or a traceback.
        hint = f" (see '{prog_name} --help')" if not isinstance(exc, click.BadParameter) else ""
        return _error(prog_name, exc.format_message() + hint)
    except UserError as exc:
        return _error(prog_name, str(exc))
    except OSError as exc:  # an output that vanished between its check and the write
        return _error(prog_name, f"cannot write {exc.filename or 'the output'}: {exc.strerror or exc}")
    except click.exceptions.Abort:
        return EXIT_INTERRUPTED
    except click.exceptions.Exit as exc:  # --help, --version
        return exc.exit_code
    return int(result or 0)


def _error(prog_name: str, message: str) -> int:
    import click

    from ..escapes import printable

    # One line, whatever a path or a report put in the message (a newline, a terminal escape).
    click.echo(f"{prog_name}: error: {printable(message)}", err=True)
    return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(prog_name=os.path.basename(sys.argv[0])))
