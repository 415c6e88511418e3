"""A thread holding thousands of locks at once: ``as_completed()`` and then ``wait()`` over n futures
of a ``ThreadPoolExecutor(4)`` (both take the locks of all n futures together), with and without
lockwatch, in one process.

    python benchmarks/many_futures.py            # n = 3000, 5 rounds
    python benchmarks/many_futures.py 10000 --rounds 3

Prints the median wall clock of each side, their ratio, and the lock-order edges lockwatch
recorded against the n*(n-1)/2 pairs of futures held together. Nothing here asserts on speed.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import sys
import time

import lockwatch


def run(n: int, session: lockwatch.Session | None = None) -> tuple[float, int]:
    """Seconds for one pool, n submitted calls, as_completed() over them, then wait(); and the
    lock-order edges ``session`` holds then (counted while the futures, which own them, live)."""
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(pow, 2, i) for i in range(n)]
        done = sum(1 for _ in concurrent.futures.as_completed(futures))
        finished, _ = concurrent.futures.wait(futures)
    elapsed = time.perf_counter() - t0
    assert done == len(finished) == n
    return elapsed, len(session.snapshot().instance_edges) if session else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("futures", nargs="?", type=int, default=3000, help="n (default 3000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of both sides (default 5)")
    args = parser.parse_args(argv)
    if args.futures < 1 or args.rounds < 1:
        parser.error("futures and --rounds must be at least 1")
    n = args.futures
    raw, watched, edges = [], [], []
    for i in range(args.rounds):
        for side in ((0, 1) if i % 2 == 0 else (1, 0)):  # alternate which side goes first
            if side == 0:
                raw.append(run(n)[0])
                continue
            with lockwatch.watching() as session:  # a fresh session per round
                elapsed, recorded = run(n, session)
            watched.append(elapsed)
            edges.append(recorded)
    r, w = statistics.median(raw), statistics.median(watched)
    print(f"Python {sys.version.split()[0]}: as_completed() then wait() over {n} futures, "
          f"median of {args.rounds} rounds")
    print(f"  without lockwatch  {r * 1e3:10.1f} ms")
    print(f"  with lockwatch     {w * 1e3:10.1f} ms   {w / r:.1f}x")
    print(f"  lock-order edges recorded: {max(edges):,} (pairs of futures held together: "
          f"{n * (n - 1) // 2:,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
