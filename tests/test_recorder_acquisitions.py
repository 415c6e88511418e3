"""What the recorder keeps for acquisitions other than a plain blocking acquire: trylocks, timed
acquires, RLock re-entry, release out of order and hand-off to another thread. Inversions are run
one thread after another (never concurrently), so they are recorded without ever really
deadlocking."""
from __future__ import annotations

import threading

import pytest
from support import frame, instance_edges_of, lock_edges, site

import lockwatch

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("lockwatch_off")]

HERE = __file__


# --- non-blocking and timed acquisitions ----------------------------------------------------

def test_trylock_while_holding_adds_no_edge(threads):
    def work():
        with lock_a:
            assert lock_b.acquire(False)
            lock_b.release()
            assert lock_b.acquire(blocking=False)
            lock_b.release()
            assert rlock.acquire(False)
            rlock.release()
            assert sem.acquire(False)
            sem.release()
            assert sem.acquire(blocking=False)
            sem.release()

    with lockwatch.watching() as session:
        lock_a = threading.Lock()
        lock_b = threading.Lock()
        rlock = threading.RLock()
        sem = threading.Semaphore(1)
        threads.run(work)

    snap = session.snapshot()
    assert snap.instance_edges == [] and snap.site_edges == []
    # ...but the acquisitions themselves are counted.
    assert sum(s.acquisitions for s in snap.locks) == 1 + 2 + 1 + 2


def test_a_lock_taken_by_trylock_is_held_like_any_other(threads):
    def work():
        assert lock_a.acquire(False)
        with lock_b:  # lock_a is held: an edge a -> b
            pass
        lock_a.release()
        with lock_b:  # and no longer held
            pass

    with lockwatch.watching() as session:
        lock_a = threading.Lock()
        lock_b = threading.Lock()
        threads.run(work)

    [e] = session.snapshot().instance_edges
    assert (e.src_instance, e.dst_instance, e.count) == (lock_a._serial, lock_b._serial, 1)


def test_inversion_only_through_a_trylock_is_no_cycle(threads):
    def blocking_ab():
        with lock_a:
            with lock_b:
                pass

    def trylock_ba():
        with lock_b:
            if lock_a.acquire(False):  # cannot wait: cannot deadlock
                lock_a.release()
            else:
                raise AssertionError("lock_a should be free")

    with lockwatch.watching() as session:
        lock_a = threading.Lock()
        lock_b = threading.Lock()
        threads.run(blocking_ab)
        threads.run(trylock_ba)

    snap = session.snapshot()
    assert len(snap.instance_edges) == 1  # a -> b only
    assert session.report().potential_deadlocks == []


@pytest.mark.parametrize("kind", ["Lock", "RLock", "Semaphore", "BoundedSemaphore"])
def test_failed_trylock_counts_in_failed_and_adds_no_edge(threads, kind, line_of):
    holding = threading.Event()
    done = threading.Event()

    def holder():
        target.acquire()
        holding.set()
        assert done.wait(60)
        target.release()

    with lockwatch.watching() as session:
        factory = getattr(threading, kind)
        target = factory(1) if "Semaphore" in kind else factory()  # <try:target>
        other = threading.Lock()
        w = threads.start(holder, name="holder")
        assert holding.wait(60)
        with other:
            results = [target.acquire(False) for _ in range(3)]
            results.append(target.acquire(blocking=False))
        done.set()
        w.join()

    assert results == [False] * 4
    snap = session.snapshot()
    stats = site(snap, HERE, line_of("try:target"), kind)
    assert stats.failed == 4
    assert stats.acquisitions == 1  # the holder's
    assert lock_edges(snap.instance_edges) == []  # the Events it waited on and set are not locks


