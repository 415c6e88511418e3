"""The same inversion, but the two threads never run at the same time: the writer thread is
joined before the reporter thread starts. Still a potential deadlock (the next run may overlap)."""
import threading

cache_lock = threading.Lock()
stats_lock = threading.Lock()


def writer():
    with cache_lock:
        with stats_lock:  # cache -> stats
            pass


def reporter():
    with stats_lock:
        with cache_lock:  # stats -> cache
            pass


idents = []
for target, name in ((writer, "writer"), (reporter, "reporter")):
    t = threading.Thread(target=target, name=name)
    t.start()
    t.join()
    idents.append(t.ident)
# The system reuses an exited thread's identifier: the two threads often share one.
print("same ident", idents[0] == idents[1])
