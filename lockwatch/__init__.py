"""lockwatch: find lock-order inversions (potential deadlocks) and lock contention in threaded Python."""
from __future__ import annotations

import atexit

from .defaults import DEFAULT_DEADLOCK_TIMEOUT, DEFAULT_ON_DEADLOCK, DEFAULT_TOP, EXIT_DEADLOCK, EXIT_POTENTIAL_DEADLOCK
from .errors import DeadlockError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads any TYPE_CHECKING so)
if TYPE_CHECKING:
    from typing import Any, Callable, Optional

    from ._watching import watching
    from .control import Session
    from .settings import Settings

# Importing lockwatch is cheap and patches nothing: it imports defaults and errors, which import
# nothing (not even typing; nor contextlib: watching() loads on first use). Settings, the core
# (wrapt, the proxies) and the rest are imported when enable() is first called. The start-up hook
# imports lockwatch in every Python process that has LOCKWATCH=1 in its environment, most of which
# never switch it on (they never import threading); the pytest plugin relies on it to cost nothing
# when switched off.

__all__ = ["enable", "disable", "watching", "name", "order", "order_key", "current_session",
           "Session", "Settings",
           "DeadlockError", "EXIT_POTENTIAL_DEADLOCK", "EXIT_DEADLOCK"]
__version__ = "0.1.0"

_session: Optional[Session] = None
_atexit_registered = False


def __getattr__(attr: str) -> Any:  # PEP 562: these load on first use
    if attr == "watching":
        from ._watching import watching

        globals()["watching"] = watching
        return watching
    if attr == "Session":
        from .control import Session

        return Session
    if attr == "Settings":
        from .settings import Settings

        return Settings
    raise AttributeError(f"module 'lockwatch' has no attribute {attr!r}")


def enable(*, json: Optional[str] = None, html: Optional[str] = None, dot: Optional[str] = None,
           report_at_exit: bool = True, text: bool = True, top: int = DEFAULT_TOP, show_library: bool = False,
           deadlock_timeout: float = DEFAULT_DEADLOCK_TIMEOUT, on_deadlock: str = DEFAULT_ON_DEADLOCK["api"],
           warn_hold: Optional[float] = None, warn_wait: Optional[float] = None,
           suppressions: Optional[str] = None, baseline: Optional[str] = None) -> Session:
    """Instrument the threading lock factories from now on, and return the session.

    Locks created before this call are not seen: call it as early as possible (before the modules
    that create locks at import are imported). Calling it again returns the running session.
    With ``report_at_exit`` the text report (unless ``text=False``) goes to stderr when the
    interpreter exits, also on SIGTERM when the program has no handler of its own, and the JSON,
    HTML and Graphviz DOT reports to the ``json``, ``html`` and ``dot`` paths, when given (``%p``
    in a path becomes the process id; a forked child writes ``<path>.<pid>`` and no text).

    A watchdog reports threads that really deadlock (a cycle of threads each waiting for a lock
    the next holds) once they have all waited ``deadlock_timeout`` seconds (0 switches it off);
    ``on_deadlock`` says what happens then: "report" (report and keep waiting), "raise" (raise
    lockwatch.DeadlockError in one thread of the cycle, which breaks it) or "exit" (write every
    report and end the process with status 87). ``warn_hold``/``warn_wait`` (seconds) report a
    lock held, or waited for, longer than that while it is still happening. ``suppressions``
    (a TOML file) and ``baseline`` (a baseline file) mark findings as known in the report.
    ``show_library`` lists the standard library's and installed packages' locks and frames with
    the program's in the text and HTML reports (by default they are folded and counted).
    A bad value raises ValueError with one line naming the argument.
    """
    given = {"json": json, "html": html, "dot": dot, "text": text, "top": top, "show_library": show_library,
             "deadlock_timeout": deadlock_timeout, "on_deadlock": on_deadlock, "warn_hold": warn_hold,
             "warn_wait": warn_wait, "suppressions": suppressions, "baseline": baseline}
    return _enable(given, report_at_exit, where=lambda f: f"enable({f.key}=...)")


def _enable(given: dict[str, Any], report_at_exit: bool, where: Callable[[Any], str]) -> Session:
    """enable() with its arguments by setting key (settings.FIELDS), ``where(field)`` naming their
    origin in error messages; also the start-up hook's (LOCKWATCH=1)."""
    global _session, _atexit_registered
    from .control import Session, current
    from .settings import resolve

    if _session is not None and _session.active:
        return _session
    running = current()
    if running is not None:
        return running  # e.g. enable() in a program run by `python -m lockwatch`: join that run
    settings = resolve((given, where))  # a bad value: SettingsError, a ValueError
    if not report_at_exit:
        settings = settings.replace(text=False, json_path=None, html_path=None, dot_path=None)
    suppressions: list[Any] = []
    known: Optional[dict[str, Any]] = None
    if settings.suppressions_path or settings.baseline_path:
        from .config import ProjectConfig
        from .control import load_policy

        suppressions, known = load_policy(settings, ProjectConfig())
    _session = Session(settings, suppressions=suppressions, baseline=known, on_terminate=report_at_exit)
    _session.start()
    if report_at_exit and not _atexit_registered:
        atexit.register(_report_at_exit)
        _atexit_registered = True
    return _session


