"""Cost of creating each primitive through threading's factories, plain and with lockwatch on.

Run from the project root (lockwatch importable)::

    python benchmarks/creation.py              # median of 5 timeit runs per primitive and side
    python benchmarks/creation.py --runs 9 --json creation.json
    python benchmarks/creation.py --timer cpu  # process CPU time: steadier on a shared machine

Creation matters because programs make locks all the time: every ``Future`` makes a Condition
and an RLock, every ``Queue`` a Lock and three Conditions. Each statement is timed by timeit in its
own code (so lockwatch sees a program frame, not its own); each lock dies at once (reference
counting: timeit switches only the cyclic collector off), and its __del__ is part of the cost.
The plain side is measured before ``lockwatch.enable()``, the instrumented side after, then the
plain side again after ``disable()``, which also checks that the originals came back. Nothing here
asserts on speed.

The floor: threading's factories are patched with wrapt (a product requirement), so every
``Lock()`` pays wrapt's call and the wrapper's decision whatever lockwatch then does. The last row
times the patched ``threading.Lock()`` called from code whose file is threading.py's: lockwatch
leaves such locks real, so that row is the call alone (the instrumented one made from the same
loop in a program file is timed beside it, and the plain one too, as ratios to it).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
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


TIMERS = {"wall": time.perf_counter, "cpu": time.process_time}


def measure(runs: int, number: int, clock: str = "wall") -> dict[str, float]:
    """Median ns per creation of each statement, over ``runs`` timeit runs of ``number`` each."""
    out = {}
    for name, stmt in STATEMENTS.items():
        timer = timeit.Timer(stmt, globals={"threading": threading}, timer=TIMERS[clock])
        times = [t / number * 1e9 for t in timer.repeat(repeat=runs, number=number)]
        out[name] = statistics.median(times)
    return out


_LOOP = "def loop(n, make):\n    for _ in range(n):\n        make()\n\ndef one(make):\n    return make()\n"


def _loop_in(filename: str) -> object:
    namespace: dict = {}
    exec(compile(_LOOP, filename, "exec"), namespace)
    return namespace["loop"]


def measure_floor(runs: int, number: int, raw_lock: object, clock: str = "wall") -> dict[str, float]:
    """Median ns per Lock() of the same loop: plain, instrumented (in a program's file), and the
    patched factory making a real lock (in threading.py's file): wrapt's call alone."""
    clock_fn = TIMERS[clock]
    one = _loop_in(threading.__file__).__globals__["one"]  # type: ignore[attr-defined]
    made = type(one(threading.Lock))
    if getattr(made, "_lw_tracked", False):
        raise SystemExit(f"the floor's loop made an instrumented lock ({made}): it measures nothing")
    loops = {"raw": (_loop_in("<program>"), raw_lock), "lockwatch": (_loop_in("<program>"), threading.Lock),
             "floor": (_loop_in(threading.__file__), threading.Lock)}
    times: dict[str, list[float]] = {k: [] for k in loops}
    for _ in range(runs):  # interleaved: a drift of the machine touches all three alike
        for key, (loop, make) in loops.items():
            t0 = clock_fn()
            loop(number, make)  # type: ignore[operator]
            times[key].append((clock_fn() - t0) / number * 1e9)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timeit runs per primitive and side")
    parser.add_argument("--number", type=int, default=20_000, help="creations per timeit run")
    parser.add_argument("--json", help="also write the numbers to this file")
    parser.add_argument("--timer", choices=sorted(TIMERS), default="wall",
                        help="wall clock (time.perf_counter) or this process's CPU time (time.process_time)")
    args = parser.parse_args(argv)

    originals = {n: getattr(threading, n) for n in ("Lock", "RLock", "Condition", "Semaphore")}
    raw = measure(args.runs, args.number, args.timer)
    lockwatch.enable(report_at_exit=False, deadlock_timeout=0)
    types = {name: type(eval(stmt, {"threading": threading})) for name, stmt in STATEMENTS.items()}
    watched = measure(args.runs, args.number, args.timer)
    floor = measure_floor(args.runs, args.number, originals["Lock"], args.timer)
    lockwatch.disable()
    restored = all(getattr(threading, n) is o for n, o in originals.items())
    raw_after = measure(args.runs, args.number, args.timer)

    print(f"Python {sys.version.split()[0]}: median of {args.runs} runs of {args.number:,} creations "
          f"({args.timer} time)")
    print(f"{'':14}{'raw':>9}{'lockwatch':>11}{'ratio':>8}{'raw again':>11}  lockwatch type")
    for name in STATEMENTS:
        t = types[name]
        print(f"{name:14}{raw[name]:>7,.0f}ns{watched[name]:>9,.0f}ns{watched[name] / raw[name]:>7.1f}x"
              f"{raw_after[name]:>9,.0f}ns  {_qualified(t)}")
    print(f"Lock() in a loop: raw {floor['raw']:,.0f}ns, lockwatch {floor['lockwatch']:,.0f}ns "
          f"({floor['lockwatch'] / floor['raw']:.1f}x), the patched factory making a real lock (the floor: "
          f"wrapt's call) {floor['floor']:,.0f}ns ({floor['floor'] / floor['raw']:.1f}x)")
    print(f"originals restored by disable(): {restored}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version.split()[0], "timer": args.timer, "raw": raw, "lockwatch": watched,
                       "raw_after": raw_after, "floor": floor, "restored": restored}, f, indent=1)
    return 0 if restored else 1


if __name__ == "__main__":
    sys.exit(main())
