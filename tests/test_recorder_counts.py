"""The recorder's counters are exact under real contention, and it keeps no state per dropped lock."""
from __future__ import annotations

import gc
import itertools
import os
import sys
import threading
import tracemalloc

import pytest
from support import site

import lockwatch
from lockwatch import histogram, recorder

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("lockwatch_off")]

HERE = __file__


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

def test_dropping_50000_locks_leaves_no_per_lock_state():
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
        # A histogram makes a counter at its bucket's first duration, up to NBUCKETS of them:
        # all made now, so that what grows below is what a lock keeps.
        for st in list(recorder.state.sites.values()):
            for hist in (st.hold_hist, st.wait_hist):
                for i in range(histogram.NBUCKETS):
                    hist.setdefault(i, itertools.count())
        gc.collect()
        tracemalloc.start()
        try:
            # The first tracemalloc snapshot exists in both censuses (on 3.9 its traces are
            # tuples, which the census would otherwise count as growth).
            before = tracemalloc.take_snapshot().filter_traces(only_lockwatch)
            objects_before = census()
            churn(12_500)  # 50,000 locks (under tracemalloc: 200,000 took 100 s on two busy cores)
            gc.collect()
            objects_after = census()
            after = tracemalloc.take_snapshot().filter_traces(only_lockwatch)
        finally:
            tracemalloc.stop()

    grown = {t.__qualname__: objects_after[t] - objects_before.get(t, 0) for t in objects_after
             if objects_after[t] - objects_before.get(t, 0) > 100}
    assert not grown, grown  # per-lock state would be ~12,500 of some type
    # 50,000 locks: even 8 bytes kept per lock would be 400 KB.
    growth = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert growth < 256 * 1024, [str(x) for x in after.compare_to(before, "lineno")[:10]]
    snap = session.snapshot()
    by_kind = {}
    for s in snap.locks:
        by_kind.setdefault(s.kind, []).append(s)
    assert sum(s.instances for s in by_kind["Lock"]) == 2 * 12_700
    assert sum(s.acquisitions for s in by_kind["Lock"]) == 2 * 12_700
    assert [s.acquisitions for s in by_kind["RLock"]] == [12_700]
    assert [s.hold.count for s in by_kind["Semaphore"]] == [12_700]


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
