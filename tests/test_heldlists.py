"""Held lists under concurrency: a thread's list is changed by that thread only; signals and
hand-offs leave no phantom hold, raise nothing inside the program and draw no false edge."""
from __future__ import annotations

import collections
import queue
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from support import instance_edges_of

import lockwatch
from lockwatch import recorder

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Thread switches as often as the interpreter allows: races that need a switch between two
    bytecodes happen in most runs instead of a few in a hundred."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def holding(held: list) -> list:
    """What a held list says its thread holds (less releases handed to it and not yet applied)."""
    return getattr(recorder, "holding", list)(held)


class SimpleQueue:
    """queue._PySimpleQueue's design (a deque and a Semaphore(0) used as a signal), built on the
    patched threading so that its semaphore is lockwatch's."""

    def __init__(self) -> None:
        self._queue: collections.deque = collections.deque()
        self._count = threading.Semaphore(0)

    def put(self, item: Any) -> None:
        self._queue.append(item)
        self._count.release()

    def get(self) -> Any:
        self._count.acquire()
        return self._queue.popleft()


def test_many_feeders_and_consumers_on_a_signal_semaphore(threads, fast_switching):
    """test_queue.PySimpleQueueTest.test_many_threads: 50 feeders and 50 consumers. lockwatch
    raised IndexError from proxies._sources inside the program's acquire() (another thread's
    release shrank the consumer's held list while the consumer walked it)."""
    for _ in range(4):
        _feeders_and_consumers(threads, n_threads=50, per_thread=40)


def _feeders_and_consumers(threads: Any, n_threads: int, per_thread: int) -> None:
    with lockwatch.watching() as session:
        q = SimpleQueue()
        results: list = []
        lists: list = []

        def feed(base: int) -> None:
            for i in range(per_thread):
                q.put(base + i)

        def consume() -> None:
            for _ in range(per_thread):
                results.append(q.get())
            lists.append(recorder.tls.held)

        workers = [threads.start(consume) for _ in range(n_threads)]
        workers += [threads.start(feed, i * per_thread) for i in range(n_threads)]
        for w in workers:
            w.join()  # re-raises what lockwatch raised inside the thread
        assert sorted(results) == list(range(n_threads * per_thread))
        assert [holding(h) for h in lists if holding(h)] == []
        assert q._count._holders == []
        assert not session.snapshot().internal_errors


def test_signal_released_before_it_is_acquired_leaves_no_hold(threads):
    """Every release of a Semaphore(0) comes before the acquire that takes its unit: there is
    nobody's hold to end then, and the acquire must not start one that nobody ends."""
    n = 500
    with lockwatch.watching() as session:
        sem = threading.Semaphore(0)
        other = threading.Lock()
        for _ in range(n):
            sem.release()

        def consume() -> list:
            for _ in range(n):
                sem.acquire()
                with other:
                    pass
            return holding(recorder.tls.held)

        assert threads.run(consume) == []
        assert sem._holders == []
        assert instance_edges_of(session.snapshot(), sem, other) == []
        assert session.report().potential_deadlocks == []


def test_signal_semaphore_producer_and_consumer_race(threads, fast_switching):
    """Producer and consumer at once: whichever bookkeeping runs first, holds stay bounded, the
    consumer's held list ends empty and no edge leaves the semaphore."""
    n = 5_000
    with lockwatch.watching() as session:
        sem = threading.Semaphore(0)
        other = threading.Lock()
        peak = [0]

        def produce() -> None:
            for _ in range(n):
                sem.release()

        def consume() -> list:
            for _ in range(n):
                sem.acquire()
                with other:
                    pass
                peak[0] = max(peak[0], len(sem._holders))
            return holding(recorder.tls.held)

        c = threads.start(consume)
        threads.start(produce).join()
        assert c.join() == []
        assert peak[0] <= 2
        assert sem._holders == []
        assert instance_edges_of(session.snapshot(), sem, other) == []


def _yielding_tracer(frame: Any, event: str, arg: Any) -> Callable:
    time.sleep(0)  # a line tracer that gives up the GIL at every line (as a debugger may)
    return _yielding_tracer


def test_hand_off_release_under_a_line_tracer_leaves_no_phantom(threads, fast_switching):
    """The owner takes L and hands it to a releaser, and meanwhile takes and drops another lock;
    the releaser's check-then-pop on the owner's list interleaved with that (the check saw L on
    top, the pop took the owner's newer lock): L stayed "held" by the owner, and the owner's
    `with m: with l:` then drew a false L -> M edge: a false potential deadlock."""
    rounds = 300
    with lockwatch.watching() as session:
        handed, other = threading.Lock(), threading.Lock()
        to_release: queue.Queue = queue.Queue()
        released = threading.Event()
        leftovers: list = []

        def releaser() -> None:
            sys.settrace(_yielding_tracer)
            while True:
                lock = to_release.get()
                if lock is None:
                    return
                lock.release()
                released.set()

        def owner() -> None:
            for _ in range(rounds):
                released.clear()
                handed.acquire()
                to_release.put(handed)
                n = threading.Lock()
                while not released.is_set():  # races with the release
                    with n:
                        time.sleep(0)
                    time.sleep(0)
                with other:
                    with handed:
                        pass
            leftovers.extend(holding(recorder.tls.held))
            to_release.put(None)

        r = threads.start(releaser)
        o = threads.start(owner)
        o.join()
        r.join()
    assert leftovers == []
    assert instance_edges_of(session.snapshot(), handed, other) == []
    assert session.report().potential_deadlocks == []
