"""One deterministic program for tests/test_cores.py: every path of the hot path (Lock and RLock,
with and acquire/release, nesting, re-entry, arguments, try-locks that fail, out-of-order and
cross-thread releases, more locks of one site held than recorder.SAME_SITE_SOURCES, a Condition, Semaphores and a BoundedSemaphore in every argument form, a
contended and a timed-out semaphore wait, a semaphore released by another thread and one made
with no unit), threads run one after the other (no timing
decides anything), holds of given durations, and an inversion at the end. Both cores must record
the same report."""
import threading

a = threading.Lock()
b = threading.Lock()
r = threading.RLock()
h = threading.Lock()  # held for given durations: both cores count them in the same buckets
cond = threading.Condition()
sem = threading.Semaphore(2)
s2 = threading.Semaphore(2)
bs = threading.BoundedSemaphore(1)
idle = threading.Semaphore(0)  # a signal from the start: released before it is acquired
c = threading.Lock()
row = [threading.Lock() for _ in range(12)]  # one site: more of it held than SAME_SITE_SOURCES
z = threading.Lock()


def nested(n):
    for _ in range(n):
        with a:
            with b:
                pass


def reentrant(n):
    for _ in range(n):
        with r:
            with r:
                with a:
                    pass
            r.acquire()
            r.release()


def arguments():
    assert a.acquire(True, 1)
    assert not a.acquire(False)  # a failed try-lock
    a.release()
    assert r.acquire(blocking=True, timeout=0)  # timeout=0: a try-lock
    r.release()
    r.acquire(timeout=5)
    r.release()
    assert b.acquire(blocking=False)
    b.release()


def out_of_order():
    a.acquire()
    b.acquire()
    a.release()  # not the innermost
    b.release()


def handed_over():
    box = []
    a.acquire()
    t = threading.Thread(target=lambda: box.append(a.release()), name="releaser")
    t.start()
    t.join()
    with b:  # a's release was handed over: no edge a -> b here
        pass


def condition_and_semaphore():
    with cond:
        cond.notify()
        with a:
            pass
    with sem:
        with b:
            pass


def semaphores():
    with c:
        assert s2.acquire(timeout=5)  # an edge c -> s2, timed
        assert s2.acquire()  # counted again, and not timed any more
    assert not s2.acquire(False)  # failed try-locks
    assert not s2.acquire(blocking=True, timeout=0)
    s2.release(2)  # ends both holds
    assert bs.acquire(True, 0)
    bs.release()
    try:
        bs.release()
    except ValueError:
        pass
    else:
        raise AssertionError("a BoundedSemaphore released too many times")
    with bs:
        with c:  # an edge bs -> c
            pass
    idle.release()  # a credit
    assert idle.acquire(timeout=0)  # uses it up


def _wait_until_waiting(s, n=1):
    while len(s._cond._waiters) < n:  # threading's own: the other thread is blocked in acquire()
        threading.Event().wait(0.001)


def contended_semaphore():
    bs.acquire()
    box = []
    t = threading.Thread(target=lambda: box.append(bs.acquire(timeout=0.01)), name="sem_timeout")
    t.start()
    t.join()
    t = threading.Thread(target=lambda: box.append(bs.acquire(timeout=30)) or bs.release(), name="sem_waiter")
    t.start()
    _wait_until_waiting(bs)
    bs.release()
    t.join()
    assert box == [False, True], box


def semaphore_released_elsewhere():
    s2.acquire()
    t = threading.Thread(target=s2.release, name="sem_releaser")  # s2 becomes a signal
    t.start()
    t.join()
    with c:  # s2's hold was handed over: no edge s2 -> c here
        pass


def many_held():
    """More locks of one site held than recorder.SAME_SITE_SOURCES (proxies._sources), under a
    lock of another site, and taken twice: new edges, then known ones counted."""
    for _ in range(2):
        with c:
            row_then_z()
        row_then_z()


def row_then_z():
    for lock in row:
        lock.acquire()
    with z:
        pass
    for lock in reversed(row):
        lock.release()


def given_durations():
    """Holds whose start is moved back (lockwatch's own field) to the middle of a histogram bucket
    at least 16 ms wide: the microseconds the hold itself takes cannot change its bucket."""
    for k in range(40):
        shift = 24 + k % 10  # the bucket width: 16 ms to 8.6 s
        d = ((32 + 7 * k % 32) << shift) + (1 << shift) // 2
        if k % 2:
            with h:
                h._t -= d
        else:
            h.acquire()
            h._t -= d
            h.release()


def main():
    for target in (nested, reentrant):
        t = threading.Thread(target=target, args=(50,), name=target.__name__)
        t.start()
        t.join()
    for target in (arguments, out_of_order, handed_over, condition_and_semaphore, semaphores,
                   contended_semaphore, semaphore_released_elsewhere, many_held, given_durations):
        t = threading.Thread(target=target, name=target.__name__)
        t.start()
        t.join()
    with b:  # the inversion: b -> a
        with a:
            pass
    print("done")


main()
