"""Lock and RLock instrumented, with real threads: what the patched ``threading`` module hands out
(and keeps raw), isinstance/subclassing, API parity, copy/pickle, restore on disable. Condition and
the semaphores: test_primitives.py; the graph rules: test_recorder_*.py."""
from __future__ import annotations

import _thread
import subprocess
import sys
import textwrap
import threading

import pytest
from support import child_env, marker_line, site

import lockwatch
from lockwatch import primitives

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("lockwatch_off")]

HERE = __file__
FACTORIES = ("Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore")


def serial_of(lock):
    """The instrumented lock behind a lock or a Condition."""
    return getattr(lock, "_serial", None) or lock._lock._serial


# --- what the patched module hands out ------------------------------------------------------

def test_factories_are_instrumented_while_enabled_and_restored_after():
    originals = {n: getattr(threading, n) for n in FACTORIES}
    raw_lock_type = type(_thread.allocate_lock())
    with lockwatch.watching():
        for n in FACTORIES:
            obj = getattr(threading, n)()
            # instrumented (a Condition through its lock)
            assert getattr(type(getattr(obj, "_lock", obj)), "_lw_tracked", False), (n, type(obj))
        made = threading.Lock()
        cond = threading.Condition()
    for n in FACTORIES:
        assert getattr(threading, n) is originals[n], n
    if sys.version_info >= (3, 13):
        assert threading.Lock is _thread.lock
    else:
        assert threading.Lock is _thread.allocate_lock
    assert type(threading.Lock()) is raw_lock_type
    assert type(threading.RLock()) is type(originals["RLock"]())
    assert type(threading.Condition()) is originals["Condition"]
    # Locks made while enabled keep working after disable().
    with made:
        assert made.locked()
    assert not made.locked()
    with cond:
        cond.notify_all()


def test_enable_disable_twice_restores_each_time():
    original = threading.Lock
    for _ in range(2):
        with lockwatch.watching():
            assert threading.Lock is not original
            with lockwatch.watching():  # nested: the same session, still patched after
                pass
            assert type(threading.Lock()).__module__ == "lockwatch.proxies"
        assert threading.Lock is original


def test_watching_takes_the_watchdog_settings_and_nothing_that_writes_a_report():
    with lockwatch.watching(deadlock_timeout=0, on_deadlock="raise", warn_hold=2.5) as session:
        st = session.settings
        assert (st.deadlock_timeout, st.on_deadlock, st.warn_hold, st.warn_wait) == (0, "raise", 2.5, None)
        assert (st.json_path, st.html_path, st.dot_path) == (None, None, None)
    # report_at_exit, json, ... belong to enable(): a plain TypeError naming the argument.
    with pytest.raises(TypeError, match="report_at_exit"):
        with lockwatch.watching(report_at_exit=False):
            pass
    assert lockwatch.current_session() is None or not lockwatch.current_session().active


def test_locks_made_before_enable_are_raw():
    before = threading.Lock()
    with lockwatch.watching() as session:
        with before:
            pass
    assert type(before).__module__ != "lockwatch.proxies"
    assert session.snapshot().locks == []


