"""fork() and snapshots visit what lockwatch registered (live threads, live instruments), never the
whole heap: gc.get_objects() is not called (its cost grew with the heap: 1.1-1.5 s per fork with
a 354 MB heap). The time itself is measured by benchmarks/fork_cost.py, not asserted here."""
from __future__ import annotations

import gc
import os
import sys
import threading

import pytest
from test_recorder_interruptions import _in_forked_child

import lockwatch

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")]


@pytest.fixture
def no_heap_walk(monkeypatch: pytest.MonkeyPatch) -> list:
    """gc.get_objects replaced by one that records its callers (and still works)."""
    calls: list = []
    real = gc.get_objects

    def recording(*args, **kwargs):
        calls.append(sys._getframe(1).f_code.co_name)
        return real(*args, **kwargs)

    monkeypatch.setattr(gc, "get_objects", recording)
    return calls


def test_snapshot_does_not_walk_the_heap(no_heap_walk):
    with lockwatch.watching() as session:
        lock = threading.Lock()
        with lock:
            pass
        snap = session.snapshot()
    assert no_heap_walk == []
    assert sum(s.acquisitions for s in snap.locks if s.line and s.kind == "Lock") >= 1  # live counters summed


def test_fork_does_not_walk_the_heap(no_heap_walk):
    def child() -> str:
        return repr(no_heap_walk)  # what the at-fork handlers called, in the child

    with lockwatch.watching():
        lock = threading.Lock()
        with lock:
            pass
        with lock:  # held across the fork: still held by the forking thread in the child
            status, message = _in_forked_child(child)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, message
    assert message == "[]"