def disable() -> Optional[Session]:
    """Restore the original factories. Locks already instrumented keep working (and recording);
    the session stays readable. Returns it, or None when lockwatch was not enabled."""
    if _session is not None:
        _session.stop()
    return _session


def current_session() -> Optional[Session]:
    """The session recording now (started by enable(), the CLI or the pytest plugin), or None."""
    from .control import current

    return current() or _session


def _target(lock: Any) -> Any:
    """The instrumented lock behind ``lock`` (a Condition's lock for a Condition), or None."""
    if hasattr(lock, "_serial"):
        return lock
    inner = getattr(lock, "_lock", None)
    return inner if hasattr(inner, "_serial") else None


def name(lock: Any, label: str) -> Any:
    """Give an instrumented lock (or Condition) a readable name for reports; returns the lock.
    The first name given to a lock of a creation site also names the site."""
    from . import recorder

    target = _target(lock)
    if target is None:
        return lock  # not instrumented (created before enable): nothing to name
    recorder.annotate(target, name=label)
    if target._site.explicit_name is None:
        target._site.explicit_name = label
    return lock


def order(*locks: Any) -> None:
    """Declare a lock order: locks created where ``locks[0]`` was are always taken before those
    created where ``locks[1]`` was, and so on (the order is between creation sites, as lockdep's
    is between lock classes). Taking them the other way round is reported at the first such
    acquisition, before the reverse order has ever been seen. Declare it before the locks are
    nested (right after creating them)."""
    from . import recorder

    targets = [_target(lock) for lock in locks]
    if len(targets) < 2:
        raise ValueError("lockwatch.order() needs at least two locks")
    if any(t is None for t in targets):
        raise ValueError("lockwatch.order(): every lock must be instrumented (created while "
                         "lockwatch is enabled)")
    sites = [t._site for t in targets]
    if len({s.index for s in sites}) != len(sites):
        raise ValueError("lockwatch.order(): two of these locks were created at the same site; "
                         "use lockwatch.order_key() to order instances of one site")
    recorder.declare_order(sites, [recorder.lock_name(t) or t._site.display_name() for t in targets])


def order_key(lock: Any, key: Any) -> Any:
    """Declare that instances of ``lock``'s creation site are taken in increasing ``key`` order
    (account locks by account number, say): nesting them the other way round is reported at the
    first such acquisition. Returns the lock."""
    from . import recorder

    target = _target(lock)
    if target is None:
        raise ValueError("lockwatch.order_key(): the lock is not instrumented (created while "
                         "lockwatch is enabled)")
    recorder.annotate(target, key=key)
    return lock


def _take_over() -> None:
    """The CLI or the pytest plugin starts its own session: one switched on at start-up by the
    LOCKWATCH environment variable in the same process stands down without reporting."""
    global _session
    if _session is not None:
        _session.settings = _session.settings.replace(text=False, json_path=None, html_path=None, dot_path=None)
        _session.stop()
        _session = None


def _report_at_exit() -> None:
    session = _session
    if session is not None and (session.settings.text or session.settings.report_paths):
        import sys

        # A program ended by Ctrl-C: python prints the traceback, runs the exit handlers, then
        # kills itself with SIGINT (the exit status shells show as 130) -- unless code run in
        # between exec()s a string, which clears CPython's "unhandled KeyboardInterrupt" flag
        # (run_eval_code_obj), and the status became 1. Writing the report does that (imports
        # that build dataclasses). Code exec'd from a string that raises KeyboardInterrupt sets
        # the flag again.
        interrupted = isinstance(getattr(sys, "last_value", None), KeyboardInterrupt)
        failed = getattr(sys, "last_value", None) is not None  # the status is 1 (or SIGINT's) already
        try:
            if not session.write_reports_or_warn() and not failed:
                _fail_exit_status()
        finally:
            if interrupted:
                try:
                    exec("raise KeyboardInterrupt")
                except KeyboardInterrupt:
                    pass


class _FailsFinalFlush:
    """sys.stderr, except that the interpreter's own flush of it after the exit handlers fails
    once: CPython then exits with status 120 (Py_FinalizeEx's "could not flush the standard
    streams", 3.6+; a failing stderr flush prints nothing). An exit handler cannot set the exit
    status otherwise: SystemExit raised in one is ignored, and os._exit would skip the handlers
    registered before it and the interpreter's finalization (unclosed files' buffers)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._armed = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    @property
    def closed(self) -> bool:
        return bool(self._stream.closed)

    def write(self, text: str) -> int:
        return int(self._stream.write(text))

    def flush(self) -> None:
        import sys

        self._stream.flush()
        try:
            sys._getframe(1)  # called by Python code: an exit handler, a finalizer
        except ValueError:  # called by the interpreter itself, with no Python frame left
            if self._armed:
                self._armed = False
                raise OSError("lockwatch: a report could not be written") from None


def _fail_exit_status() -> None:
    """Make the process exit with a non-zero status (120), once the exit handlers have run."""
    import sys

    if sys.stderr is not None and not isinstance(sys.stderr, _FailsFinalFlush):
        sys.stderr = _FailsFinalFlush(sys.stderr)
