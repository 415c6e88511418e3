"""lockwatch.watching(): a session for a block of code (in a module of its own: contextlib is
imported when it is first used, not by `import lockwatch`)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Optional

from . import disable, enable
from .defaults import DEFAULT_DEADLOCK_TIMEOUT, DEFAULT_ON_DEADLOCK

if TYPE_CHECKING:
    from .control import Session


@contextlib.contextmanager
def watching(*, deadlock_timeout: float = DEFAULT_DEADLOCK_TIMEOUT, on_deadlock: str = DEFAULT_ON_DEADLOCK["api"],
             warn_hold: Optional[float] = None, warn_wait: Optional[float] = None
             ) -> Iterator[Session]:
    """``with lockwatch.watching() as session:`` records what the block does; read
    ``session.potential_deadlocks`` or ``session.report()`` afterwards. No report is printed or
    written (``session.report()`` renders one). The watchdog settings are enable()'s; a session
    that is already running is joined with its own settings."""
    from .control import current

    running = current()
    was_active = running is not None
    session = running if was_active else enable(
        report_at_exit=False, deadlock_timeout=deadlock_timeout, on_deadlock=on_deadlock,
        warn_hold=warn_hold, warn_wait=warn_wait)
    assert session is not None
    try:
        yield session
    finally:
        if not was_active:
            disable()
