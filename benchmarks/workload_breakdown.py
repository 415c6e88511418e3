"""Where overhead.py's Queue + ThreadPoolExecutor workload spends lockwatch's extra time.

Run from the project root (lockwatch importable, e.g. installed editable)::

    python benchmarks/workload_breakdown.py                 # 5 rounds, the core lockwatch chose
    python benchmarks/workload_breakdown.py --rounds 9 --core python
    python benchmarks/workload_breakdown.py --items 2000 --only conds-raw waits-off

The workload is overhead.py's ``run_workload`` (producers -> ``queue.Queue`` -> the main thread
submits each item to a ``ThreadPoolExecutor(4)`` whose tasks update a tally under one shared
Lock; ~1 us of work per item, so it is all locking). It is run with lockwatch disabled (plain)
and with lockwatch enabled in several variants, each leaving some of lockwatch's instruments out:

- ``lockwatch``: everything, as a user gets it;
- ``conds-raw``: ``threading.Condition`` put back to the original class (a Queue's and a
  Future's Conditions are then threading's own; their locks are still lockwatch's: a Future's
  default RLock comes through the patched ``threading.RLock``, a Queue's mutex is a patched Lock);
- ``sems-raw``: ``threading.Semaphore`` and ``BoundedSemaphore`` put back (the executor's idle
  semaphore);
- ``waits-off``: lockwatch.waits uninstalled (no recording of who waits and who wakes: the class
  level wrappers of Queue.__init__, Thread.join, ThreadPoolExecutor.submit... removed, the
  Condition's wait/notify hooks inactive);
- ``locks-only``: all three of the above: only Lock and RLock are instrumented.

Each variant is measured against its own plain run, the two alternating which goes first in
every round (overhead.interleaved), so a drift of the shared machine hits both alike. It prints,
per variant, the median ns per item of both sides, the median of the per-round ratios and their
spread (min..max), and what the variant saves against full lockwatch (the difference of the
medians, in ns per item and as a share of lockwatch's extra time). Nothing asserts on speed.
"""
from __future__ import annotations

import argparse
import concurrent.futures.thread
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Callable

import overhead  # benchmarks/overhead.py (this script's directory is sys.path[0])

import lockwatch
from lockwatch import primitives, proxies, waits

VARIANTS = ("lockwatch", "conds-raw", "sems-raw", "waits-off", "locks-only")


def _set_variant(name: str) -> Callable[[], None]:
    """Leave out what ``name`` leaves out (lockwatch enabled); returns the undo."""
    undo: list[Callable[[], None]] = []
    if name in ("conds-raw", "locks-only"):
        threading.Condition = primitives.OrigCondition  # type: ignore[misc]
        undo.append(lambda: setattr(threading, "Condition", primitives.Condition))
    if name in ("sems-raw", "locks-only"):
        threading.Semaphore = primitives.OrigSemaphore  # type: ignore[misc]
        threading.BoundedSemaphore = primitives.OrigBoundedSemaphore  # type: ignore[misc]

        def back() -> None:
            threading.Semaphore = primitives.Semaphore  # type: ignore[misc]
            threading.BoundedSemaphore = primitives.BoundedSemaphore  # type: ignore[misc]
        undo.append(back)
    if name in ("waits-off", "locks-only"):
        waits.uninstall()
        undo.append(waits.install)

    def restore() -> None:
        for u in undo:
            u()
    return restore


Sample = tuple[float, float]  # (wall clock, process CPU time), ns per item


def _timed(items: int) -> Sample:
    c0 = time.process_time()
    wall = overhead.run_workload(items)[0]
    return wall / items * 1e9, (time.process_time() - c0) / items * 1e9


def measure(items: int, rounds: int, variants: tuple[str, ...]) -> dict[str, tuple[list[Sample], list[Sample]]]:
    def plain() -> Sample:
        lockwatch.disable()
        concurrent.futures.thread._global_shutdown_lock = overhead._RAW_GLOBAL_SHUTDOWN_LOCK
        try:
            return _timed(items)
        finally:
            lockwatch.enable(report_at_exit=False)

    def instrumented(name: str) -> Callable[[], Sample]:
        def run() -> Sample:
            restore = _set_variant(name)
            concurrent.futures.thread._global_shutdown_lock = threading.Lock()  # instrumented
            try:
                return _timed(items)
            finally:
                concurrent.futures.thread._global_shutdown_lock = overhead._RAW_GLOBAL_SHUTDOWN_LOCK
                restore()
        return run

    lockwatch.enable(report_at_exit=False)
    try:
        plain()  # warm up (threads, code paths)
        for name in variants:
            instrumented(name)()
        out: dict[str, tuple[list[Sample], list[Sample]]] = {name: ([], []) for name in variants}
        for r in range(rounds):
            # The variants in a rotating order, each paired with a plain run of its own, the two
            # alternating which goes first.
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            for i, name in enumerate(order):
                run = instrumented(name)
                if (r + i) % 2:
                    lw = run()
                    raw = plain()
                else:
                    raw = plain()
                    lw = run()
                out[name][0].append(raw)
                out[name][1].append(lw)
    finally:
        lockwatch.disable()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--items", type=int, default=8_000, help="items per workload run (default 8,000)")
    parser.add_argument("--only", nargs="+", choices=VARIANTS, help="measure only these variants")
    parser.add_argument("--core", choices=("c", "python"),
                        help="run in a child process with this core (default: the one lockwatch chose)")
    args = parser.parse_args(argv)
    if args.core and args.core != proxies.CORE:
        env = {**os.environ, "LOCKWATCH_PURE_PYTHON": "1" if args.core == "python" else ""}
        rest = overhead._without(sys.argv[1:] if argv is None else argv, "--core")
        return subprocess.run([sys.executable, os.path.abspath(__file__), *rest], env=env).returncode
    variants = tuple(args.only) if args.only else VARIANTS
    print(f"Python {sys.version.split()[0]}, lockwatch {lockwatch.__version__}, {proxies.CORE} core; "
          f"{args.items:,} items per run, {args.rounds} rounds, each variant against a plain run of its own")
    found = measure(args.items, args.rounds, variants)
    for col, label in ((0, "wall clock"), (1, "process CPU time (all threads)")):
        print(f"\n{label}, ns per item:")
        print(f"{'variant':<12} {'plain':>9} {'variant':>9} {'ratio':>7}  spread      saves vs lockwatch")
        medians: dict[str, tuple[float, float]] = {}
        for name in variants:
            raw = [s[col] for s in found[name][0]]
            lw = [s[col] for s in found[name][1]]
            ratios = [b / a for a, b in zip(raw, lw)]
            medians[name] = (statistics.median(raw), statistics.median(lw))
            # What leaving it out saves: lockwatch's extra time (its median minus its plain
            # median) minus this variant's, each against the plain runs paired with it.
            saves = ""
            if name != "lockwatch" and "lockwatch" in medians:
                full = medians["lockwatch"][1] - medians["lockwatch"][0]
                mine = medians[name][1] - medians[name][0]
                saves = f"{full - mine:8,.0f} ({(full - mine) / full:4.0%} of {full:,.0f})"
            print(f"{name:<12} {medians[name][0]:9,.0f} {medians[name][1]:9,.0f} "
                  f"{statistics.median(ratios):6.2f}x  {min(ratios):.2f}..{max(ratios):.2f}  {saves}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
