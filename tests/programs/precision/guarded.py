"""Two threads take A and B in opposite orders, but always while holding the gate lock G, so
they cannot deadlock on A and B. With an argument, one occurrence of an edge is taken without
the gate ("leak-first": the very first A -> B; "leak-later": a later A -> B), which withdraws
the guarantee."""
import sys
import threading

G = threading.Lock()
A = threading.Lock()
B = threading.Lock()
mode = sys.argv[1] if len(sys.argv) > 1 else ""
step = threading.Event()


def a_then_b(gated=True):
    if gated:
        with G:
            with A:
                with B:  # A -> B under G
                    pass
    else:
        with A:
            with B:  # A -> B without G
                pass


def b_then_a():
    with G:
        with B:
            with A:  # B -> A under G
                pass


def first():
    a_then_b(gated=mode != "leak-first")
    a_then_b()
    if mode == "leak-later":
        a_then_b(gated=False)
    step.set()


def second():
    step.wait(10)
    b_then_a()
    b_then_a()


threads = [threading.Thread(target=first, name="first"), threading.Thread(target=second, name="second")]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("done", mode)
