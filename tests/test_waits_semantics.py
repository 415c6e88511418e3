"""The waits lockwatch records behave exactly as without it: return values, exceptions, timeouts,
subclasses, pickling and copying; and the class-level wrappers go away when it is switched off."""
from __future__ import annotations

import copy
import pickle
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import pytest

import lockwatch
from lockwatch import waits

pytestmark = pytest.mark.timeout(120)


def test_return_values_exceptions_and_timeouts_are_the_real_ones(threads, lockwatch_off):
    with lockwatch.watching():
        ev = threading.Event()
        assert ev.wait(0.01) is False
        ev.set()
        assert ev.wait() is True and ev.wait(0) is True
        q: queue.Queue = queue.Queue(maxsize=1)
        with pytest.raises(queue.Empty):
            q.get(timeout=0.01)
        q.put(1)
        with pytest.raises(queue.Full):
            q.put(2, timeout=0.01)
        assert q.get() == 1
        f: Future = Future()
        with pytest.raises(FutureTimeout):
            f.result(timeout=0.01)
        f.set_exception(ValueError("x"))
        with pytest.raises(ValueError):
            f.result()
        assert isinstance(f.exception(), ValueError)
        gate = threading.Barrier(2, timeout=0.05)
        with pytest.raises(threading.BrokenBarrierError):
            gate.wait()
        t = threading.Thread(target=ev.wait)
        with pytest.raises(RuntimeError):
            t.join()  # not started: the real error
        t.start()
        assert t.join(5) is None and not t.is_alive()
        with pytest.raises(RuntimeError):
            threading.current_thread().join()  # cannot join itself: the real error
        cond = threading.Condition()
        with cond:
            assert cond.wait(0.01) is False
            assert cond.wait_for(lambda: 7, 0.01) == 7
        with ThreadPoolExecutor(max_workers=2) as pool:
            assert pool.submit(pow, 2, 5).result() == 32
            assert list(pool.map(abs, [-1, -2])) == [1, 2]


def test_subclasses_of_thread_event_and_queue_keep_working(lockwatch_off):
    calls = []

    class MyThread(threading.Thread):
        def join(self, timeout=None):
            calls.append("join")
            return super().join(timeout)

    class MyEvent(threading.Event):
        def set(self):
            calls.append("set")
            super().set()

    class MyQueue(queue.Queue):
        def _put(self, item):
            calls.append("put")
            super()._put(item * 2)

    with lockwatch.watching():
        ev = MyEvent()
        t = MyThread(target=ev.set)
        t.start()
        t.join()
        assert ev.is_set()
        q = MyQueue()
        q.put(21)
        assert q.get() == 42
        assert isinstance(t, threading.Thread) and isinstance(q, queue.Queue)
        assert type(threading.Event()) is threading.Event  # no class replaced
    assert calls == ["set", "join", "put"]


def test_pickling_and_copying_queues_and_events_as_without_lockwatch(lockwatch_off):
    def outcome(fn):
        try:
            fn()
            return "ok"
        except Exception as exc:
            return type(exc).__name__

    def cases():
        q: queue.Queue = queue.Queue()
        q.put(1)
        ev = threading.Event()
        return [lambda: pickle.dumps(q), lambda: pickle.dumps(ev), lambda: copy.copy(q).get_nowait(),
                lambda: copy.copy(ev).is_set(), lambda: pickle.loads(pickle.dumps(queue.SimpleQueue()))]

    plain = [outcome(fn) for fn in cases()]
    with lockwatch.watching():
        watched = [outcome(fn) for fn in cases()]
        q: queue.Queue = queue.Queue()
        q.put(1)
        q.get()
        assert "_lockwatch" not in " ".join(vars(q))  # no attribute on the program's objects
    assert watched == plain


def test_switching_off_restores_the_original_methods(lockwatch_off):
    before = {name: threading.Thread.__dict__[name] for name in ("join", "__init__")}
    before_event = threading.Event.__dict__["wait"]
    with lockwatch.watching():
        assert threading.Thread.__dict__["join"] is not before["join"]
    assert {name: threading.Thread.__dict__[name] for name in before} == before
    assert threading.Event.__dict__["wait"] is before_event
    assert not waits.active and not waits.blocked


def test_waits_are_registered_only_while_blocked(threads, lockwatch_off):
    with lockwatch.watching():
        ev = threading.Event()
        seen = []

        def waiter():
            ev.wait()

        w = threads.start(waiter, name="waiter")
        for _ in range(500):
            if w.thread is not None and w.thread.ident in waits.blocked:
                break
            threading.Event().wait(0.01)
        seen.append({b.kind for b in waits.blocked.values()})
        ev.set()
        w.join()
        assert seen == [{"Event"}]
        assert w.thread.ident not in waits.blocked


def test_a_wait_or_a_wake_holding_a_lock_never_blocks_on_lockwatchs_mutex(lockwatch_off):
    """Another thread holding lockwatch's mutex (a snapshot, a finalizer, a hook) must not stop a
    thread that holds a program lock in Event.set/wait, Queue.put/get, a Future's round trip or a
    join: the wait bookkeeping reads the thread's own held list without the mutex. Coordinated
    with raw _thread locks (not instrumented); the worker's first round records every edge, so
    the second round, run while the mutex is held, is the common path."""
    import _thread

    from lockwatch import recorder

    go, done = _thread.allocate_lock(), _thread.allocate_lock()
    go.acquire()
    done.acquire()
    rounds: list[int] = []
    with lockwatch.watching():
        lock, ev, q = threading.Lock(), threading.Event(), queue.Queue()
        futures: list[Future] = [Future(), Future()]
        ended = threading.Thread(target=rounds.copy)
        ended.start()

        def one_round() -> None:
            with lock:
                ev.set()
                ev.wait()
                q.put(1)
                assert q.get() == 1
                for f in futures:
                    f.done()  # the edges from `lock` to each Future's lock: recorded in round 1
                futures[len(rounds)].set_result(len(rounds))
                assert futures[len(rounds)].result() == len(rounds)
                ended.join()
            rounds.append(1)

        def worker() -> None:
            one_round()
            go.acquire()
            one_round()
            done.release()

        t = threading.Thread(target=worker)
        t.start()
        while not rounds:
            threading.Event().wait(0.01)
        with recorder.mutex:
            go.release()
            finished = done.acquire(True, 10)
        t.join(10)
        assert finished, "a lock-holding thread blocked on lockwatch's mutex in a wait or a wake"
        assert rounds == [1, 1] and not t.is_alive()
        ends = {(e.src_kind, e.res.kind) for e in waits.wait_edges.values() if e.lock_serial == lock._serial}
        assert ends == {("lock", "Event"), ("resource", "Event"), ("resource", "Queue"), ("resource", "Future"),
                        ("lock", "Thread")}


def test_a_lock_handed_off_and_not_yet_applied_draws_no_wait_edge(threads, lockwatch_off):
    """A Lock released by another thread stays on its holder's list until the holder applies the
    hand-off: a wait or a wake in between must not count it as held (the list is read without the
    mutex, less the pending hand-offs)."""
    with lockwatch.watching():
        lock, other, ev = threading.Lock(), threading.Lock(), threading.Event()

        def holder() -> None:
            with lock:
                other.acquire()
                threads.run(other.release, name="releaser")  # a hand-off, pending on this list
                ev.set()
                ev.wait()

        threads.run(holder, name="holder")
        edges = [e for e in waits.wait_edges.values() if e.res is waits.known(ev)]
        assert {e.lock_serial for e in edges} == {lock._serial}
        assert {e.op for e in edges} == {"set", "wait"}
