"""A recording session: switches instrumentation on and off and turns what it saw into reports."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from typing import IO, Any, Optional

from . import patching, proxies, recorder, snapshot
from .analysis import Report, build_report
from .files import check_writable, write_atomic

__all__ = ["Session", "Settings", "check_writable", "load_policy", "write_atomic"]

# Exit status of `python -m lockwatch --fail-on-cycle` when the program itself succeeded but a
# potential deadlock was found (outside sysexits.h's 64-78 and the shell's 126-165).
EXIT_POTENTIAL_DEADLOCK = 86
# A cycle of threads each blocked (untimed) on a lock the next one holds never resolves itself:
# a few seconds only rule out a transient view. PostgreSQL's deadlock_timeout default is 1 s.
DEFAULT_DEADLOCK_TIMEOUT = 5.0


@dataclass
class Settings:
    json_path: Optional[str] = None
    html_path: Optional[str] = None
    dot_path: Optional[str] = None
    text: bool = True  # the text report on stderr
    top: int = 5  # rows in each contention table
    deadlock_timeout: float = 0.0  # seconds a cycle of waiting threads must last; 0: no watchdog
    on_deadlock: str = "report"  # "exit", "raise" or "report"
    warn_hold: Optional[float] = None  # seconds: alert while a lock is held longer
    warn_wait: Optional[float] = None  # seconds: alert while a thread waits longer
    suppressions: list = field(default_factory=list)  # config.Suppression entries
    baseline: Optional[dict] = None  # fingerprint -> entry, from a baseline file
    children_dir: Optional[str] = None  # child processes' JSON reports to merge into this one
    on_terminate: bool = False  # on SIGTERM: write the reports, then die of it as before


_current: Optional["Session"] = None  # the session recording now, whoever started it


def current() -> Optional["Session"]:
    """The running session (started by the CLI, the pytest plugin or the API), if any."""
    return _current


class Session:
    """What one enable()..disable() span recorded. ``report()`` analyses it; ``potential_deadlocks``
    is the short way to the findings."""

    def __init__(self, settings: Optional[Settings] = None) -> None:
        self.settings = settings or Settings()
        self.active = False
        self.deadlocks: list[dict[str, Any]] = []  # seen by the watchdog, as plain data
        self.alerts: list[dict[str, Any]] = []
        self._watchdog: Any = None
        self.pid = os.getpid()
        self.finish: Any = None  # what runs before the process dies of SIGTERM or of a deadlock
        #                          (--on-deadlock exit); default: write_reports
        self._writing = False  # a report is being written (SIGTERM then waits for it)
        self._die_after_write: Optional[int] = None

    @property
    def in_forked_child(self) -> bool:
        return os.getpid() != self.pid

    def start(self) -> None:
        if self.active:
            return
        global _current
        recorder.reset()
        recorder.recording = True
        first = not patching.installed()
        patching.install()
        if first:
            # Installing imports wrapt, which imports concurrent.futures and logging: their
            # locks are instrumented (good), but what lockwatch's own imports did with them is
            # not the program's doing.
            recorder.forget_activity()
        self.active = True
        _current = self
        self._start_watchdog()
        if self.settings.on_terminate:
            # Reports written at exit or from a signal handler must not import anything then
            # (a handler may interrupt an import of the same module): import them now.
            from .renderers import jsonreport, text  # noqa: F401

            _install_sigterm(self)
        _sessions_to_fork.append(self)

    def _start_watchdog(self) -> None:
        st = self.settings
        if st.deadlock_timeout or st.warn_hold or st.warn_wait:
            from .watchdog import Watchdog

            self._watchdog = Watchdog(st.deadlock_timeout, st.on_deadlock, self._on_deadlock,
                                      self._on_alert, st.warn_hold, st.warn_wait)
            recorder.watch = self._watchdog
            self._watchdog.start()

    def stop(self) -> None:
        global _current
        if not self.active:
            return
        if _current is self:
            _current = None
        patching.uninstall()
        recorder.recording = False
        if self._watchdog is not None:
            recorder.watch = None
            self._watchdog.stop()
            self._watchdog = None
        self.active = False

    def _after_fork_in_child(self) -> None:
        """The child of fork() keeps recording, into a report of its own: the recorder already
        dropped what the parent recorded; the watchdog thread did not survive the fork."""
        self.deadlocks, self.alerts = [], []
        if self.settings.children_dir:
            # A child of `python -m lockwatch`: its report joins the other children's, which
            # the parent merges into the one report it prints.
            self.settings = replace(self.settings, json_path=os.path.join(
                self.settings.children_dir, "child-%p.json"), html_path=None, dot_path=None, text=False)
        if self.active and self._watchdog is not None:
            self._start_watchdog()
        mp_util = sys.modules.get("multiprocessing.util")
        if mp_util is not None:
            # A multiprocessing worker ends with os._exit (no atexit): its report is written by
            # a multiprocessing finalizer, registered after the worker clears the inherited ones.
            mp_util.register_after_fork(self, _register_mp_finalizer)

    def path(self, path: str) -> str:
        """A report path for this process: %p becomes the process id; in a forked child a path
        without %p gets ".<pid>" before its extension, so it never overwrites the parent's."""
        pid = str(os.getpid())
        if "%p" in path:
            return path.replace("%p", pid)
        if self.in_forked_child:
            root, ext = os.path.splitext(path)
            return f"{root}.{pid}{ext}"
        return path

    def child_snapshots(self) -> list[snapshot.Snapshot]:
        """Reports written by child processes (LOCKWATCH_JSON pointed them at children_dir)."""
        folder = self.settings.children_dir
        if not folder or not os.path.isdir(folder):
            return []
        from .model import ReportError, load

        out = []
        for name in sorted(os.listdir(folder)):
            if not name.endswith(".json"):
                continue
            try:
                saved = load(os.path.join(folder, name))
            except ReportError:
                continue  # a child killed while writing: its report is lost, the rest stands
            saved.snapshot.meta["deadlocks"] = [d.to_dict() for d in saved.deadlocks]
            out.append(saved.snapshot)
        return out

    def _emit(self, text: str) -> None:
        try:
            sys.stderr.write(text)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass

    def _on_deadlock(self, data: dict[str, Any], text: str) -> None:
        self.deadlocks.append(data)
        if self.settings.on_deadlock != "exit" or not self.settings.text:
            self._emit(text)  # under "exit" the full report below carries it
        if self.settings.on_deadlock == "exit":
            from .watchdog import EXIT_DEADLOCK, exit_now

            try:
                (self.finish or self.write_reports)()
            finally:
                exit_now(EXIT_DEADLOCK)

    def _on_alert(self, data: dict[str, Any], text: str) -> None:
        self.alerts.append(data)
        self._emit(text)

    def snapshot(self, live_stats: bool = True) -> snapshot.Snapshot:
        return snapshot.take(recorder.state, recorder.mutex,
                             (proxies.Lock, proxies.RLock, proxies._SemaphoreMixin), live_stats)

    @property
    def edges_version(self) -> int:
        """Changes whenever a new lock-order edge is recorded (cheap to poll)."""
        return recorder.state.edges_version

    def report(self, live_stats: bool = True) -> Report:
        """Analyse what was recorded, with the project's suppressions and baseline applied."""
        from .model import Alert, Deadlock

        children = self.child_snapshots() if not self.in_forked_child else []
        deadlocks = list(self.deadlocks) + [d for c in children for d in c.meta.get("deadlocks", [])]
        return build_report([self.snapshot(live_stats), *children],
                            deadlocks=[Deadlock.from_dict(d) for d in deadlocks],
                            alerts=[Alert.from_dict(a) for a in self.alerts],
                            suppressions=self.settings.suppressions, baseline=self.settings.baseline)

    @property
    def potential_deadlocks(self) -> list:
        return self.report().potential_deadlocks

    def write_reports(self, report: Optional[Report] = None, stream: Optional[IO[str]] = None) -> Report:
        """Write the configured reports (text on stderr, JSON to a file) and return the analysis.
        A forked child writes no text (its parent reports), only its own files."""
        from .renderers import jsonreport, text

        self._writing = True
        try:
            return self._write_reports(report, stream, jsonreport, text)
        finally:
            self._writing = False
            if self._die_after_write is not None:
                _die_of(self._die_after_write)

    def _write_reports(self, report: Optional[Report], stream: Optional[IO[str]], jsonreport: Any,
                       text: Any) -> Report:
        report = report or self.report()
        if self.settings.text and not self.in_forked_child:
            out = stream or sys.stderr
            try:
                rendered = text.render(report, top=self.settings.top)
                out.write(text.colorize(rendered) if text.use_color(out) else rendered)
                out.flush()
            except (OSError, ValueError):  # stderr closed by the program
                pass
        if self.settings.json_path:
            path = self.path(self.settings.json_path)
            try:
                write_atomic(path, jsonreport.render(report))
            except FileNotFoundError:
                if not _parent_reported(path):
                    raise
        if self.settings.html_path:
            from .renderers import html

            write_atomic(self.path(self.settings.html_path), html.render(report))
        if self.settings.dot_path:
            from .renderers import dot

            write_atomic(self.path(self.settings.dot_path), dot.render(report))
        return report


