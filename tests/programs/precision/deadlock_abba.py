"""Two threads take the cache and stats locks in opposite orders, while both are alive.

An Event makes the reporter wait until the writer is done, so the run never hangs; the
inversion is real all the same.
"""
import threading

cache_lock = threading.Lock()
stats_lock = threading.Lock()
cache = {}
stats = {"writes": 0}
written = threading.Event()


def store(key, value):
    with cache_lock:
        cache[key] = value
        with stats_lock:  # cache -> stats
            stats["writes"] += 1


def report_stats():
    with stats_lock:
        with cache_lock:  # stats -> cache
            return dict(stats, size=len(cache))


def writer():
    store("a", 1)
    written.set()


def reporter():
    written.wait(10)
    print("report", report_stats())


threads = [threading.Thread(target=writer, name="writer"),
           threading.Thread(target=reporter, name="reporter")]
for t in threads:
    t.start()
for t in threads:
    t.join()
