"""Exit statuses, defaults and the LOCKWATCH switch. No imports at all: `import lockwatch` and the
start-up hook (LOCKWATCH=1, in every Python process) read these before anything heavier is needed.
settings.py owns every setting and re-exports these names; import them from there."""
from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads any TYPE_CHECKING so)
if TYPE_CHECKING:
    from collections.abc import Mapping

# -- exit statuses --------------------------------------------------------------------------------
EXIT_USAGE = 2  # bad lockwatch options, a missing script or module, an unreadable report
# `--fail-on-cycle` when the program itself succeeded but a potential deadlock was found; a real
# deadlock ended by the watchdog (`--on-deadlock exit`). Both outside sysexits.h's 64-78 and the
# shell's 126-165, so they are never mistaken for the program's own.
EXIT_POTENTIAL_DEADLOCK = 86
EXIT_DEADLOCK = 87
EXIT_INTERRUPTED = 130  # Ctrl-C, as the shell reports a process killed by SIGINT

# -- defaults -------------------------------------------------------------------------------------
POLICIES = ("exit", "raise", "report")
# A cycle of threads each blocked (untimed) on a lock the next one holds never resolves itself:
# a few seconds only rule out a transient view. PostgreSQL's deadlock_timeout default is 1 s.
DEFAULT_DEADLOCK_TIMEOUT = 5.0
DEFAULT_TOP = 5
MAX_TOP = 1000
# --confirm: re-runs per potential deadlock, and how long a steered thread waits, at most, at the
# acquisition that closes the cycle for the other threads of the cycle to arrive (confirm.py).
DEFAULT_CONFIRM_RUNS = 5
MAX_CONFIRM_RUNS = 100
DEFAULT_CONFIRM_PAUSE = 0.5
# What a real deadlock does, by entry point. The CLI owns the process and never leaves it hanging;
# a test run raises in the blocked test so that the rest of the suite still runs; a program that
# switched lockwatch on itself keeps control of its own life: report, and keep waiting.
DEFAULT_ON_DEADLOCK = {"cli": "exit", "pytest": "raise", "api": "report"}

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("", "0", "false", "no", "off")

# -- the switch -----------------------------------------------------------------------------------
ENV_SWITCH = "LOCKWATCH"  # LOCKWATCH=1 switches lockwatch on at start-up in any Python process


def switched_on(environ: Mapping[str, str]) -> bool:
    return environ.get(ENV_SWITCH, "0").strip().lower() not in FALSE_WORDS
