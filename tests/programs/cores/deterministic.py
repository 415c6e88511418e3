"""One deterministic program for tests/test_cores.py: every path of the hot path (Lock and RLock,
with and acquire/release, nesting, re-entry, arguments, try-locks that fail, out-of-order and
cross-thread releases, a Condition, a Semaphore), threads run one after the other (no timing
decides anything), holds of given durations, and an inversion at the end. Both cores must record
the same report."""
import threading

a = threading.Lock()
b = threading.Lock()
r = threading.RLock()
h = threading.Lock()  # held for given durations: both cores count them in the same buckets
cond = threading.Condition()
sem = threading.Semaphore(2)


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
    for target in (arguments, out_of_order, handed_over, condition_and_semaphore, given_durations):
        t = threading.Thread(target=target, name=target.__name__)
        t.start()
        t.join()
    with b:  # the inversion: b -> a
        with a:
            pass
    print("done")


main()
