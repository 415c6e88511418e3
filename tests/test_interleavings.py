"""Randomized interleavings: threads take, re-enter, hand off and release locks of every kind, wait
on Conditions and signal semaphores, yielding at random points; after every step each thread's
held list must be what it really holds, and after every round lockwatch's edges and counts must be
exactly what the threads did. Seeded: the seed is in every failure message, and
LOCKWATCH_INTERLEAVING_SEED=<n> replays a run's operations (the scheduler's choices still vary)."""
from __future__ import annotations

import os
import queue
import random
import sys
import threading
import time
from typing import Any

import pytest

import lockwatch
from lockwatch import recorder

pytestmark = pytest.mark.timeout(120)

# Fixed by default (pytest-xdist's workers must collect the same tests); set it to explore.
SEED = int(os.environ.get("LOCKWATCH_INTERLEAVING_SEED", "") or 12)
THREADS, ROUNDS, STEPS = 4, 20, 40
OFFSETS = [0, 1000]  # two runs: seeds SEED and SEED + 1000


def holding(held: list) -> list:
    return getattr(recorder, "holding", list)(held)


class Truth:
    """What one thread really holds, and what it did, as the harness sees it."""

    def __init__(self) -> None:
        self.held: list = []  # in acquisition order
        self.edges: set = set()  # (src serial, dst serial) of blocking acquisitions
        self.counts: dict = {}  # serial -> successful acquisitions (outermost ones)

    def blocking(self, lock: Any) -> None:
        for h in self.held:
            if h is not lock and not _is_signal(h):
                self.edges.add((h._serial, lock._serial))

    def took(self, lock: Any) -> None:
        self.counts[lock._serial] = self.counts.get(lock._serial, 0) + 1
        self.held.append(lock)

    def gave_up(self, lock: Any) -> None:
        for i in range(len(self.held) - 1, -1, -1):
            if self.held[i] is lock:
                del self.held[i]
                return
        raise AssertionError(f"not held: {lock!r}")


def _is_signal(lock: Any) -> bool:
    return getattr(lock, "_holders", None) is not None and lock._site.signal


def _real_lock_of(obj: Any) -> Any:
    return obj._lock if isinstance(obj, threading.Condition) else obj


