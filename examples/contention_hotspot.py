"""A contention hotspot: eight threads funnel every update through one global lock.

    python -m lockwatch examples/contention_hotspot.py

Finding: no potential deadlock; ``registry_lock`` heads the "most contended locks" table (a lock is
not fair: the thread that just released it usually takes it again, so few acquisitions wait, but
each waits for milliseconds, against tens of microseconds held) and the "longest-held" table,
because the work is done while holding it. The fix is to do the work outside the lock.
"""
import hashlib
import threading

registry_lock = threading.Lock()
audit_lock = threading.Lock()
registry: dict = {}


def worker(n, rounds, start):
    start.wait()  # all workers begin together, as they would in a long-running server
    for i in range(rounds):
        with registry_lock:
            # hashing 64 KB inside the critical section: hashlib lets other threads run
            # meanwhile, and every one of them queues on registry_lock
            digest = hashlib.sha256(f"{n}:{i}".encode() * 16384).hexdigest()
            registry[(n, i)] = digest
        if i % 50 == 0:
            with audit_lock:
                pass


def main():
    start = threading.Barrier(8)
    threads = [threading.Thread(target=worker, args=(n, 100, start), name=f"worker-{n}")
               for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("registered", len(registry), "entries")


if __name__ == "__main__":
    main()
