"""Two threads take the same two locks in opposite orders: the classic AB/BA inversion.

    python -m lockwatch examples/abba_inversion.py

Finding: one potential deadlock, instance scope: ``cache_lock -> stats_lock -> cache_lock``.
This run never hangs: the threads run one after the other. Run them at the same time and, one
day, each holds one lock and waits forever for the other. lockwatch reports it anyway, with the
line that created each lock and both stacks of each edge.
"""
import threading

cache_lock = threading.Lock()
stats_lock = threading.Lock()
cache: dict = {}
stats = {"hits": 0, "writes": 0}


def store(key, value):
    with cache_lock:
        cache[key] = value
        with stats_lock:  # cache_lock -> stats_lock
            stats["writes"] += 1


def report_stats():
    with stats_lock:
        with cache_lock:  # stats_lock -> cache_lock: the opposite order
            return dict(stats, size=len(cache))


def main():
    writer = threading.Thread(target=store, args=("answer", 42), name="writer")
    writer.start()
    writer.join()  # the reader starts only after the writer is done: no hang on this run
    reader = threading.Thread(target=report_stats, name="reporter")
    reader.start()
    reader.join()
    print("finished without hanging:", report_stats())


if __name__ == "__main__":
    main()
