"""A gevent program (monkey.patch_all()) starts and runs under `python -m lockwatch` as without it."""
from __future__ import annotations

import pytest
from support import PROGRAMS, lockwatch, python

pytest.importorskip("gevent")

pytestmark = pytest.mark.timeout(180)

GEVENT = PROGRAMS / "gevent"


def test_patch_all_under_lockwatch_runs_as_without_it() -> None:
    plain = python(str(GEVENT / "patched.py"), cwd=GEVENT)
    watched = lockwatch(str(GEVENT / "patched.py"), cwd=GEVENT)
    assert plain.returncode == 0, plain.stderr
    assert watched.returncode == 0, watched.stderr
    assert plain.stdout.splitlines() == ["done 15 queued 15", "Lock makes gevent.thread"]
    assert watched.stdout == plain.stdout
    assert "Traceback" not in watched.stderr
    # threading.RLock still makes lockwatch's instances (on gevent's locks): they are reported
    assert "patched.py:" in watched.stderr
