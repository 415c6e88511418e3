"""Two locks made on one line, and two in one list, each pair always taken in the same order
around a third: no potential deadlock (`--fail-on-cycle` passes)."""
import threading

first, second = threading.Lock(), threading.Lock()
middle = threading.Lock()
locks = [threading.Lock(), threading.Lock()]


def in_order():
    for outer, inner in ((first, second), (locks[0], locks[1])):
        with outer:
            with middle:
                with inner:
                    pass


worker = threading.Thread(target=in_order)
worker.start()
worker.join(30)
in_order()
