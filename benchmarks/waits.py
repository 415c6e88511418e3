"""Overhead of lockwatch's recording of waits (join, Event, Queue, Future) against the plain ones, in one process.

Run from the project root (lockwatch importable)::

    python benchmarks/waits.py                  # the wait micro-benchmarks, ~1 minute
    python benchmarks/waits.py --quick          # a smoke run
    python benchmarks/waits.py --workload       # only overhead.py's Queue + ThreadPoolExecutor workload

What it measures, each as lockwatch / plain (ns per operation):

1. ``Thread(target=f).start(); join()`` (a thread's whole life);
2. ``Event.set(); Event.wait(); clear()`` in one thread (wait returns at once), and an Event
   ping-pong between two threads (a round trip: each waits for the other's set);
3. ``Queue.put(x); Queue.get()`` in one thread, and a Queue ping-pong between two threads;
4. ``Future(); set_result(); result()`` in one thread, and ``submit(f).result()`` on a
   ``ThreadPoolExecutor(1)`` (a round trip through a worker);
5. with ``--workload``: overhead.py's workload (producers -> ``queue.Queue`` -> main thread
   submits to a ``ThreadPoolExecutor(4)``), ~1 us of work per item, as overhead.py measures it.

lockwatch wraps Thread, Event, Barrier, Queue and ThreadPoolExecutor methods at the class level
when it is enabled and restores them when disabled: the plain side is measured with lockwatch
disabled, the instrumented side with it enabled (default settings: the deadlock watchdog on),
each object made under the side it is measured on. Rounds alternate which side goes first; each
round keeps each side's best of a few measurements; the table shows medians and the median of
the per-round ratios, then the spread. Nothing here asserts on speed.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import concurrent.futures.thread
import os
import queue
import statistics
import sys
import threading
import time
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import overhead  # noqa: E402  (same folder: the workload and the interleaving)

import lockwatch  # noqa: E402


def _noop() -> None:
    pass


def thread_life(n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        t = threading.Thread(target=_noop)
        t.start()
        t.join()
    return time.perf_counter() - t0


def event_local(n: int) -> float:
    e = threading.Event()
    t0 = time.perf_counter()
    for _ in range(n):
        e.set()
        e.wait()
        e.clear()
    return time.perf_counter() - t0


def event_pingpong(n: int) -> float:
    ping, pong = threading.Event(), threading.Event()

    def other() -> None:
        for _ in range(n):
            ping.wait()
            ping.clear()
            pong.set()

    t = threading.Thread(target=other)
    t.start()
    t0 = time.perf_counter()
    for _ in range(n):
        ping.set()
        pong.wait()
        pong.clear()
    elapsed = time.perf_counter() - t0
    t.join()
    return elapsed


def queue_local(n: int) -> float:
    q: queue.Queue = queue.Queue()
    t0 = time.perf_counter()
    for i in range(n):
        q.put(i)
        q.get()
    return time.perf_counter() - t0


def queue_pingpong(n: int) -> float:
    there: queue.Queue = queue.Queue()
    back: queue.Queue = queue.Queue()

    def other() -> None:
        for _ in range(n):
            back.put(there.get())

    t = threading.Thread(target=other)
    t.start()
    t0 = time.perf_counter()
    for i in range(n):
        there.put(i)
        back.get()
    elapsed = time.perf_counter() - t0
    t.join()
    return elapsed


def future_local(n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        f: concurrent.futures.Future = concurrent.futures.Future()
        f.set_result(i)
        f.result()
    return time.perf_counter() - t0


def pool_roundtrip(n: int) -> float:
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(_noop).result()  # the worker exists before timing
        t0 = time.perf_counter()
        for _ in range(n):
            pool.submit(_noop).result()
        return time.perf_counter() - t0


BENCHES: list[tuple[str, Callable[[int], float], int]] = [
    ("Thread start + join", thread_life, 300),
    ("Event set + wait + clear, one thread", event_local, 20_000),
    ("Event ping-pong, two threads (round trip)", event_pingpong, 2_000),
    ("Queue put + get, one thread", queue_local, 20_000),
    ("Queue ping-pong, two threads (round trip)", queue_pingpong, 2_000),
    ("Future set_result + result, one thread", future_local, 20_000),
    ("ThreadPoolExecutor(1) submit + result", pool_roundtrip, 2_000),
]


def measure(fn: Callable[[int], float], n: int, enabled: bool, repeats: int) -> float:
    """Best ns per operation of ``repeats`` runs, lockwatch enabled or not."""
    if enabled:
        lockwatch.enable(report_at_exit=False)
    try:
        return min(fn(n) for _ in range(repeats)) / n * 1e9
    finally:
        if enabled:
            lockwatch.disable()


def run_benches(rounds: int, repeats: int, scale: float) -> None:
    print(f"{'benchmark':<44} {'raw ns':>10} {'lockwatch ns':>13} {'ratio':>7}   spread")
    for name, fn, n in BENCHES:
        n = max(10, int(n * scale))
        fn(n // 10)  # warm up
        raw, lw = overhead.interleaved(lambda fn=fn, n=n: measure(fn, n, False, repeats),
                                       lambda fn=fn, n=n: measure(fn, n, True, repeats), rounds)
        ratios = [b / a for a, b in zip(raw, lw)]
        print(f"{name:<44} {statistics.median(raw):>10,.0f} {statistics.median(lw):>13,.0f} "
              f"{statistics.median(ratios):>6.2f}x   {min(ratios):.2f}x .. {max(ratios):.2f}x")


def _workload_once(items: int, enabled: bool) -> tuple[float, float]:
    """(wall, CPU) ns per item of one overhead.run_workload, lockwatch enabled or not. CPU time
    of the process (all its threads) is less sensitive than wall time to a loaded machine."""
    if enabled:
        lockwatch.enable(report_at_exit=False)
        # concurrent.futures.thread made its _global_shutdown_lock at import: an instrumented one,
        # as `python -m lockwatch` would have (overhead.py does the same)
        concurrent.futures.thread._global_shutdown_lock = threading.Lock()
    try:
        c0 = time.process_time()
        wall, _types = overhead.run_workload(items)
        cpu = time.process_time() - c0
    finally:
        if enabled:
            concurrent.futures.thread._global_shutdown_lock = overhead._RAW_GLOBAL_SHUTDOWN_LOCK
            lockwatch.disable()
    return wall / items * 1e9, cpu / items * 1e9


def run_workload(rounds: int, items: int) -> None:
    _workload_once(items // 4, False)
    _workload_once(items // 4, True)
    rows: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for i in range(rounds):
        for enabled in ((False, True) if i % 2 == 0 else (True, False)):
            rows[enabled].append(_workload_once(items, enabled))
    name = f"workload: Queue + ThreadPoolExecutor(4), {items:,} items (~1 us work each)"
    for k, what in ((0, "wall"), (1, "CPU")):
        raw = [r[k] for r in rows[False]]
        lw = [r[k] for r in rows[True]]
        ratios = [b / a for a, b in zip(raw, lw)]
        print(f"{name}, {what}: raw {statistics.median(raw):,.0f} ns/item, lockwatch "
              f"{statistics.median(lw):,.0f} ns/item (spread {min(lw):,.0f} .. {max(lw):,.0f}), "
              f"ratio {statistics.median(ratios):.3f}x ({min(ratios):.2f}x .. {max(ratios):.2f}x)")
    print(f"  lockwatch from {os.path.dirname(lockwatch.__file__)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and operations (rough numbers)")
    parser.add_argument("--workload", action="store_true", help="only the Queue + ThreadPoolExecutor workload")
    parser.add_argument("--rounds", type=int, help="rounds of interleaved measurements")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 9)
    print(f"Python {sys.version.split()[0]}, lockwatch {lockwatch.__version__}, {rounds} rounds")
    if args.workload:
        run_workload(rounds, 1_000 if args.quick else 8_000)
    else:
        run_benches(rounds, 2 if args.quick else 3, 0.2 if args.quick else 1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
