"""CPython's own lock test suites (``test.lock_tests``) run against lockwatch's instrumented types.

The classes below mirror CPython's ``Lib/test/test_threading.py`` (``class LockTests(
lock_tests.LockTests): locktype = staticmethod(threading.Lock)`` and so on), with one difference:
the factories are looked up in ``threading`` *when a test calls them*, while lockwatch is enabled,
so every lock under test is created through the patched factories, exactly as user code gets it.
Every test that passes on the real types must pass on these.
"""
from __future__ import annotations

import os
import threading

import pytest

import lockwatch

lock_tests = pytest.importorskip("test.lock_tests", reason="CPython's test package is not installed")

pytestmark = pytest.mark.timeout(300)

_session = None
_was_active = False


def setup_module(module):
    global _session, _was_active
    current = lockwatch.current_session()
    _was_active = current is not None and current.active
    _session = lockwatch.enable(report_at_exit=False)


def teardown_module(module):
    if not _was_active:
        lockwatch.disable()


# The factories, resolved at call time (a staticmethod(threading.Lock) would bind the unpatched
# original when this module is imported). Arguments pass through, so argument errors are the
# patched factories' own.
def _lock(*args, **kwargs):
    return threading.Lock(*args, **kwargs)


def _rlock(*args, **kwargs):
    return threading.RLock(*args, **kwargs)


def _condition(*args, **kwargs):
    return threading.Condition(*args, **kwargs)


def _semaphore(*args, **kwargs):
    return threading.Semaphore(*args, **kwargs)


def _bounded_semaphore(*args, **kwargs):
    return threading.BoundedSemaphore(*args, **kwargs)


def _event(*args, **kwargs):
    return threading.Event(*args, **kwargs)


def _barrier(*args, **kwargs):
    return threading.Barrier(*args, **kwargs)


def _assert_instrumented(obj):
    # a lockwatch instrumented type (a Condition is one through its lock)
    assert getattr(type(getattr(obj, "_lock", obj)), "_lw_tracked", False), type(obj)
    assert lockwatch.current_session() is not None and lockwatch.current_session().active


class LockTests(lock_tests.LockTests):
    locktype = staticmethod(_lock)

    def test_lockwatch_instrumented(self):
        lock = self.locktype()
        _assert_instrumented(lock)
        assert type(lock).__name__ == "Lock"


class RLockTests(lock_tests.RLockTests):
    locktype = staticmethod(_rlock)

    def test_lockwatch_instrumented(self):
        lock = self.locktype()
        _assert_instrumented(lock)
        assert type(lock).__name__ == "RLock"


class EventTests(lock_tests.EventTests):
    # An Event's Condition and Lock are threading.py's own and stay raw by design (DESIGN.md):
    # this checks that the patched factories still build working Events.
    eventtype = staticmethod(_event)


class ConditionAsRLockTests(lock_tests.RLockTests):
    # Condition uses an RLock by default and exports its API.
    locktype = staticmethod(_condition)

    if hasattr(lock_tests.RLockTests, "test_recursion_count"):  # 3.11+

        def test_recursion_count(self):
            # CPython's own test_threading skips this one for the real Condition too.
            self.skipTest("Condition does not expose _recursion_count()")

    def test_lockwatch_instrumented(self):
        cond = self.locktype()
        _assert_instrumented(cond)
        _assert_instrumented(cond._lock)
        assert type(cond._lock).__name__ == "RLock"


class ConditionTests(lock_tests.ConditionTests):
    condtype = staticmethod(_condition)

    def test_lockwatch_instrumented(self):
        _assert_instrumented(self.condtype())
        # lock_tests builds some conditions on a threading.Lock(): instrumented too.
        cond = self.condtype(threading.Lock())
        _assert_instrumented(cond)
        assert type(cond._lock).__name__ == "Lock"
        _assert_instrumented(cond._lock)


class SemaphoreTests(lock_tests.SemaphoreTests):
    semtype = staticmethod(_semaphore)

    def test_lockwatch_instrumented(self):
        sem = self.semtype(2)
        _assert_instrumented(sem)
        assert type(sem).__name__ == "Semaphore"


class BoundedSemaphoreTests(lock_tests.BoundedSemaphoreTests):
    semtype = staticmethod(_bounded_semaphore)

    def test_lockwatch_instrumented(self):
        sem = self.semtype(2)
        _assert_instrumented(sem)
        assert type(sem).__name__ == "BoundedSemaphore"


class BarrierTests(lock_tests.BarrierTests):
    # Barrier itself is not instrumented (its Condition is threading.py's own); it runs on the
    # patched Condition/Lock factories.
    barriertype = staticmethod(_barrier)


def test_lock_tests_are_recorded():
    """The suites really go through the recorder: run two of them here and find their locks'
    acquisitions and contention counted at the lines of lock_tests that call the factories."""
    import inspect
    import unittest

    suite = unittest.TestSuite([LockTests("test_acquire_contended"),
                                SemaphoreTests("test_acquire_contended")])
    result = unittest.TestResult()
    suite.run(result)
    assert result.wasSuccessful(), result.errors + result.failures
    snap = _session.snapshot()
    for factory, kind in ((_lock, "Lock"), (_semaphore, "Semaphore")):
        # The factory only makes and returns the lock: its callers in lock_tests are the sites.
        line = inspect.getsourcelines(factory)[1] + 1  # the `return threading.X(...)` line
        assert not [s for s in snap.locks if s.filename == __file__ and s.line == line]
        stats = [s for s in snap.locks
                 if os.path.basename(s.filename) == "lock_tests.py" and s.kind == kind and s.acquisitions]
        assert stats, [(s.filename, s.line, s.kind) for s in snap.locks]
        assert sum(s.instances for s in stats) >= 1
        assert sum(s.acquisitions for s in stats) >= 2
