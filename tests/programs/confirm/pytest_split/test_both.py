"""One test that takes both orders itself: a single-thread inversion inside one test."""
import threading

first = threading.Lock()
second = threading.Lock()


def test_both_orders():
    with first:
        with second:
            pass
    with second:
        with first:
            pass
