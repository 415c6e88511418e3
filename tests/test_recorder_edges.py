"""The model of DESIGN.md ("the model"), rule by rule, with real threads: what the recorder keeps
as edges, cycles and counters. Inversions are run one thread after another (never concurrently),
so they are recorded without ever really deadlocking."""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import tracemalloc

import pytest
from support import child_env, frame, instance_edges_of, site

import lockwatch
from lockwatch import recorder as lw_recorder
from lockwatch import stacks as lw_stacks

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("lockwatch_off")]

HERE = __file__


def edges(snap, src, dst, scope="instance"):
    """Edges from LockStats ``src`` to ``dst`` (instance or site scope)."""
    pool = snap.instance_edges if scope == "instance" else snap.site_edges
    return [e for e in pool if e.src == src.key and e.dst == dst.key]


# --- AB/BA ----------------------------------------------------------------------------------

def test_ab_ba_in_two_threads_is_one_instance_cycle_with_both_stacks(threads, line_of):
    def take_ab():
        with lock_a:  # <ab:a>
            with lock_b:  # <ab:b>
                pass

    def take_ba():
        with lock_b:  # <ba:b>
            with lock_a:  # <ba:a>
                pass

    with lockwatch.watching() as session:
        lock_a = threading.Lock()  # <make:a>
        lock_b = threading.Lock()  # <make:b>
        threads.run(take_ab, name="taker-ab")
        threads.run(take_ba, name="taker-ba")

    snap = session.snapshot()
    sa, sb = site(snap, HERE, line_of("make:a"), "Lock"), site(snap, HERE, line_of("make:b"), "Lock")
    assert (sa.name, sb.name) == ("lock_a", "lock_b")

    [ab] = edges(snap, sa, sb)
    assert ab.thread == "taker-ab"
    assert ab.held_stack[-1] == frame(take_ab, line_of("ab:a"))
    assert ab.acquire_stack[-1] == frame(take_ab, line_of("ab:b"))
    assert (ab.src_instance, ab.dst_instance) == (lock_a._serial, lock_b._serial)
    assert ab.count == 1 and not ab.timed

    [ba] = edges(snap, sb, sa)
    assert ba.thread == "taker-ba"
    assert ba.held_stack[-1] == frame(take_ba, line_of("ba:b"))
    assert ba.acquire_stack[-1] == frame(take_ba, line_of("ba:a"))

    found = session.report().potential_deadlocks
    # The same two locks make a site cycle too; it is reported once, as the instance finding.
    assert len(found) == 1, found
    [cycle] = found
    assert cycle.scope == "instance"
    assert sorted(ref.instance for ref in cycle.locks) == sorted([lock_a._serial, lock_b._serial])
    assert sorted(ref.line for ref in cycle.locks) == [line_of("make:a"), line_of("make:b")]
    assert {ref.kind for ref in cycle.locks} == {"Lock"}
    assert sorted(e.thread for e in cycle.edges) == ["taker-ab", "taker-ba"]
    # edges[i] goes from locks[i] to locks[i+1]
    for i, e in enumerate(cycle.edges):
        assert e.src_instance == cycle.locks[i].instance
        assert e.dst_instance == cycle.locks[(i + 1) % len(cycle.locks)].instance
    assert cycle.fingerprint


def test_stacks_include_the_callers_of_the_acquiring_function(threads, line_of):
    def inner():
        with lock_b:  # <inner:b>
            pass

    def outer():
        with lock_a:  # <outer:a>
            inner()  # <outer:call>

    with lockwatch.watching() as session:
        lock_a = threading.Lock()
        lock_b = threading.Lock()
        threads.run(outer, name="stacker")

    [e] = instance_edges_of(session.snapshot(), lock_a, lock_b)
    assert e.held_stack[-1] == frame(outer, line_of("outer:a"))
    assert e.acquire_stack[-2:] == [frame(outer, line_of("outer:call")),
                                    frame(inner, line_of("inner:b"))]
    # Nothing of lockwatch, threading or wrapt in either stack.
    for entry in e.held_stack + e.acquire_stack:
        path = entry.rsplit(":", 1)[0]  # "<file>:<line> in <function>"
        assert not lw_stacks.is_internal(path), entry


