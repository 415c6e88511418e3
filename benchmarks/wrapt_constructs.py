"""Lock()/RLock() creation through the wrapt constructs patching.py could use, side by side.

Run from the project root (lockwatch importable)::

    python benchmarks/wrapt_constructs.py          # 7 interleaved rounds
    python benchmarks/wrapt_constructs.py 15

Each candidate wraps the original factory and makes an instrumented lock for the calling frame;
they differ in how the call gets there: wrapt's C ``__call__`` calling a wrapper with
``(wrapped, instance, args, kwargs)`` (through a plain ``wrapt.FunctionWrapper``, as
``wrap_function_wrapper`` installs it, or through a subclass of it), a Python ``__call__`` on a
subclass, or no wrapper at all (the floor: the instance alone, through one
lambda). Rounds alternate the order; each figure is the median over rounds of each round's best
of 3 timeit runs. patching.install() cites these numbers.
"""
from __future__ import annotations

import statistics
import sys
import threading
import timeit
from typing import Any, Callable

import wrapt

from lockwatch import patching, proxies

LOCK, RLOCK = threading.Lock, threading.RLock


def candidates() -> dict[str, Callable[[], Any]]:
    class_lock, class_rlock, function_rlock = patching._factory_types()
    installed_lock = patching._wrapper_type(LOCK, class_lock)
    return {
        "raw Lock": LOCK,
        f"Lock: plain wrapt.FunctionWrapper{' (installed)' * (installed_lock is wrapt.FunctionWrapper)}":
            wrapt.FunctionWrapper(LOCK, patching._lock_factory),
        f"Lock: lockwatch's subclass{' (installed)' * (installed_lock is class_lock)}":
            class_lock(LOCK, patching._lock_factory),
        "Lock: no wrapper (floor)": lambda: proxies.new_lock(sys._getframe(1), True),
        "raw RLock": RLOCK,
        "RLock: plain wrapt.FunctionWrapper": wrapt.FunctionWrapper(RLOCK, patching._rlock_factory),
        "RLock: subclass, wrapt's C __call__": class_rlock(RLOCK, patching._rlock_factory),
        "RLock: subclass with a Python __call__ (installed)": function_rlock(RLOCK, patching._rlock_factory),
        "RLock: no wrapper (floor)": lambda: proxies.new_rlock(sys._getframe(1), True),
    }


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    cands = list(candidates().items())
    times: dict[str, list[float]] = {name: [] for name, _ in cands}
    for r in range(rounds):
        for name, make in (cands if r % 2 == 0 else cands[::-1]):
            timer = timeit.Timer("make()", globals={"make": make})
            times[name].append(min(timer.repeat(3, 20_000)) / 20_000 * 1e9)
    print(f"Python {sys.version.split()[0]}, wrapt {wrapt.__version__}: ns per creation, median of"
          f" {rounds} rounds [min..max]")
    for name, values in times.items():
        print(f"  {name:58} {statistics.median(values):6,.0f}  [{min(values):,.0f}..{max(values):,.0f}]")


if __name__ == "__main__":
    main()
