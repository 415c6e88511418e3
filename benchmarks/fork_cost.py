"""The cost of os.fork() with a large heap, with and without lockwatch, measured in one process.

    python benchmarks/fork_cost.py                  # 2,000,000 small objects, 15 forks a side
    python benchmarks/fork_cost.py 5000000 --forks 25

Each fork's child exits at once (os._exit); the time is fork() to the child's exit as seen by the
parent (waitpid), so it includes the at-fork handlers of both processes. Sides alternate; the
medians and their ratio are printed. lockwatch's at-fork handlers visit its registries of live
threads and instruments, not the heap: the ratio should stay near 1 however big the heap is.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import warnings


def _one_fork() -> float:
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return time.perf_counter() - t0


def _side(name: str, objects: int, forks: int) -> list[float]:
    """Fork ``forks`` times with ``objects`` on the heap; lockwatch is imported and enabled only
    on the "lockwatch" side (its at-fork handlers are registered when it is imported)."""
    heap = [[i] for i in range(objects)]  # small gc-tracked objects, as a big program has
    locks = []
    if name == "lockwatch":
        import lockwatch

        lockwatch.enable(report_at_exit=False)
        locks = [threading.Lock() for _ in range(1000)]  # some live instruments to reset
        for lk in locks[:10]:
            with lk:
                pass
    times = [_one_fork() for _ in range(forks)]
    del heap, locks
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("objects", nargs="?", type=int, default=2_000_000)
    parser.add_argument("--forks", type=int, default=15)
    parser.add_argument("--side", choices=("plain", "lockwatch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not hasattr(os, "fork"):
        sys.exit("needs os.fork")
    if args.side:  # one side, in its own process: print the times
        print(" ".join(repr(t) for t in _side(args.side, args.objects, args.forks)))
        return
    import subprocess

    results: dict[str, list[float]] = {"plain": [], "lockwatch": []}
    for order in (("plain", "lockwatch"), ("lockwatch", "plain")):  # alternate who goes first
        for side in order:
            out = subprocess.run([sys.executable, __file__, str(args.objects), "--forks",
                                  str(args.forks), "--side", side],
                                 check=True, capture_output=True, text=True).stdout
            results[side] += [float(x) for x in out.split()]
    p, w = statistics.median(results["plain"]), statistics.median(results["lockwatch"])
    print(f"python {sys.version.split()[0]}, {args.objects:,} objects on the heap, "
          f"{2 * args.forks} forks a side")
    print(f"plain      {p * 1e3:8.2f} ms per fork (median; lockwatch not imported)")
    print(f"lockwatch  {w * 1e3:8.2f} ms per fork (median; enabled, 1,000 live locks)")
    print(f"ratio      {w / p:8.2f}x")


if __name__ == "__main__":
    main()