def test_import_lockwatch_alone_patches_nothing(tmp_path):
    probe = textwrap.dedent("""
        import _thread, sys, threading
        names = ("Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore", "Event",
                 "Barrier", "Thread")
        before = {n: getattr(threading, n) for n in names}
        import lockwatch
        import lockwatch.proxies, lockwatch.primitives, lockwatch.recorder, lockwatch.patching
        import lockwatch.control
        changed = [n for n in names if getattr(threading, n) is not before[n]]
        assert not changed, changed
        assert type(threading.Lock()) is type(_thread.allocate_lock())
        assert not getattr(type(threading.Condition()), "_lw_tracked", False)
        assert not getattr(type(threading.Semaphore()), "_lw_tracked", False)
        assert threading.active_count() == 1, threading.enumerate()
        assert lockwatch.current_session() is None
        print("untouched")
    """)
    env = child_env()
    proc = subprocess.run([sys.executable, "-c", probe], env=env, cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "untouched"


def test_threading_internal_locks_stay_out(threads):
    def party():
        barrier.wait(30)
        event.wait(30)

    with lockwatch.watching() as session:
        event = threading.Event()
        barrier = threading.Barrier(3)
        sem = threading.Semaphore(2)  # <internal:sem>
        bsem = threading.BoundedSemaphore(2)  # <internal:bsem>
        cond = threading.Condition()  # <internal:cond>
        workers = [threads.start(party) for _ in range(2)]
        barrier.wait(30)
        event.set()
        for w in workers:
            w.join()
        for _ in range(3):
            t = threading.Thread(target=lambda: None)
            t.start()
            t.join(30)
        timer = threading.Timer(0.0, lambda: None)
        timer.start()
        timer.join(30)
        with sem, bsem, cond:
            cond.wait(0.001)  # allocates a waiter lock: never tracked
            cond.wait_for(lambda: True)

    snap = session.snapshot()
    assert [s for s in snap.locks if s.filename == threading.__file__] == []
    got = sorted((s.line, s.kind) for s in snap.locks)
    assert got == sorted([(marker_line(HERE, "internal:sem"), "Semaphore"),
                          (marker_line(HERE, "internal:bsem"), "BoundedSemaphore"),
                          (marker_line(HERE, "internal:cond"), "Condition")]), got
    # Their internals are threading's own objects, unpatched.
    assert type(event._cond) is primitives.OrigCondition
    assert type(sem._cond) is primitives.OrigCondition
    assert type(sem._cond._lock) is type(_thread.allocate_lock())
    assert type(barrier._cond) is primitives.OrigCondition


# --- isinstance and subclassing -------------------------------------------------------------

def test_isinstance_keeps_working_while_patched():
    raw_before = threading.Condition()
    with lockwatch.watching():
        cond = threading.Condition()
        assert isinstance(cond, threading.Condition)
        assert isinstance(raw_before, threading.Condition)
        event = threading.Event()
        assert isinstance(event._cond, threading.Condition)  # threading's own Condition
        bsem = threading.BoundedSemaphore()
        sem = threading.Semaphore()
        assert isinstance(bsem, threading.BoundedSemaphore)
        assert isinstance(bsem, threading.Semaphore)
        assert isinstance(sem, threading.Semaphore)
        assert not isinstance(sem, threading.BoundedSemaphore)
        assert issubclass(threading.BoundedSemaphore, threading.Semaphore)
        assert isinstance(threading.Semaphore.__new__(threading.Semaphore), threading.Semaphore)
        lock = threading.Lock()
        if sys.version_info >= (3, 13):
            assert isinstance(lock, threading.Lock)
            assert isinstance(_thread.allocate_lock(), threading.Lock)
            assert not isinstance(threading.RLock(), threading.Lock)
        else:
            with pytest.raises(TypeError):  # a function, as unpatched
                isinstance(lock, threading.Lock)
    # Instances made while patched are instances of the real classes too.
    assert isinstance(cond, threading.Condition)
    assert isinstance(bsem, threading.Semaphore) and isinstance(bsem, threading.BoundedSemaphore)


def test_isinstance_of_rlock_matches_unpatched_behaviour():
    def check():
        try:
            return isinstance(threading.RLock(), threading.RLock)
        except TypeError:
            return TypeError

    unpatched = check()
    with lockwatch.watching():
        patched = check()
    assert patched == unpatched


def test_subclassing_condition_and_semaphores_while_patched(threads):
    with lockwatch.watching() as session:
        class MyCondition(threading.Condition):
            def __init__(self, lock=None):
                super().__init__(lock)  # <sub:cond>
                self.notified = 0

            def notify(self, n=1):
                self.notified += 1
                super().notify(n)

        class MySemaphore(threading.Semaphore):
            def __init__(self, value=1):
                super().__init__(value)  # <sub:sem>
                self.extra = value

        class MyBounded(threading.BoundedSemaphore):
            pass

        # The creation site is the first frame outside lockwatch and threading: for a subclass
        # with its own __init__, the super().__init__() line (all its instances share it).
        cond = MyCondition()
        sem = MySemaphore(2)
        bsem = MyBounded(1)  # <sub:bsem>
        ready = []

        def waiter():
            with cond:
                assert cond.wait_for(lambda: ready, 30)

        w = threads.start(waiter)
        with cond:
            ready.append(1)
            cond.notify()
        w.join()
        assert cond.notified == 1
        assert sem.extra == 2
        assert sem.acquire(False) and sem.acquire(False) and not sem.acquire(False)
        sem.release(2)
        with bsem:
            pass
        with pytest.raises(ValueError):
            bsem.release()

    for obj, cls in ((cond, threading.Condition), (sem, threading.Semaphore),
                     (bsem, threading.BoundedSemaphore), (bsem, threading.Semaphore)):
        assert isinstance(obj, cls)  # the real classes, after disable
    snap = session.snapshot()
    assert site(snap, HERE, marker_line(HERE, "sub:cond")).acquisitions >= 2
    assert site(snap, HERE, marker_line(HERE, "sub:sem"), "Semaphore").acquisitions == 2
    assert site(snap, HERE, marker_line(HERE, "sub:bsem"), "BoundedSemaphore").acquisitions == 1


# --- Lock API parity ------------------------------------------------------------------------

def test_lock_api_matches_the_real_lock():
    real = _thread.allocate_lock()
    with lockwatch.watching():
        lock = threading.Lock()
        for lk in (real, lock):
            assert not lk.locked()
            assert lk.acquire() is True
            assert lk.locked()
            assert lk.acquire(False) is False
            assert lk.acquire(True, 0.001) is False
            lk.release()
            assert lk.acquire(timeout=1) is True
            lk.release()
            assert lk.__enter__() is True
            assert lk.__exit__(None, None, None) is None
            with pytest.raises(ValueError):
                lk.acquire(False, 1)
            with pytest.raises(ValueError):
                lk.acquire(timeout=-5)
            with pytest.raises(RuntimeError):
                lk.release()
        assert repr(lock).startswith("<unlocked")
        with lock:
            assert repr(lock).startswith("<locked")


def test_lockwatch_name_labels_the_report(threads):
    def nest(x, y):
        with x:
            with y:
                pass

    with lockwatch.watching() as session:
        first = lockwatch.name(threading.Lock(), "accounts.first")
        second = threading.Lock()
        lockwatch.name(second, "accounts.second")
        threads.run(nest, first, second)
        threads.run(nest, second, first)

    [cycle] = session.report().potential_deadlocks
    assert sorted(ref.name for ref in cycle.locks) == ["accounts.first", "accounts.second"]


@pytest.mark.parametrize("kind", ["Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore"])
def test_copy_and_pickle_behave_like_the_real_primitive(kind):
    """Pickling always fails (on the inner lock), copy.copy of a Condition or a semaphore
    succeeds, deepcopy fails: the same outcomes and messages as threading's own, with every
    pickle protocol."""
    import copy
    import functools
    import pickle

    def outcome(op, obj):
        try:
            result = op(obj)
        except Exception as exc:  # noqa: BLE001 - compared below
            return type(exc).__name__, str(exc)
        return "ok", type(result).__name__

    ops = [copy.copy, copy.deepcopy] + [functools.partial(pickle.dumps, protocol=p)
                                        for p in range(pickle.HIGHEST_PROTOCOL + 1)]
    real = getattr(threading, kind)()
    want = [outcome(op, real) for op in ops]
    with lockwatch.watching():
        obj = getattr(threading, kind)()
        assert type(obj) is not type(real)  # lockwatch's
        got = [outcome(op, obj) for op in ops]
    assert got == want
    assert all(w[0] != "ok" for w in want[2:])  # pickling never works