class Harness:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        # The pool, in the one order blocking acquisitions follow (no real deadlock possible).
        self.pool: list = [
            threading.Lock(), threading.RLock(), threading.Condition(), threading.Lock(),
            threading.Semaphore(2), threading.Condition(threading.Lock()),
            threading.BoundedSemaphore(1), threading.RLock(), threading.Lock(),
        ]
        self.signal = threading.Semaphore(0)
        self.signal_taken = [0] * THREADS
        self.signal_given = [0] * THREADS
        self.to_release: queue.Queue = queue.Queue()
        self.truths = [Truth() for _ in range(THREADS)]
        self.lists: list = [None] * THREADS
        self.barrier = threading.Barrier(THREADS + 1)  # threading.py's own: raw locks

    def fail(self, message: str) -> None:
        raise AssertionError(f"{message} (seed {self.seed}: LOCKWATCH_INTERLEAVING_SEED={self.seed}"
                             " replays it in the offset-0 case)")

    def check_own(self, me: int, where: str) -> None:
        got = holding(recorder.tls.held)
        want = self.truths[me].held
        if len(got) != len(want) or any(a is not b for a, b in zip(got, want)):
            self.fail(f"thread {me} after {where}: lockwatch says it holds {got}, it holds {want}")

    def releaser(self) -> None:
        while True:
            item = self.to_release.get()
            if item is None:
                return
            lock, done = item
            lock.release()
            done.set()

    def worker(self, me: int) -> None:
        rng = random.Random(self.seed * 1000 + me)
        truth = self.truths[me]
        try:
            for _ in range(ROUNDS):
                for step in range(STEPS):
                    self.step(me, rng, truth, step)
                self.lists[me] = recorder.tls.held
                self.barrier.wait(60)  # the checker compares
                self.barrier.wait(60)
        except BaseException:
            self.barrier.abort()  # the others stop at their next wait
            for lock in reversed(truth.held):  # and none blocks for ever on what this one held
                try:
                    lock.release()
                except Exception:
                    pass
            raise

    def yield_maybe(self, rng: random.Random) -> None:
        if rng.random() < 0.3:
            time.sleep(0)

    def step(self, me: int, rng: random.Random, truth: Truth, step: int) -> None:
        chosen = sorted(rng.sample(range(len(self.pool)), rng.randint(1, 4)))
        for index in chosen:
            obj = self.pool[index]
            lock = _real_lock_of(obj)
            how = rng.choice(("with", "with", "timed", "try"))
            self.yield_maybe(rng)
            if how == "try":
                if not obj.acquire(blocking=False):
                    continue
            else:
                truth.blocking(lock)
                if how == "timed":
                    assert obj.acquire(timeout=30)
                else:
                    obj.acquire()
            truth.took(lock)
            self.check_own(me, f"acquiring {lock!r} ({how})")
            if isinstance(obj, threading.RLock().__class__) and rng.random() < 0.5:
                with obj:  # re-entry: no new hold, no edge, no count
                    self.check_own(me, "re-entering an RLock")
            if isinstance(obj, threading.Condition) and obj is self.pool[chosen[-1]] and rng.random() < 0.5:
                # wait(0) releases and re-takes the lock (only when it is the latest taken, so the
                # re-take follows the pool's order)
                truth.gave_up(lock)
                obj.notify()
                obj.wait(0)
                truth.blocking(lock)
                truth.took(lock)
                self.check_own(me, "Condition.wait(0)")
        self.yield_maybe(rng)
        if rng.random() < 0.3:
            self.signal.release()
            self.signal_given[me] += 1
        if rng.random() < 0.3 and self.signal.acquire(blocking=False):
            self.signal_taken[me] += 1
        self.check_own(me, "using the signal semaphore")
        # Release in a random order; a plain Lock may be handed to the releaser thread instead.
        mine = [(h, o) for h in list(truth.held) for o in self.pool if _real_lock_of(o) is h]
        rng.shuffle(mine)
        for lock, obj in mine:
            self.yield_maybe(rng)
            if type(lock) is type(self.pool[0]) and rng.random() < 0.3:
                done = threading.Event()
                self.to_release.put((lock, done))
                assert done.wait(30)
                truth.gave_up(lock)
                self.check_own(me, f"handing {lock!r} off")
                continue
            obj.release()
            truth.gave_up(lock)
            self.check_own(me, f"releasing {lock!r}")

    def check_round(self, session: Any, rnd: int) -> None:
        for me, held in enumerate(self.lists):
            got = holding(held)
            if got:
                self.fail(f"round {rnd}: thread {me} ended its steps holding nothing, lockwatch says {got}")
        serials = {_real_lock_of(o)._serial for o in self.pool} | {self.signal._serial}
        snap = session.snapshot()
        recorded = {(e.src_instance, e.dst_instance) for e in snap.instance_edges
                    if e.src_instance in serials and e.dst_instance in serials}
        truth = set().union(*(t.edges for t in self.truths))
        if recorded - truth:
            self.fail(f"round {rnd}: edges nobody made: {sorted(recorded - truth)}")
        if truth - recorded:
            self.fail(f"round {rnd}: edges made but not recorded: {sorted(truth - recorded)}")
        for obj in self.pool:
            lock = _real_lock_of(obj)
            want = sum(t.counts.get(lock._serial, 0) for t in self.truths)
            if lock._n != want:
                self.fail(f"round {rnd}: {lock!r} taken {want} times, lockwatch counted {lock._n}")
            holders = getattr(lock, "_holders", None)
            if holders:
                self.fail(f"round {rnd}: {lock!r} released by all, still has holds {holders}")
        if self.signal._n != sum(self.signal_taken):
            self.fail(f"round {rnd}: the signal was taken {sum(self.signal_taken)} times, "
                      f"lockwatch counted {self.signal._n}")


@pytest.mark.parametrize("offset", OFFSETS)
def test_random_interleavings_keep_the_model_exact(offset, threads):
    seed = SEED + offset
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with lockwatch.watching() as session:
            h = Harness(seed)
            releaser = threads.start(h.releaser, name="releaser")
            workers = [threads.start(h.worker, i, name=f"worker-{i}") for i in range(THREADS)]
            try:
                for rnd in range(ROUNDS):
                    h.barrier.wait(60)
                    try:
                        h.check_round(session, rnd)
                    except BaseException:
                        h.barrier.abort()
                        raise
                    h.barrier.wait(60)
            except threading.BrokenBarrierError:
                for w in workers:  # a worker failed: its error, not the barrier's
                    w.thread.join(60)
                    if w.error is not None and not isinstance(w.error, threading.BrokenBarrierError):
                        raise w.error from None
                raise
            finally:
                h.to_release.put(None)
            for w in workers:
                w.join()
            releaser.join()
    finally:
        sys.setswitchinterval(old)