# --- edges once, then counted ---------------------------------------------------------------

def test_edge_is_recorded_once_and_later_occurrences_only_count(threads, monkeypatch, line_of):
    captures = []
    real_capture = lw_stacks.capture

    def counting_capture(*args, **kwargs):
        captures.append(threading.current_thread().name)
        return real_capture(*args, **kwargs)

    def nest(times):
        for _ in range(times):
            with lock_a:  # <once:a>
                lock_b.acquire()  # <once:b>
                lock_b.release()

    with lockwatch.watching() as session:
        lock_a = threading.Lock()  # <once:make-a>
        lock_b = threading.Lock()  # <once:make-b>
        monkeypatch.setattr(lw_stacks, "capture", counting_capture)
        threads.run(nest, 5, name="first")
        threads.run(nest, 3, name="second")
        monkeypatch.setattr(lw_stacks, "capture", real_capture)

    snap = session.snapshot()
    [e] = instance_edges_of(snap, lock_a, lock_b)
    assert e.count == 8
    assert e.thread == "first"  # the first occurrence's thread and stacks are kept
    assert e.acquire_stack[-1] == frame(nest, line_of("once:b"))
    sa, sb = site(snap, HERE, line_of("once:make-a")), site(snap, HERE, line_of("once:make-b"))
    [se] = edges(snap, sa, sb, scope="site")
    assert se.count == 8
    # Stacks were walked for the new edge only (the acquire stack once; the held stack is
    # rebuilt from the live frames), never on the 7 repeats.
    assert 1 <= captures.count("first") <= 2 and "second" not in captures, captures


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
    assert snap.instance_edges == []


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
    assert snap.instance_edges == []
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


# --- same site, other sites -----------------------------------------------------------------

def _make_accounts(n):
    return [threading.Lock() for _ in range(n)]  # <accounts>


def test_same_site_instances_in_a_consistent_order_are_no_cycle(threads):
    def transfers(pairs):
        for i, j in pairs:
            first, second = sorted((i, j))
            with accounts[first]:
                with accounts[second]:
                    pass

    with lockwatch.watching() as session:
        accounts = _make_accounts(4)
        threads.run(transfers, [(0, 1), (2, 3), (1, 3)], name="t1")
        threads.run(transfers, [(1, 0), (3, 2), (3, 0), (2, 1)], name="t2")

    snap = session.snapshot()
    # (0,1) (2,3) (1,3) (0,3) (1,2): the same pairs from both threads are one edge each
    assert len(snap.instance_edges) == 5
    assert session.report().potential_deadlocks == []


def test_same_site_instances_in_inconsistent_orders_are_an_instance_cycle(threads, line_of):
    def transfer(i, j):
        with accounts[i]:
            with accounts[j]:
                pass

    with lockwatch.watching() as session:
        accounts = _make_accounts(3)
        threads.run(transfer, 0, 1, name="t1")
        threads.run(transfer, 1, 2, name="t2")  # consistent so far
        threads.run(transfer, 1, 0, name="t3")  # inverts 0/1

    [cycle] = session.report().potential_deadlocks
    assert cycle.scope == "instance"
    assert sorted(ref.instance for ref in cycle.locks) == [accounts[0]._serial, accounts[1]._serial]
    assert {ref.line for ref in cycle.locks} == {line_of("accounts")}


K = lw_recorder.SAME_SITE_SOURCES


def _take_all_then(locks, last):
    """Hold every lock of ``locks`` (in order), then block on ``last``."""
    for lk in locks:
        lk.acquire()
    try:
        with last:
            pass
    finally:
        for lk in reversed(locks):
            lk.release()


