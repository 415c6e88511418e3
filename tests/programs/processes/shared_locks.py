"""Two module-level locks shared by the programs of this directory (parents and their children
import them from here, so the creation sites of the parent's and the child's locks match)."""
import threading

lock_a = threading.Lock()
lock_b = threading.Lock()


def a_then_b():
    with lock_a:  # a_then_b: first
        with lock_b:  # a_then_b: second
            pass


def b_then_a():
    with lock_b:  # b_then_a: first
        with lock_a:  # b_then_a: second
            pass