# The folder where `python -m lockwatch` collects its child processes' reports.
CHILDREN_PREFIX = "lockwatch-children-"


def _parent_reported(path: str) -> bool:
    """Is ``path`` in the children's folder of a `python -m lockwatch` that has already reported
    and removed it? Some children outlive their parent's report (multiprocessing's resource
    tracker and forkserver exit after the parent): nobody would read theirs."""
    folder = os.path.dirname(path)
    return os.path.basename(folder).startswith(CHILDREN_PREFIX) and not os.path.isdir(folder)


def load_policy(suppressions_path: Optional[str], baseline_path: Optional[str],
                start: str = ".") -> tuple[list, Optional[dict]]:
    """The project's suppressions ([tool.lockwatch] in the nearest pyproject.toml, plus a
    suppressions file) and baseline (given, or named in [tool.lockwatch]). Raises
    config.ConfigError / baseline.BaselineError with one line for the user."""
    from . import baseline as baseline_mod
    from . import config

    cfg = config.load_project(start)
    if suppressions_path:
        cfg = config.combine(cfg, config.load_file(suppressions_path))
    path = baseline_path or cfg.baseline
    known = None
    if path:
        if not baseline_path and not os.path.exists(path):
            known = {}  # named in pyproject but not written yet: everything is new
        else:
            known = baseline_mod.read(path)
    return cfg.suppressions, known


_sessions_to_fork: list[Session] = []


def _after_fork_in_child() -> None:
    for session in list(_sessions_to_fork):
        if session.active:
            try:
                session._after_fork_in_child()
            except Exception:
                pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _register_mp_finalizer(session: Session) -> None:
    import multiprocessing.util as mp_util

    mp_util.Finalize(None, session.finish or session.write_reports, exitpriority=-100)


def _install_sigterm(session: Session) -> None:
    """On SIGTERM, write the reports and then die of SIGTERM as the program would have. Only when
    SIGTERM still has its default action (a program's own handler is left alone) and only from
    the main thread (where Python allows handlers to be set)."""
    import signal
    import threading

    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
    except (ValueError, OSError):
        return

    def on_sigterm(signum: int, frame: Any) -> None:
        if session._writing:
            # The report is being written already (the process was exiting): let it finish,
            # then die of the signal.
            session._die_after_write = signum
            return
        try:
            (session.finish or session.write_reports)()
        finally:
            _die_of(signum)

    signal.signal(signal.SIGTERM, on_sigterm)


def _die_of(signum: int) -> None:
    """End the process by ``signum`` with its default action, as it would have ended unwatched."""
    import signal

    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
