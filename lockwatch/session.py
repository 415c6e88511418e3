"""A recording session: switches instrumentation on and off and turns what it saw into reports."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import IO, Any, Optional

from . import patching, proxies, recorder, snapshot
from .analysis import Report, analyze

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


class Session:
    """What one enable()..disable() span recorded. ``report()`` analyses it; ``potential_deadlocks``
    is the short way to the findings."""

    def __init__(self, settings: Optional[Settings] = None) -> None:
        self.settings = settings or Settings()
        self.active = False
        self.deadlocks: list[dict[str, Any]] = []  # seen by the watchdog, as plain data
        self.alerts: list[dict[str, Any]] = []
        self._watchdog: Any = None

    def start(self) -> None:
        if self.active:
            return
        recorder.reset()
        recorder.recording = True
        patching.install()
        self.active = True
        st = self.settings
        if st.deadlock_timeout or st.warn_hold or st.warn_wait:
            from .watchdog import Watchdog

            self._watchdog = Watchdog(st.deadlock_timeout, st.on_deadlock, self._on_deadlock,
                                      self._on_alert, st.warn_hold, st.warn_wait)
            recorder.watch = self._watchdog
            self._watchdog.start()

    def stop(self) -> None:
        if not self.active:
            return
        patching.uninstall()
        recorder.recording = False
        if self._watchdog is not None:
            recorder.watch = None
            self._watchdog.stop()
            self._watchdog = None
        self.active = False

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
                self.write_reports()
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
        from .analysis import apply_policy

        report = analyze(self.snapshot(live_stats))
        report.deadlocks = list(self.deadlocks)
        report.alerts = list(self.alerts)
        return apply_policy(report, self.settings.suppressions, self.settings.baseline)

    @property
    def potential_deadlocks(self) -> list:
        return self.report().potential_deadlocks

    def write_reports(self, report: Optional[Report] = None, stream: Optional[IO[str]] = None) -> Report:
        """Write the configured reports (text on stderr, JSON to a file) and return the analysis."""
        from .renderers import jsonreport, text

        report = report or self.report()
        if self.settings.text:
            out = stream or sys.stderr
            try:
                out.write(text.render(report, top=self.settings.top))
                out.flush()
            except (OSError, ValueError):  # stderr closed by the program
                pass
        if self.settings.json_path:
            write_atomic(self.settings.json_path, jsonreport.render(report))
        if self.settings.html_path:
            from .renderers import html

            write_atomic(self.settings.html_path, html.render(report))
        if self.settings.dot_path:
            from .renderers import dot

            write_atomic(self.settings.dot_path, dot.render(report))
        return report


def write_atomic(path: str, content: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a report."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(content)
    os.replace(tmp, path)


def check_writable(path: str) -> Optional[str]:
    """Why ``path`` cannot take a report, or None: checked before the program starts."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        return f"{path} is a directory"
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        return f"directory {parent} does not exist"
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        return f"{path} is not writable"
    return None


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
