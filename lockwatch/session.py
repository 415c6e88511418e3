"""A recording session: switches instrumentation on and off and turns what it saw into reports."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import IO, Any, Optional

from . import patching, proxies, recorder, snapshot
from .analysis import Report, analyze

# Exit status of `python -m lockwatch --fail-on-cycle` when the program itself succeeded but a
# potential deadlock was found (outside sysexits.h's 64-78 and the shell's 126-165).
EXIT_POTENTIAL_DEADLOCK = 86


@dataclass
class Settings:
    json_path: Optional[str] = None
    text: bool = True  # the text report on stderr
    top: int = 5  # rows in each contention table


class Session:
    """What one enable()..disable() span recorded. ``report()`` analyses it; ``potential_deadlocks``
    is the short way to the findings."""

    def __init__(self, settings: Optional[Settings] = None) -> None:
        self.settings = settings or Settings()
        self.active = False

    def start(self) -> None:
        if self.active:
            return
        recorder.reset()
        recorder.recording = True
        patching.install()
        self.active = True

    def stop(self) -> None:
        if not self.active:
            return
        patching.uninstall()
        recorder.recording = False
        self.active = False

    def snapshot(self, live_stats: bool = True) -> snapshot.Snapshot:
        return snapshot.take(recorder.state, recorder.mutex,
                             (proxies.Lock, proxies.RLock, proxies._SemaphoreMixin), live_stats)

    @property
    def edges_version(self) -> int:
        """Changes whenever a new lock-order edge is recorded (cheap to poll)."""
        return recorder.state.edges_version

    def report(self) -> Report:
        return analyze(self.snapshot())

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
