"""Overhead of lockwatch's recording of waits (join, Event, Queue, Future) against the plain ones, in one process.

Run from the project root (lockwatch importable)::

    python benchmarks/waits.py                  # the wait micro-benchmarks, ~1 minute
    python benchmarks/waits.py --quick          # a smoke run
    python benchmarks/waits.py --workload       # only overhead.py's Queue + ThreadPoolExecutor workload
    python benchmarks/waits.py --against nowaits  # against lockwatch without its recording of waits

What it measures, each as lockwatch / plain (ns per operation):

1. ``Thread(target=f).start(); join()`` (a thread's whole life);
2. ``Event.set(); Event.wait(); clear()`` in one thread (wait returns at once), and an Event
   ping-pong between two threads (a round trip: each waits for the other's set);
3. ``Queue.put(x); Queue.get()`` in one thread, and a Queue ping-pong between two threads;
4. ``Future(); set_result(); result()`` in one thread, and ``submit(f).result()`` on a
   ``ThreadPoolExecutor(1)`` (a round trip through a worker);
5. with ``--workload``: overhead.py's workload (producers -> ``queue.Queue`` -> main thread
   submits to a ``ThreadPoolExecutor(4)``), ~1 us of work per item, as overhead.py measures it,
   on three sides: plain, lockwatch without its recording of waits ("nowaits") and lockwatch.

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
from lockwatch import waits  # noqa: E402


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


SIDES = ("plain", "nowaits", "lockwatch")


def _enable(side: str) -> None:
    """Switch to ``side``: "plain" (lockwatch off), "lockwatch" (on, default settings) or
    "nowaits" (on, with the wait recording of waits.py taken out: its class-level wrappers
    restored and its Condition hooks inactive, i.e. lockwatch as it was before it recorded
    waits; the locks, Conditions and semaphores are still instrumented)."""
    if side == "plain":
        return
    lockwatch.enable(report_at_exit=False)
    if side == "nowaits":
        waits.uninstall()


def _disable(side: str) -> None:
    if side != "plain":
        lockwatch.disable()


def measure(fn: Callable[[int], float], n: int, side: str, repeats: int) -> float:
    """Best ns per operation of ``repeats`` runs on ``side``."""
    _enable(side)
    try:
        return min(fn(n) for _ in range(repeats)) / n * 1e9
    finally:
        _disable(side)


def _ratios(base: list[float], other: list[float]) -> str:
    ratios = [b / a for a, b in zip(base, other)]
    return f"{statistics.median(ratios):>6.2f}x   {min(ratios):.2f}x .. {max(ratios):.2f}x"


def run_benches(rounds: int, repeats: int, scale: float, base: str) -> None:
    print(f"{'benchmark':<44} {base + ' ns':>10} {'lockwatch ns':>13} {'ratio':>7}   spread")
    for name, fn, n in BENCHES:
        n = max(10, int(n * scale))
        fn(n // 10)  # warm up
        raw, lw = overhead.interleaved(lambda fn=fn, n=n: measure(fn, n, base, repeats),
                                       lambda fn=fn, n=n: measure(fn, n, "lockwatch", repeats), rounds)
        print(f"{name:<44} {statistics.median(raw):>10,.0f} {statistics.median(lw):>13,.0f} {_ratios(raw, lw)}")


def _workload_once(items: int, side: str) -> tuple[float, float]:
    """(wall, CPU) ns per item of one overhead.run_workload on ``side``. CPU time of the process
    (all its threads) is less sensitive than wall time to a loaded machine."""
    _enable(side)
    if side != "plain":
        # concurrent.futures.thread made its _global_shutdown_lock at import: an instrumented one,
        # as `python -m lockwatch` would have (overhead.py does the same)
        concurrent.futures.thread._global_shutdown_lock = threading.Lock()
    try:
        c0 = time.process_time()
        wall, _types = overhead.run_workload(items)
        cpu = time.process_time() - c0
    finally:
        if side != "plain":
            concurrent.futures.thread._global_shutdown_lock = overhead._RAW_GLOBAL_SHUTDOWN_LOCK
        _disable(side)
    return wall / items * 1e9, cpu / items * 1e9


def run_workload(rounds: int, items: int) -> None:
    """The three sides in turn, each round starting with a different one; medians and the
    median of the per-round ratios (lockwatch against plain, and against nowaits: what the
    recording of waits costs)."""
    for side in SIDES:
        _workload_once(items // 4, side)
    rows: dict[str, list[tuple[float, float]]] = {side: [] for side in SIDES}
    for i in range(rounds):
        for j in range(len(SIDES)):
            side = SIDES[(i + j) % len(SIDES)]
            rows[side].append(_workload_once(items, side))
    print(f"workload: Queue + ThreadPoolExecutor(4), {items:,} items (~1 us work each), ns/item, "
          f"medians of {rounds} rounds (spread)")
    for k, what in ((0, "wall"), (1, "CPU")):
        col = {side: [r[k] for r in rows[side]] for side in SIDES}
        cells = ", ".join(f"{side} {statistics.median(v):,.0f} ({min(v):,.0f} .. {max(v):,.0f})"
                          for side, v in col.items())
        print(f"  {what}: {cells}")
        print(f"  {what}: lockwatch/plain {_ratios(col['plain'], col['lockwatch']).strip()};"
              f" lockwatch/nowaits {_ratios(col['nowaits'], col['lockwatch']).strip()};"
              f" nowaits/plain {_ratios(col['plain'], col['nowaits']).strip()}")
    print(f"  lockwatch from {os.path.dirname(lockwatch.__file__)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and operations (rough numbers)")
    parser.add_argument("--workload", action="store_true", help="only the Queue + ThreadPoolExecutor workload")
    parser.add_argument("--rounds", type=int, help="rounds of interleaved measurements")
    parser.add_argument("--items", type=int, help="items of the workload (default 8,000)")
    parser.add_argument("--against", choices=("plain", "nowaits"), default="plain",
                        help="micro-benchmarks: compare lockwatch with plain threading (default) or with "
                             "lockwatch without its recording of waits")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 9)
    print(f"Python {sys.version.split()[0]}, lockwatch {lockwatch.__version__}, {rounds} rounds")
    if args.workload:
        run_workload(rounds, args.items or (1_000 if args.quick else 8_000))
    else:
        run_benches(rounds, 2 if args.quick else 3, 0.2 if args.quick else 1.0, args.against)
    return 0


if __name__ == "__main__":
    sys.exit(main())
