"""Many threads taking many locks of every kind in random patterns, run under
``python -m lockwatch``. ``stress.py SEED THREADS OPS_PER_THREAD ROUNDS``

Each thread takes locks with `with`, acquire()/release(), try-locks, timed acquires, RLock and
Condition re-entry and Condition.wait(0), nested up to depth 4, and counts every acquisition
and failure itself. Blocking acquisitions follow one global order (the lock's index), so the
program never deadlocks; try-locks and short timed acquires may go against it and fail.

After each round (all threads joined) the program compares lockwatch's counts with its own and
prints one JSON line: the round, the mismatches, lockwatch's internal errors, the locks each
thread still held when it ended, the heap's size (objects tracked by gc, allocated blocks) and
what may rightly grow in a later round (edges and histogram buckets seen for the first time).
Each thread's random choices are seeded (SEED, its index): every round makes the same choices,
though which try-locks fail depends on the scheduling.
"""
import gc
import itertools
import json
import random
import sys
import threading

import lockwatch
from lockwatch import recorder, snapshot

SEED, THREADS, OPS, ROUNDS = (int(a) for a in sys.argv[1:5])
MAX_DEPTH = 4

# 50 locks, at ten creation sites (two per kind): the counts are compared per site.
locks = []
for n in range(6):
    locks.append(threading.Lock())
    locks.append(threading.Lock())  # a second site
for n in range(6):
    locks.append(threading.RLock())
    locks.append(threading.RLock())
for n in range(4):
    locks.append(threading.Condition())
    locks.append(threading.Condition())
for n in range(4):
    locks.append(threading.Semaphore(1 + n % 3))
    locks.append(threading.Semaphore(2))
for n in range(4):
    locks.append(threading.BoundedSemaphore(1 + n % 3))
    locks.append(threading.BoundedSemaphore(1))
assert len(locks) == 48
locks.append(threading.Lock())
locks.append(threading.RLock())


def kind(lock):
    if isinstance(lock, threading.Condition):
        return "Condition"
    return type(lock).__name__


KINDS = [kind(lock) for lock in locks]
REENTRANT = {"RLock", "Condition"}


def site_of(lock):
    target = lock._lock if KINDS[locks.index(lock)] == "Condition" else lock
    return snapshot.site_key(target._site)


SITES = [site_of(lock) for lock in locks]


class Worker:
    def __init__(self, index, seed):
        self.rng = random.Random(seed * 1000 + index)
        self.acquired = [0] * len(locks)  # acquisitions lockwatch counts (outermost for RLocks)
        self.failed = [0] * len(locks)
        self.ops = 0
        self.depth = {}  # index -> re-entry depth (RLock, Condition) or units held (semaphores)
        self.order = []  # indexes, in the order taken (the top is the last)
        self.left_held = None

    def run(self, ops):
        while self.ops < ops:
            self.nest(0)
        assert not self.order and not self.depth
        self.left_held = [repr(lock) for lock in recorder.tls.held]

    def nest(self, level):
        rng = self.rng
        i = rng.randrange(len(locks))
        lock = locks[i]
        k = KINDS[i]
        mine = self.depth.get(i, 0)
        top = max(self.order) if self.order else -1
        may_block = (i > top and mine == 0) or (k in REENTRANT and mine > 0)
        how = rng.choice(("with", "acquire", "try", "timed"))
        if how in ("with", "acquire") and not may_block:
            how = rng.choice(("try", "timed"))
        self.ops += 1
        if how == "with":
            ok = True
        elif how == "acquire":
            ok = lock.acquire()
        elif how == "try":
            ok = lock.acquire(blocking=False)
        else:
            # against the order: wait briefly (it may fail); in order: long enough to succeed
            # unless the program is really stuck
            ok = lock.acquire(timeout=0.001 if not may_block else 60)
        if how != "with" and not ok:
            self.failed[i] += 1
            return
        if how == "with":
            lock.__enter__()
        outermost = not (k in REENTRANT and mine > 0)
        if outermost:
            self.acquired[i] += 1
        self.depth[i] = mine + 1
        self.order.append(i)
        try:
            if k == "Condition" and rng.random() < 0.1 and self.order[-1] == i and max(self.order) == i:
                lock.notify_all()
                lock.wait(0)  # releases and takes it again: one more acquisition
                self.acquired[i] += 1
            if level + 1 < MAX_DEPTH and rng.random() < 0.7:
                for _ in range(rng.randrange(1, 3)):
                    self.nest(level + 1)
        finally:
            self.order.pop()
            if mine:
                self.depth[i] = mine
            else:
                del self.depth[i]
            if how == "with":
                lock.__exit__(None, None, None)
            else:
                lock.release()


session = lockwatch.current_session()
acquired = [0] * len(locks)
failed = [0] * len(locks)
total_ops = 0
for round_no in range(1, ROUNDS + 1):
    workers = [Worker(n, SEED) for n in range(THREADS)]
    threads = [threading.Thread(target=w.run, args=(OPS,), name=f"stress-{n}") for n, w in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    alive = [t.name for t in threads if t.is_alive()]
    for w in workers:
        total_ops += w.ops
        for i in range(len(locks)):
            acquired[i] += w.acquired[i]
            failed[i] += w.failed[i]
    expected = {}
    for i, site in enumerate(SITES):
        e = expected.setdefault(site, [0, 0])
        e[0] += acquired[i]
        e[1] += failed[i]
    snap = session.snapshot()
    mismatches = []
    for site, (acq, fail) in expected.items():
        st = snap.lock(site)
        got = None if st is None else {"acquisitions": st.acquisitions, "failed": st.failed,
                                       "hold.count": st.hold.count, "contended": st.contended,
                                       "wait.count": st.wait.count}
        if (got is None or got["acquisitions"] != acq or got["failed"] != fail
                or got["hold.count"] != acq or got["wait.count"] != got["contended"]
                or got["contended"] > acq):
            mismatches.append({"site": site, "expected": [acq, fail], "recorded": got})
    waits = sys.modules.get("lockwatch.waits")
    edges = len(snap.site_edges) + len(snap.instance_edges) + len(waits.wait_edges if waits else ())
    del snap
    gc.collect()
    print(json.dumps({
        "round": round_no,
        "ops": total_ops,
        "alive": alive,
        "mismatches": mismatches,
        "internal_errors": session.snapshot(live_stats=False).internal_errors,
        "left_held": [w.left_held for w in workers if w.left_held],
        "objects": len(gc.get_objects()),
        "blocks": sys.getallocatedblocks(),
        "edges": edges,  # lock-order and wait edges: new ones may be found in any round
        # hold/wait histogram buckets (one counter each): a duration never seen before fills a new one
        "counters": sum(1 for o in gc.get_objects() if type(o) is itertools.count),
        "expected": expected,
    }), flush=True)