def test_timed_acquire_is_a_timed_edge_until_a_blocking_one_is_seen(threads):
    def timed():
        with lock_a:
            assert lock_b.acquire(timeout=30)
            lock_b.release()

    def blocking():
        with lock_a:
            with lock_b:
                pass

    with lockwatch.watching() as session:
        lock_a = threading.Lock()
        lock_b = threading.Lock()
        threads.run(timed)
        mid = session.snapshot()
        threads.run(timed)
        threads.run(blocking)
        threads.run(timed)

    [e] = instance_edges_of(mid, lock_a, lock_b)
    assert e.timed and e.count == 1
    [e] = instance_edges_of(session.snapshot(), lock_a, lock_b)
    assert not e.timed  # a blocking occurrence un-marks it, and a later timed one does not re-mark
    assert e.count == 4


def test_timed_acquire_that_times_out_is_a_failure_and_a_timed_edge(threads):
    holding = threading.Event()
    done = threading.Event()

    def holder():
        with lock_b:
            holding.set()
            assert done.wait(60)

    with lockwatch.watching() as session:
        lock_a = threading.Lock()
        lock_b = threading.Lock()
        w = threads.start(holder)
        assert holding.wait(60)
        with lock_a:
            got = lock_b.acquire(timeout=0.01)
        done.set()
        w.join()

    assert got is False
    snap = session.snapshot()
    [e] = instance_edges_of(snap, lock_a, lock_b)
    assert e.timed
    assert [s.failed for s in snap.locks if s.kind == "Lock"] == [0, 1]


@pytest.mark.parametrize("kind", ["RLock", "Semaphore", "BoundedSemaphore"])
def test_timed_acquire_of_other_kinds_is_a_timed_edge(threads, kind):
    def timed():
        with lock_a:
            assert target.acquire(timeout=30)
            target.release()

    with lockwatch.watching() as session:
        lock_a = threading.Lock()
        target = getattr(threading, kind)()
        threads.run(timed)

    [e] = instance_edges_of(session.snapshot(), lock_a, target)
    assert e.timed


# --- RLock re-entry -------------------------------------------------------------------------

def test_rlock_reentry_adds_no_edge_and_no_hold(threads, line_of):
    def work():
        for _ in range(3):
            with rlock:  # <re:outer>
                with rlock:
                    assert rlock.acquire()
                    assert rlock.acquire(False)  # re-entry never fails
                    assert rlock.acquire(timeout=1)
                    rlock.release()
                    rlock.release()
                    rlock.release()
                    with inner:
                        pass
                # depth 2 -> 1: still held, so this is an edge too
                with inner:
                    pass
            with after:  # the outermost release ended the hold: no edge rlock -> after
                pass

    with lockwatch.watching() as session:
        rlock = threading.RLock()  # <re:make>
        inner = threading.Lock()
        after = threading.Lock()
        threads.run(work, name="reenterer")

    snap = session.snapshot()
    assert not [e for e in snap.instance_edges if e.src_instance == e.dst_instance]
    assert not [e for e in snap.site_edges if e.src == e.dst]
    [e] = instance_edges_of(snap, rlock, inner)
    # Two `with inner` per outer hold, three outer holds: a re-entry pushing the RLock on the held
    # stack again would count each of them twice or more.
    assert e.count == 6
    assert e.held_stack[-1] == frame(work, line_of("re:outer"))
    assert instance_edges_of(snap, rlock, after) == []
    stats = site(snap, HERE, line_of("re:make"), "RLock")
    assert stats.acquisitions == 3  # outermost acquisitions
    assert stats.hold.count == 3  # one hold per outermost acquire/release pair


def test_rlock_reentry_under_another_lock_is_no_inversion(threads):
    def work():
        with rlock:
            with other:
                with rlock:  # re-entry cannot block: no edge other -> rlock
                    pass

    with lockwatch.watching() as session:
        rlock = threading.RLock()
        other = threading.Lock()
        threads.run(work)

    snap = session.snapshot()
    assert len(instance_edges_of(snap, rlock, other)) == 1
    assert instance_edges_of(snap, other, rlock) == []
    assert session.report().potential_deadlocks == []