def test_many_held_locks_of_one_site_give_edges_from_the_latest_few_only(threads):
    # as_completed() over n futures holds all n of their locks: n^2/2 edges without a bound
    n = 60
    with lockwatch.watching() as session:
        accounts = _make_accounts(n)
        threads.run(_take_all_then, accounts[:-1], accounts[-1])

    snap = session.snapshot()
    serial = {lk._serial: i for i, lk in enumerate(accounts)}
    pairs = {(serial[e.src_instance], serial[e.dst_instance]) for e in snap.instance_edges}
    # taking lock j, each of the latest K before it (and no older one) gets an edge into it
    assert pairs == {(i, j) for j in range(n) for i in range(max(0, j - K), j)}
    assert len(pairs) < n * (n - 1) // 2


def test_an_inversion_between_far_apart_same_site_locks_is_still_an_instance_cycle(threads):
    n = 3 * K
    with lockwatch.watching() as session:
        accounts = _make_accounts(n)
        threads.run(_take_all_then, accounts[:-1], accounts[-1], name="in-order")
        threads.run(_take_all_then, [accounts[-1]], accounts[0], name="last-then-first")

    found = session.report().potential_deadlocks
    assert [p.scope for p in found] == ["instance"], found
    [cycle] = found
    taken = [ref.instance for ref in cycle.locks]
    # the edge 0 -> last was not recorded: the cycle runs through the chain of later locks, the
    # shortest way (each hop skips at most K locks)
    assert {accounts[0]._serial, accounts[-1]._serial} <= set(taken)
    assert len(taken) == 1 + -(-(n - 1) // K)
    assert {e.thread for e in cycle.edges} == {"in-order", "last-then-first"}


def test_locks_of_other_sites_under_many_same_site_locks_keep_their_edges(threads):
    with lockwatch.watching() as session:
        outer = _make_a()
        accounts = _make_accounts(3 * K)
        threads.run(_take_all_then, [outer, *accounts[:-1]], accounts[-1])

    snap = session.snapshot()
    into_last = {e.src_instance for e in snap.instance_edges if e.dst_instance == accounts[-1]._serial}
    assert into_last == {outer._serial} | {lk._serial for lk in accounts[-1 - K:-1]}


def test_as_completed_over_many_futures_records_a_bounded_number_of_edges():
    import concurrent.futures

    n = 2000
    with lockwatch.watching() as session:
        futures = [concurrent.futures.Future() for _ in range(n)]
        for i, f in enumerate(futures):
            f.set_result(i)
        assert sum(f.result() for f in concurrent.futures.as_completed(futures)) == n * (n - 1) // 2
        done, _ = concurrent.futures.wait(futures)
        assert len(done) == n

    snap = session.snapshot()
    # at most K edges into each future's lock, recorded once for both calls (was n^2/2: 2 million)
    assert len(snap.instance_edges) <= K * n
    assert session.report().potential_deadlocks == []


def _make_a():
    return threading.Lock()  # <site:a>


def _make_b():
    return threading.Lock()  # <site:b>


def test_site_scope_cycle_when_the_instances_never_met(threads, line_of):
    def nest(x, y):
        with x:
            with y:
                pass

    with lockwatch.watching() as session:
        a1, a2 = _make_a(), _make_a()
        b1, b2 = _make_b(), _make_b()
        threads.run(nest, a1, b1, name="t-a1-b1")
        threads.run(nest, b2, a2, name="t-b2-a2")

    found = session.report().potential_deadlocks
    assert [p.scope for p in found] == ["site"], found
    [cycle] = found
    assert sorted(ref.line for ref in cycle.locks) == [line_of("site:a"), line_of("site:b")]
    assert all(ref.instance is None for ref in cycle.locks)
    assert sorted(e.thread for e in cycle.edges) == ["t-a1-b1", "t-b2-a2"]


def _make_x():
    return threading.Lock()  # <old:x>


def test_a_lock_from_an_earlier_session_does_not_hide_a_site_cycle(threads, line_of):
    def nest(x, y):
        with x:
            with y:
                pass

    with lockwatch.watching():
        old = _make_x()  # instrumented, from a session whose state is gone
    with lockwatch.watching() as session:
        a1, a2 = _make_a(), _make_a()
        b1, b2 = _make_b(), _make_b()
        threads.run(nest, old, b1)  # an edge from the old lock's site into site b
        threads.run(nest, a1, b1)
        threads.run(nest, b2, a2)

    found = session.report().potential_deadlocks
    assert [(p.scope, sorted(ref.line for ref in p.locks)) for p in found] == [
        ("site", [line_of("site:a"), line_of("site:b")])], found


def test_three_lock_cycle_across_three_threads(threads):
    def nest(x, y):
        with x:
            with y:
                pass

    with lockwatch.watching() as session:
        a = threading.Lock()
        b = threading.RLock()
        c = threading.Lock()  # another line: another site (one line would be a site cycle)
        threads.run(nest, a, b)
        threads.run(nest, b, c)
        assert session.report().potential_deadlocks == []
        threads.run(nest, c, a)

    [cycle] = session.report().potential_deadlocks
    assert cycle.scope == "instance" and len(cycle.locks) == 3


def test_edges_from_a_thread_not_started_by_threading(line_of):
    import _thread

    finished = threading.Event()
    dummies = []

    def raw():
        try:
            with lock_a:
                with lock_b:  # <raw:b>
                    pass
            dummies.append(threading.get_ident() in threading._active)
        finally:
            finished.set()

    with lockwatch.watching() as session:
        lock_a = threading.Lock()
        lock_b = threading.Lock()
        _thread.start_new_thread(raw, ())
        assert finished.wait(60)

    [e] = instance_edges_of(session.snapshot(), lock_a, lock_b)
    assert e.acquire_stack[-1] == frame(raw, line_of("raw:b"))
    assert e.thread  # named by its ident: threading knows nothing of it
    assert dummies == [False]  # recording did not make threading register a _DummyThread


# --- exact counts ---------------------------------------------------------------------------

N_THREADS = 8
M_ITERATIONS = 2000


@pytest.mark.parametrize("kind", ["Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore"])
def test_counts_are_exact_under_contention(threads, kind):
    counter = [0]
    go = threading.Event()

    def hammer():
        assert go.wait(60)
        for i in range(M_ITERATIONS):
            if i % 2:
                with lock:
                    counter[0] += 1
            else:
                lock.acquire()
                counter[0] += 1
                lock.release()

    with lockwatch.watching() as session:
        lock = getattr(threading, kind)()
        workers = [threads.start(hammer, name=f"hammer-{n}") for n in range(N_THREADS)]
        go.set()
        for w in workers:
            w.join()

    total = N_THREADS * M_ITERATIONS
    assert counter[0] == total
    [stats] = session.snapshot().locks
    assert stats.kind == kind
    assert stats.acquisitions == total
    assert stats.hold.count == total
    assert 0 <= stats.contended <= total
    assert stats.wait.count == stats.contended
    assert stats.failed == 0
    assert stats.instances == 1


def test_a_contended_acquisition_is_counted_with_its_wait(threads):
    def blocked():
        with lock:
            pass

    with lockwatch.watching() as session:
        lock = threading.Lock()
        with lock:
            w = threads.start(blocked, name="waiter")
            # Wait (bounded, by polling its stack, not the clock) until the thread is on
            # lockwatch's contended path, blocked on the real lock.
            assert _wait_until_in(w.thread, "_wait"), "the thread never blocked on the lock"
        w.join()

    [stats] = session.snapshot().locks
    assert stats.acquisitions == 2
    assert stats.contended == 1
    assert stats.wait.count == 1
    assert stats.wait.max_ns > 0 and stats.wait.total_ns == stats.wait.max_ns


def _wait_until_in(thread, function, polls=60_000):
    """Poll (at most ~60 s) until ``thread``'s stack has a frame of lockwatch's ``function``."""
    pkg = os.path.dirname(os.path.abspath(lockwatch.__file__))
    for _ in range(polls):
        f = sys._current_frames().get(thread.ident)
        while f is not None:
            if f.f_code.co_name == function and f.f_code.co_filename.startswith(pkg):
                return True
            f = f.f_back
        if not thread.is_alive():
            return False
        threading.Event().wait(0.001)
    return False


# --- memory ---------------------------------------------------------------------------------

def test_dropping_200000_locks_leaves_no_per_lock_state():
    def churn(n):
        for _ in range(n):
            a = threading.Lock()
            b = threading.Lock()
            r = threading.RLock()
            s = threading.Semaphore()
            with a:
                with b:  # a new instance edge every time: dies with b
                    pass
            with r:
                with r:
                    pass
            s.acquire()
            s.release()

    def census():
        counts = {}
        for o in gc.get_objects():
            counts[type(o)] = counts.get(type(o), 0) + 1
        return counts

    # Only what lockwatch's own code allocates is measured (other threads of the test process
    # may allocate meanwhile); the watchdog thread is off.
    pkg = os.path.join(os.path.dirname(os.path.abspath(lockwatch.__file__)), "*")
    only_lockwatch = [tracemalloc.Filter(True, pkg)]

    with lockwatch.watching(deadlock_timeout=0) as session:
        churn(200)  # warm up: sites, histograms, caches
        gc.collect()
        tracemalloc.start()
        try:
            # The first tracemalloc snapshot exists in both censuses (on 3.9 its traces are
            # tuples, which the census would otherwise count as growth).
            before = tracemalloc.take_snapshot().filter_traces(only_lockwatch)
            objects_before = census()
            churn(50_000)  # 200,000 locks
            gc.collect()
            objects_after = census()
            after = tracemalloc.take_snapshot().filter_traces(only_lockwatch)
        finally:
            tracemalloc.stop()

    grown = {t.__qualname__: objects_after[t] - objects_before.get(t, 0) for t in objects_after
             if objects_after[t] - objects_before.get(t, 0) > 100}
    assert not grown, grown  # per-lock state would be ~50,000 of some type
    # 200,000 locks: even 8 bytes kept per lock would be 1.6 MB.
    growth = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert growth < 256 * 1024, [str(x) for x in after.compare_to(before, "lineno")[:10]]
    snap = session.snapshot()
    by_kind = {}
    for s in snap.locks:
        by_kind.setdefault(s.kind, []).append(s)
    assert sum(s.instances for s in by_kind["Lock"]) == 2 * 50_200
    assert sum(s.acquisitions for s in by_kind["Lock"]) == 2 * 50_200
    assert [s.acquisitions for s in by_kind["RLock"]] == [50_200]
    assert [s.hold.count for s in by_kind["Semaphore"]] == [50_200]


def test_hold_and_wait_counts_are_exact_when_threads_switch_at_any_bytecode(threads, line_of):
    """A site's histograms are shared by its instances and added to without a lock. Four threads,
    each with its own lock of one site and sharing two locks of another, with a thread switch due
    after every few bytecodes: every hold and every wait is counted (on Python 3.9, where a switch
    can split `counts[i] += 1`, a list lost 0.4-4% of them here)."""
    rounds = 20_000
    start = threading.Barrier(4)

    def work(i):
        mine, both = own[i], shared[i % 2]
        start.wait(60)
        for _ in range(rounds):
            with mine:
                pass
            with both:
                pass

    with lockwatch.watching(deadlock_timeout=0) as session:
        own = [threading.Lock() for _ in range(4)]  # <own>
        shared = [threading.Lock() for _ in range(2)]  # <shared>
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        try:
            for i in range(4):
                threads.start(work, i)
            threads.join_all()
        finally:
            sys.setswitchinterval(interval)
        snap = session.snapshot()
    for line in (line_of("own"), line_of("shared")):
        st = site(snap, HERE, line)
        assert st.acquisitions == 4 * rounds
        assert (st.hold.count, st.wait.count) == (4 * rounds, st.contended)


# --- fork -----------------------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is not available on this platform")
def test_fork_child_starts_clean(threads):
    holding = threading.Event()
    done = threading.Event()

    def other_thread():
        with other_lock:  # held by a thread that will not exist in the child
            # ...and so is lockwatch's own mutex: the child must not wait for it.
            with lw_recorder.mutex:
                holding.set()
                done.wait(90)  # set by the test once the child is done (or given up on)

    def child():
        assert other_lock.locked()  # copied locked; its owner does not exist here
        assert mine.locked()  # the forking thread's own hold survives, as in CPython
        mine.release()
        assert not mine.locked()
        fresh_a = threading.Lock()
        fresh_b = threading.RLock()
        with fresh_a:
            with fresh_b:
                pass
        with mine:
            pass
        t = threading.Thread(target=lambda: [fresh_a.acquire(), fresh_a.release()])
        t.start()
        t.join(30)
        assert not t.is_alive()
        snap = lockwatch.current_session().snapshot()
        pairs = {(e.src_instance, e.dst_instance) for e in snap.instance_edges}
        assert pairs == {(fresh_a._serial, fresh_b._serial)}, pairs
        return ""

    with lockwatch.watching() as session:
        other_lock = threading.Lock()
        mine = threading.Lock()
        w = threads.start(other_thread, name="other")
        assert holding.wait(60)
        mine.acquire()
        try:
            wait_status, message = _in_forked_child(child)
        finally:
            done.set()  # the other thread lets go of the mutex before anything here needs it
            w.join()
        mine.release()

    assert os.WIFEXITED(wait_status), wait_status
    assert os.WEXITSTATUS(wait_status) == 0, message
    assert session.report().potential_deadlocks == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is not available on this platform")
def test_fork_while_another_thread_is_making_a_lock(line_of):
    """fork() may run while another thread has allocated an instance and not yet set it up. That
    thread does not exist in the child, so the instance stays half made there for good: the
    child's reset and its snapshots must pass over it (and not count it), not raise."""
    import ast

    def child():
        errors = [f"{u.exc_type.__name__}: {u.exc_value}" for u in unraisable]
        for lock in complete:
            with lock:
                pass
        snap = lockwatch.current_session().snapshot()  # walks the heap: meets half_made
        made = sorted((s.kind, s.instances, s.acquisitions) for s in snap.locks
                      if s.filename == HERE and s.line == line_of("complete"))
        return repr((errors, made))

    with lockwatch.watching() as session:
        kinds = [type(threading.Lock()), type(threading.RLock()), type(threading.Semaphore())]
        # Made and set up here, so each site has exactly one complete instance.
        complete = [threading.Lock(), threading.RLock(), threading.Semaphore()]  # <complete>
        half_made = [object.__new__(cls) for cls in kinds]  # what a maker cut off by fork leaves
        for lock in complete:
            with lock:
                pass
        unraisable = []
        hook = sys.unraisablehook
        sys.unraisablehook = unraisable.append  # where errors of an at-fork handler go
        try:
            wait_status, message = _in_forked_child(child)
        finally:
            sys.unraisablehook = hook
        snap = session.snapshot()  # the parent's heap holds them too
        del half_made

    assert os.WIFEXITED(wait_status) and os.WEXITSTATUS(wait_status) == 0, message
    errors, made = ast.literal_eval(message)  # a repr of plain lists, strings and ints
    assert errors == []
    # One instance made at each site (the half-made ones are not counted), and only the child's
    # own acquisition: the parent reports its own.
    assert made == [("Lock", 1, 1), ("RLock", 1, 1), ("Semaphore", 1, 1)]
    assert {s.kind: (s.instances, s.acquisitions) for s in snap.locks
            if s.filename == HERE and s.line == line_of("complete")} \
        == {"Lock": (1, 1), "RLock": (1, 1), "Semaphore": (1, 1)}


def _in_forked_child(child):
    """fork(); the child runs ``child()``, writes the string it returns (or its traceback) to a
    pipe and ends with os._exit: it never returns into pytest. Returns the child's wait status
    (bounded: a child stuck on a lock is killed and the test fails) and what it wrote."""
    import traceback
    import warnings

    rfd, wfd = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(rfd)
            os.write(wfd, child().encode())
            status = 0
        except BaseException:
            os.write(wfd, traceback.format_exc().encode())
        finally:
            os._exit(status)
    os.close(wfd)
    try:
        wait_status = _wait_child(pid)
    finally:
        with os.fdopen(rfd, "rb") as r:
            message = r.read().decode()
    return wait_status, message


def _wait_child(pid, timeout=60.0):
    """waitpid() with a bound (polled, so no clock assertion): kill the child when it is stuck."""
    for _ in range(int(timeout * 100)):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        threading.Event().wait(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail(f"the forked child was still running after {timeout}s (stuck on a lock?)")


# --- finalizers -----------------------------------------------------------------------------

def test_finalizer_taking_an_instrumented_lock_inside_a_with_block(threads):
    ran = []

    class Holder:
        def __init__(self):
            self.me = self  # a reference cycle: only the collector frees it

        def __del__(self):
            with fin_lock:
                ran.append(True)
            fresh = threading.Lock()
            with fresh:
                pass

    def work():
        with outer:
            Holder()
            Holder()
            gc.collect()

    with lockwatch.watching() as session:
        outer = threading.Lock()
        fin_lock = threading.Lock()
        gc.collect()
        threads.run(work)

    assert ran == [True, True]
    assert not fin_lock.locked() and not outer.locked()
    assert len(instance_edges_of(session.snapshot(), outer, fin_lock)) == 1


_FINALIZER_STRESS = textwrap.dedent("""
    import faulthandler, gc, sys, threading
    faulthandler.dump_traceback_later(60, exit=True)  # a deadlock fails, with the stacks
    import lockwatch

    class Chain:
        # Each collection finds one of these, and its finalizer leaves the next one behind.
        def __init__(self):
            self.me = self

        def __del__(self):
            Chain()
            lock = threading.Lock()            # a new instance (its site counts it)
            with lock:
                pass
            held.acquire(False)                # a failed trylock (the failure counter)
            sem = threading.Semaphore(2)       # semaphore bookkeeping
            sem.acquire()
            sem.release()
            with fin_lock:                     # a new edge while the recorder is busy
                pass

    with lockwatch.watching(deadlock_timeout=0) as session:
        held = threading.Lock()
        held.acquire()
        fin_lock = threading.Lock()
        locks = [threading.Lock() for _ in range(12)]
        Chain()
        gc.set_threshold(1)  # collect on (nearly) every allocation, lockwatch's own included
        try:
            for i in range(12):
                for j in range(12):
                    if i != j:
                        with locks[i]:
                            with locks[j]:
                                pass
                session.snapshot()
            for n in range(50):
                exec(compile("l = threading.Lock()", "<site %d>" % n, "exec"))  # new sites
        finally:
            gc.set_threshold(700)
        held.release()
    print("finished", len(session.snapshot().instance_edges) > 100)
""")


def test_finalizers_running_while_the_recorder_is_busy_do_not_deadlock(tmp_path):
    script = tmp_path / "finalizer_stress.py"
    script.write_text(_FINALIZER_STRESS)
    env = child_env()
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=100)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "finished True", proc.stdout + proc.stderr


@pytest.mark.parametrize("line, name", [
    ("lock = threading.Lock()", "lock"),
    ("self._lock = threading.RLock()", "_lock"),
    ("cache[key] = threading.Lock()", "cache"),
    ("run(x, guard=threading.Lock())", "guard"),
    ("locks = {'orders': threading.Lock()}", "orders"),
    ("a, b = threading.Lock(), threading.Lock()", None),  # which one is which is not on the line
    ("self.a, self.b = threading.Lock(), threading.RLock()", None),
    ("threading.Lock()", None),
])
def test_lock_names_come_from_the_creation_line(tmp_path, line, name):
    from lockwatch import stacks

    src = tmp_path / "names.py"
    src.write_text(f"import threading\n{line}\n")
    assert stacks.derived_name(str(src), 2) == name
