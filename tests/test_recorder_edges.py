"""The model of DESIGN.md ("the model"), rule by rule, with real threads: the lock-order edges and
cycles the recorder keeps (AB/BA, edges once, same and other sites, lock names). Inversions are run
one thread after another (never concurrently), so they are recorded without ever really
deadlocking."""
from __future__ import annotations

import threading

import pytest
from support import frame, instance_edges_of, site

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


def test_many_held_locks_of_one_site_give_edges_from_the_latest_only(threads):
    # as_completed() over n futures holds all n of their locks: n^2/2 edges without a bound
    n = 60
    with lockwatch.watching() as session:
        accounts = _make_accounts(n)
        threads.run(_take_all_then, accounts[:-1], accounts[-1])

    snap = session.snapshot()
    serial = {lk._serial: i for i, lk in enumerate(accounts)}
    pairs = {(serial[e.src_instance], serial[e.dst_instance]) for e in snap.instance_edges}
    # taking lock j while holding at most K of its site, each of them gets an edge into it (a
    # nest K + 1 deep is exact); holding more, only the latest (lockdep's rule)
    assert pairs == ({(i, j) for j in range(K + 1) for i in range(j)}
                     | {(j - 1, j) for j in range(K + 1, n)})
    assert len(pairs) == K * (K + 1) // 2 + n - 1 - K


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
    # shortest way: 0 -> K (taken while K were held), then one by one
    assert sorted(taken) == [accounts[0]._serial, *[lk._serial for lk in accounts[K:]]]
    assert {e.thread for e in cycle.edges} == {"in-order", "last-then-first"}


def test_locks_of_other_sites_under_many_same_site_locks_keep_their_edges(threads):
    with lockwatch.watching() as session:
        outer = _make_a()
        accounts = _make_accounts(3 * K)
        threads.run(_take_all_then, [outer, *accounts[:-1]], accounts[-1])

    snap = session.snapshot()
    into_last = {e.src_instance for e in snap.instance_edges if e.dst_instance == accounts[-1]._serial}
    assert into_last == {outer._serial, accounts[-2]._serial}


@pytest.mark.parametrize("n", [2, 3 * K])
def test_a_lock_dropped_while_held_draws_no_edges(threads, n):
    # lockdep's "held lock freed": nobody can release or wait for it, so it orders nothing; also
    # when the thread holds more locks of one site than get edges (proxies._sources)
    def drop_one_then_take_more(locks):
        for lk in locks[:-1]:
            lk.acquire()
        threading.Lock().acquire()  # never released, and nothing refers to it but the held list
        try:
            with locks[-1]:
                pass
        finally:
            for lk in reversed(locks[:-1]):
                lk.release()

    with lockwatch.watching() as session:
        accounts = _make_accounts(n)
        threads.run(drop_one_then_take_more, accounts)

    snap = session.snapshot()
    alive = {lk._serial for lk in accounts}
    ends = {e.src_instance for e in snap.instance_edges} | {e.dst_instance for e in snap.instance_edges}
    assert ends <= alive, snap.instance_edges
    assert (accounts[-2]._serial, accounts[-1]._serial) in {
        (e.src_instance, e.dst_instance) for e in snap.instance_edges}


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
    # a lock bound to a name, not `return threading.Lock()`: that would be a factory, whose
    # callers are the sites (origins.is_factory)
    lock = threading.Lock()  # <site:a>
    return lock


def _make_b():
    # a lock bound to a name, not `return threading.Lock()`: that would be a factory, whose
    # callers are the sites (origins.is_factory)
    lock = threading.Lock()  # <site:b>
    return lock


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
