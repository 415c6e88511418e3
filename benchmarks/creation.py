"""Cost of creating each primitive through threading's factories, plain and with lockwatch on.

Run from the project root (lockwatch importable)::

    python benchmarks/creation.py              # median of 5 timeit runs per primitive and side
    python benchmarks/creation.py --runs 9 --json creation.json

Creation matters because programs make locks all the time: every ``Future`` makes a Condition
and an RLock, every ``Queue`` a Lock and three Conditions. Each statement is timed by timeit in its
own code (so lockwatch sees a program frame, not its own); each lock dies at once (reference
counting: timeit switches only the cyclic collector off), and its __del__ is part of the cost.
The plain side is measured before ``lockwatch.enable()``, the instrumented side after, then the
plain side again after ``disable()``, which also checks that the originals came back. Nothing here
asserts on speed.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import timeit

import lockwatch

STATEMENTS = {
    "Lock()": "threading.Lock()",
    "RLock()": "threading.RLock()",
    "Condition()": "threading.Condition()",
    "Semaphore()": "threading.Semaphore()",
}


def _qualified(t: type) -> str:
    # lockwatch's stand-ins for threading's classes say they are threading's, as the real ones do
    if getattr(t, "_lw_original", None) is not None:
        return f"lockwatch.primitives.{t.__qualname__}"
    return f"{t.__module__}.{t.__qualname__}"


def measure(runs: int, number: int) -> dict[str, float]:
    """Median ns per creation of each statement, over ``runs`` timeit runs of ``number`` each."""
    out = {}
    for name, stmt in STATEMENTS.items():
        timer = timeit.Timer(stmt, globals={"threading": threading})
        times = [t / number * 1e9 for t in timer.repeat(repeat=runs, number=number)]
        out[name] = statistics.median(times)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timeit runs per primitive and side")
    parser.add_argument("--number", type=int, default=20_000, help="creations per timeit run")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)

    originals = {n: getattr(threading, n) for n in ("Lock", "RLock", "Condition", "Semaphore")}
    raw = measure(args.runs, args.number)
    lockwatch.enable(report_at_exit=False, deadlock_timeout=0)
    types = {name: type(eval(stmt, {"threading": threading})) for name, stmt in STATEMENTS.items()}
    watched = measure(args.runs, args.number)
    lockwatch.disable()
    restored = all(getattr(threading, n) is o for n, o in originals.items())
    raw_after = measure(args.runs, args.number)

    print(f"Python {sys.version.split()[0]}: median of {args.runs} runs of {args.number:,} creations")
    print(f"{'':14}{'raw':>9}{'lockwatch':>11}{'ratio':>8}{'raw again':>11}  lockwatch type")
    for name in STATEMENTS:
        t = types[name]
        print(f"{name:14}{raw[name]:>7,.0f}ns{watched[name]:>9,.0f}ns{watched[name] / raw[name]:>7.1f}x"
              f"{raw_after[name]:>9,.0f}ns  {_qualified(t)}")
    print(f"originals restored by disable(): {restored}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version.split()[0], "raw": raw, "lockwatch": watched,
                       "raw_after": raw_after, "restored": restored}, f, indent=1)
    return 0 if restored else 1


if __name__ == "__main__":
    sys.exit(main())
