"""Exceptions lockwatch raises: into the watched program, and to its entry points."""
from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see lockwatch/__init__.py
if TYPE_CHECKING:
    from typing import Any


class DeadlockError(RuntimeError):
    """Raised by lockwatch (``on_deadlock="raise"``) from the blocked acquire of one thread of a
    real deadlock, so that the cycle breaks. ``report`` holds the deadlock as plain data: the
    threads of the cycle, what each waits for and holds, and their stacks."""

    def __init__(self, message: str, report: Any = None) -> None:
        super().__init__(message)
        self.report = report


class UserError(Exception):
    """Something the user can fix (a bad setting, a missing file, an unreadable report): str() is
    one line naming where the problem is. Every entry point turns it into that one line and a
    usage status (the CLI), a usage error (pytest) or the exception itself (the API)."""