def test_rlock_inversion_through_first_acquisitions_is_found(threads):
    def ab():
        with rlock:
            with rlock:
                with lock:
                    pass

    def ba():
        with lock:
            with rlock:
                pass

    with lockwatch.watching() as session:
        rlock = threading.RLock()
        lock = threading.Lock()
        threads.run(ab)
        threads.run(ba)

    [cycle] = session.report().potential_deadlocks
    assert cycle.scope == "instance"
    assert sorted(ref.kind for ref in cycle.locks) == ["Lock", "RLock"]


# --- out-of-order release and hand-off ------------------------------------------------------

@pytest.mark.parametrize("kind", ["Lock", "RLock"])
def test_out_of_order_release(threads, kind):
    def work():
        lock_a.acquire()
        lock_b.acquire()
        lock_a.release()  # not the innermost
        with lock_c:
            pass
        lock_b.release()
        with lock_c:  # nothing held any more
            pass

    with lockwatch.watching() as session:
        make = getattr(threading, kind)
        lock_a, lock_b, lock_c = make(), make(), make()
        threads.run(work)

    snap = session.snapshot()
    assert len(instance_edges_of(snap, lock_a, lock_b)) == 1
    assert [e.count for e in instance_edges_of(snap, lock_b, lock_c)] == [1]
    assert instance_edges_of(snap, lock_a, lock_c) == []
    assert len(snap.instance_edges) == 2
    for s in snap.locks:
        assert s.hold.count == s.acquisitions, s


def test_handed_off_lock_leaves_no_phantom_hold(threads):
    taken = threading.Event()
    released = threading.Event()

    def first():
        lock_a.acquire()
        taken.set()
        assert released.wait(60)
        with lock_b:  # lock_a was released by the other thread: not held here any more
            pass

    def second():
        assert taken.wait(60)
        lock_a.release()  # hand-off: released by a thread that did not acquire it
        released.set()

    with lockwatch.watching() as session:
        lock_a = threading.Lock()
        lock_b = threading.Lock()
        w1 = threads.start(first, name="acquirer")
        w2 = threads.start(second, name="releaser")
        w2.join()
        w1.join()
        assert not lock_a.locked()
        with lock_a:  # and it works as before
            pass

    snap = session.snapshot()
    assert lock_edges(snap.instance_edges) == []  # the Events it waited on and set are not locks
    stats = [s for s in snap.locks if s.acquisitions == 2]
    assert len(stats) == 1 and stats[0].hold.count == 2


def test_handoff_of_a_lock_that_is_not_innermost(threads):
    taken = threading.Event()
    released = threading.Event()

    def first():
        lock_a.acquire()
        lock_c.acquire()
        taken.set()
        assert released.wait(60)
        with lock_b:  # holds lock_c only
            pass
        lock_c.release()

    def second():
        assert taken.wait(60)
        lock_a.release()
        released.set()

    with lockwatch.watching() as session:
        lock_a, lock_b, lock_c = threading.Lock(), threading.Lock(), threading.Lock()
        w1 = threads.start(first)
        threads.start(second).join()
        w1.join()

    snap = session.snapshot()
    assert len(instance_edges_of(snap, lock_a, lock_c)) == 1
    assert len(instance_edges_of(snap, lock_c, lock_b)) == 1
    assert instance_edges_of(snap, lock_a, lock_b) == []


def test_releasing_an_unheld_lock_raises_like_the_real_one():
    real = threading.Lock()
    with pytest.raises(RuntimeError) as want:
        real.release()
    with lockwatch.watching():
        lock = threading.Lock()
        rlock = threading.RLock()
        with pytest.raises(RuntimeError) as got:
            lock.release()
        with pytest.raises(RuntimeError):
            rlock.release()
        with lock:  # still usable
            pass
    assert str(got.value) == str(want.value)
