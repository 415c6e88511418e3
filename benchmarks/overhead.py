"""Overhead of lockwatch's instrumented locks against the plain ones, measured in one process.

Run from the project root (lockwatch importable, e.g. installed editable)::

    python benchmarks/overhead.py            # full run, under a minute on an idle machine
    python benchmarks/overhead.py --quick    # smoke run, a few seconds; numbers are rough
    python benchmarks/overhead.py --json overhead.json [--rounds N]

What it measures, each as lockwatch / plain:

1. uncontended ``with Lock()``, timed by timeit with the statement in one frame, and again with
   each acquisition made by calling a small Python function (how real code calls it: the frame
   that lockwatch records is then a different one);
2. uncontended ``with RLock()``;
3. two nested locks, ``with a: with b: pass`` (after the first time the edge a->b is only counted);
4. a ``Condition`` wait/notify ping-pong between two threads (time per round trip);
5. a whole workload: producer threads feed a ``queue.Queue``, the main thread submits each item to
   a ``ThreadPoolExecutor`` of 4 workers that update a shared-lock tally, results are collected
   in submission order (wall clock of the whole run, per item); and separately ``as_completed``
   over finished Futures, which holds all their locks at once;
6. memory: bytes per live lock (tracemalloc), and RSS growth (``/proc/self/statm``, else
   ``getrusage``) while 1,000,000 locks are alive and after dropping them and ``gc.collect()``,
   instrumented and plain, in two cycles (a fresh process's first cycle keeps memory in the
   allocator even for plain locks: the plain column is the yardstick);
7. creation: ``Lock()`` and ``RLock()`` through threading's factories (the instance dies at once:
   its ``__del__`` is part of the cost).

Each core of lockwatch's hot path is measured in its own process: by default (``--core both``)
this script runs itself once with the compiled core (lockwatch._core, if built) and once with
``LOCKWATCH_PURE_PYTHON=1``, prints both tables, then the ratios side by side.

The plain primitives are taken before ``lockwatch.enable()``; the instrumented ones are made by the
patched ``threading`` factories afterwards, and their types are printed as a check. The workload
constructs everything (Queue, executor, Futures, its lock) inside the run, so its plain run happens
with lockwatch disabled and its instrumented run with lockwatch enabled.

The machine is shared and timings drift, so raw and instrumented measurements are interleaved
(in alternating order) for a number of rounds, each round keeping each side's best of a few
measurements; the table shows the median of the per-round ratios, with the median ns per operation
of each side, and the spread of the ratios follows it. Nothing here asserts on speed.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import concurrent.futures.thread
import gc
import importlib.util
import json
import os
import platform
import queue
import statistics
import sys
import threading
import time
import timeit
import traceback
import tracemalloc
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

# The plain primitives, before lockwatch patches anything. Importing lockwatch patches nothing, but
# take them first anyway so that the point is obvious.
RAW_LOCK = threading.Lock
RAW_RLOCK = threading.RLock
RAW_CONDITION = threading.Condition

import lockwatch  # noqa: E402
from lockwatch import proxies  # noqa: E402  (proxies.CORE: which core this process runs)

# concurrent.futures.thread creates `_global_shutdown_lock` at import, and every submit() takes it:
# the instrumented workload run swaps in an instrumented one (as `python -m lockwatch` would have).
_RAW_GLOBAL_SHUTDOWN_LOCK = concurrent.futures.thread._global_shutdown_lock

# Targets from the issue.
TARGET_LOCK_RATIO = 4.0
TARGET_WORKLOAD_RATIO = 1.5
TARGET_MEMORY_MB = 10.0


@dataclass
class Config:
    rounds: int
    repeats: int  # measurements of each side per round, the minimum kept (microbenchmarks)
    seconds_per_measurement: float  # timeit's `number` is chosen to take about this long
    pingpong_round_trips: int
    workload_items: int
    workload_rounds: int
    as_completed_futures: int
    memory_locks: int


FULL = Config(rounds=15, repeats=5, seconds_per_measurement=0.01, pingpong_round_trips=1_000,
              workload_items=8_000, workload_rounds=15, as_completed_futures=100,
              memory_locks=1_000_000)
QUICK = Config(rounds=5, repeats=2, seconds_per_measurement=0.005, pingpong_round_trips=200,
               workload_items=1_000, workload_rounds=5, as_completed_futures=25,
               memory_locks=100_000)


@dataclass
class Result:
    name: str
    unit: str  # of raw and lockwatch: "ns/op", "MB" or "B"
    raw: float
    lockwatch: float
    ratio: float | None  # median of per-round ratios (None for memory)
    target: str = ""
    status: str = ""  # "ok", "over target" or "" (no target)
    per_round_ratios: list[float] = field(default_factory=list)
    note: str = ""
    errors: list[str] = field(default_factory=list)


def median_ratio(raw_ns: list[float], lw_ns: list[float]) -> float:
    return statistics.median(lw / raw for raw, lw in zip(raw_ns, lw_ns))


def interleaved(measure_raw: Callable[[], float | None],
                measure_lw: Callable[[], float | None],
                rounds: int, repeats: int = 1) -> tuple[list[float], list[float]]:
    """Each round measures both sides `repeats` times, alternating which goes first so that a drift
    does not always favour the same side, and keeps each side's minimum (load from other processes
    only ever adds time). Returns the per-round values of each side; a round where a side returned
    None (it failed) is left out."""
    raw, lw = [], []
    for i in range(rounds):
        rs, xs = [], []
        for j in range(repeats):
            if (i + j) % 2 == 0:
                rs.append(measure_raw())
                xs.append(measure_lw())
            else:
                xs.append(measure_lw())
                rs.append(measure_raw())
        if None not in rs and None not in xs:
            raw.append(min(rs))  # type: ignore[type-var]
            lw.append(min(xs))  # type: ignore[type-var]
    return raw, lw


def describe_error(exc: BaseException) -> str:
    """The exception and the innermost frame it came from, on one line."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {os.path.relpath(tb[-1].filename)}:{tb[-1].lineno} in {tb[-1].name}" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


def calibrated(timer: timeit.Timer, seconds: float) -> Callable[[], float]:
    """A measurement function returning ns per loop, with `number` set so a call takes ~seconds."""
    number = 1
    while True:
        t = timer.timeit(number)
        if t >= 0.002:
            break
        number *= 4
    number = max(1, int(number * seconds / t))
    return lambda: timer.timeit(number) / number * 1e9


def timeit_result(name: str, stmt: str, raw_globals: dict, lw_globals: dict, cfg: Config,
                  target: float | None = None, note: str = "") -> Result:
    measure_raw = calibrated(timeit.Timer(stmt, globals=raw_globals), cfg.seconds_per_measurement)
    measure_lw = calibrated(timeit.Timer(stmt, globals=lw_globals), cfg.seconds_per_measurement)
    raw, lw = interleaved(measure_raw, measure_lw, cfg.rounds, cfg.repeats)
    return finish(name, raw, lw, target, note)


def finish(name: str, raw: list[float], lw: list[float], target: float | None,
           note: str = "") -> Result:
    ratio = median_ratio(raw, lw)
    status = "" if target is None else ("ok" if ratio <= target else "over target")
    return Result(name, "ns/op", statistics.median(raw), statistics.median(lw), ratio,
                  f"<= {target:.1f}x" if target is not None else "", status,
                  [round(lw_ / raw_, 3) for raw_, lw_ in zip(raw, lw)], note)


# --- 1-3: uncontended microbenchmarks ---------------------------------------------------------

def bench_lock(raw: Any, lw: Any, cfg: Config) -> Result:
    return timeit_result("with Lock(): (timeit loop, one frame)", "with l: pass",
                         {"l": raw}, {"l": lw}, cfg, TARGET_LOCK_RATIO)


def _caller_of(lock: Any) -> Callable[[], None]:
    def take() -> None:
        with lock:
            pass
    return take


def bench_lock_called(raw: Any, lw: Any, cfg: Config) -> Result:
    return timeit_result("with Lock(): (one Python call per acquisition)", "take()",
                         {"take": _caller_of(raw)}, {"take": _caller_of(lw)}, cfg,
                         TARGET_LOCK_RATIO, note="includes the call of the function on both sides")


def bench_rlock(raw: Any, lw: Any, cfg: Config) -> Result:
    return timeit_result("with RLock(): (timeit loop)", "with l: pass", {"l": raw}, {"l": lw}, cfg)


def bench_nested(raw: tuple, lw: tuple, cfg: Config) -> Result:
    stmt = "with a:\n    with b:\n        pass"
    return timeit_result("with a: with b: (nested Locks)", stmt,
                         {"a": raw[0], "b": raw[1]}, {"a": lw[0], "b": lw[1]}, cfg)


def bench_creation(raw: Any, lw: Any, name: str, cfg: Config) -> Result:
    """``raw`` and ``lw`` are the factories (the plain class or function, the patched one)."""
    return timeit_result(f"{name}() creation", "make()", {"make": raw}, {"make": lw}, cfg,
                         note="the instance dies at once: its __del__ is part of the cost")


# --- 4: Condition ping-pong -------------------------------------------------------------------

def pingpong(cond: Any, round_trips: int) -> float:
    """ns per round trip of two threads handing a turn back and forth under ``cond``."""
    turn = [0]

    def player(me: int) -> None:
        with cond:
            for _ in range(round_trips):
                while turn[0] != me:
                    cond.wait()
                turn[0] = 1 - me
                cond.notify()

    threads = [threading.Thread(target=player, args=(i,)) for i in (0, 1)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (time.perf_counter() - t0) / round_trips * 1e9


def bench_condition(raw: Any, lw: Any, cfg: Config) -> Result:
    n = cfg.pingpong_round_trips
    pingpong(raw, n // 10)  # warm up both
    pingpong(lw, n // 10)
    raw_ns, lw_ns = interleaved(lambda: pingpong(raw, n), lambda: pingpong(lw, n), cfg.rounds,
                                cfg.repeats)
    return finish(f"Condition wait/notify ping-pong ({n} round trips)", raw_ns, lw_ns, None,
                  note="ns per round trip; includes starting the two threads")


# --- 5: whole workload ------------------------------------------------------------------------

def _work(item: int, size: int = 64) -> int:
    return sum(range(item % size))


def run_workload(n_items: int, producers: int = 2, workers: int = 4,
                 size: int = 64) -> tuple[float, dict]:
    """Producers -> queue.Queue -> main thread submits each item to a pool of `workers` threads,
    which keep a tally under one shared lock; results collected in submission order (as
    ``executor.map`` does). Everything is constructed here, through whatever `threading` holds
    now. Returns (seconds, types seen)."""
    t0 = time.perf_counter()
    items: queue.Queue = queue.Queue(maxsize=256)
    tally_lock = threading.Lock()
    tally = [0, 0]

    def produce(first: int) -> None:
        for i in range(first, n_items, producers):
            items.put(i)

    def process(item: int) -> int:
        v = _work(item, size)
        with tally_lock:
            tally[0] += v
            tally[1] += 1
        return v

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        feeders = [threading.Thread(target=produce, args=(k,), daemon=True)
                   for k in range(producers)]
        for f in feeders:
            f.start()
        try:
            futures = [pool.submit(process, items.get()) for _ in range(n_items)]
            total = sum(f.result() for f in futures)
        except BaseException:
            # Let the producers finish rather than block on a full queue for ever.
            while any(f.is_alive() for f in feeders):
                try:
                    items.get(timeout=0.05)
                except queue.Empty:
                    pass
            raise
        for f in feeders:
            f.join()
        types = {
            "Queue.mutex": type(items.mutex),
            "Queue.not_empty": type(items.not_empty),
            "executor._shutdown_lock": type(pool._shutdown_lock),
            "executor._idle_semaphore": type(pool._idle_semaphore),
            "Future._condition": type(futures[0]._condition),
            "Future._condition._lock": type(futures[0]._condition._lock),
            "tally lock": type(tally_lock),
            "_global_shutdown_lock": type(concurrent.futures.thread._global_shutdown_lock),
        }
    elapsed = time.perf_counter() - t0
    expected = sum(_work(i, size) for i in range(n_items))
    if total != expected or tally != [expected, n_items]:
        raise RuntimeError(f"workload computed {total}/{tally}, expected {expected}")
    return elapsed, {k: _qualified(t) for k, t in types.items()}


def bench_workload(cfg: Config, size: int = 64, label: str = "") -> tuple[Result, dict, dict]:
    """Needs lockwatch enabled on entry; leaves it enabled. ``size`` sets the work per item:
    sum(range(item % size)) (64: about 1 us, the workload is all locking; 4096: about 40 us)."""
    seen: dict[str, dict] = {}
    errors: list[str] = []

    def raw_run() -> float:
        lockwatch.disable()
        concurrent.futures.thread._global_shutdown_lock = _RAW_GLOBAL_SHUTDOWN_LOCK
        try:
            elapsed, seen["raw"] = run_workload(cfg.workload_items, size=size)
        finally:
            lockwatch.enable(report_at_exit=False)
        return elapsed / cfg.workload_items * 1e9

    def lw_run() -> float | None:
        concurrent.futures.thread._global_shutdown_lock = threading.Lock()  # instrumented
        try:
            elapsed, seen["lockwatch"] = run_workload(cfg.workload_items, size=size)
        except Exception as exc:  # report lockwatch's failure in the table, measure the rest
            errors.append(describe_error(exc))
            return None
        finally:
            concurrent.futures.thread._global_shutdown_lock = _RAW_GLOBAL_SHUTDOWN_LOCK
        return elapsed / cfg.workload_items * 1e9

    raw_run()  # warm up both (thread creation, imports, code paths)
    lw_run()
    raw, lw = interleaved(raw_run, lw_run, cfg.workload_rounds)
    name = f"workload: Queue + ThreadPoolExecutor(4), {cfg.workload_items:,} items{label}"
    note = "ns per item, whole-run wall clock"
    if not raw:
        result = Result(name, "ns/op", float("nan"), float("nan"), None, "", "FAILED", note=note)
    else:
        result = finish(name, raw, lw, TARGET_WORKLOAD_RATIO, note=note)
    if errors:
        result.status = "FAILED" if not raw else f"{result.status}, FAILED"
        runs = cfg.workload_rounds + 1
        result.errors = [f"{len(errors)} of {runs} lockwatch runs raised; first: {errors[0]}"]
    return result, seen.get("raw", {}), seen.get("lockwatch", {})


def as_completed_once(n: int) -> float:
    """ns per future of one ``as_completed`` over n finished Futures made here. as_completed (like
    ``concurrent.futures.wait``) takes the conditions of all n futures at once, so one thread holds
    n locks: n*(n-1)/2 lock-order edges between fresh instances, each new."""
    futures = [concurrent.futures.Future() for _ in range(n)]
    for i, f in enumerate(futures):
        f.set_result(i)
    t0 = time.perf_counter()
    total = sum(f.result() for f in concurrent.futures.as_completed(futures))
    elapsed = time.perf_counter() - t0
    assert total == n * (n - 1) // 2
    return elapsed / n * 1e9


def bench_as_completed(cfg: Config) -> Result:
    """Needs lockwatch enabled on entry; leaves it enabled."""
    n = cfg.as_completed_futures

    def raw_run() -> float:
        lockwatch.disable()
        try:
            return as_completed_once(n)
        finally:
            lockwatch.enable(report_at_exit=False)

    raw, lw = interleaved(raw_run, lambda: as_completed_once(n), cfg.rounds)
    return finish(f"as_completed() over {n} done Futures", raw, lw, None,
                  note="ns per future; one thread holds all n Futures' locks at once")


# --- 6: memory --------------------------------------------------------------------------------

def rss_bytes() -> tuple[int, str]:
    """Current resident set size, and where it came from. Without /proc, getrusage gives only the
    peak, which never goes down: 'after' then over-states what is still held."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"), "/proc/self/statm"
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return (peak if sys.platform == "darwin" else peak * 1024), "getrusage peak"


def malloc_trim() -> bool:
    """glibc's malloc_trim(0): the C allocator gives freed memory back to the system, so that RSS
    after dropping the locks shows what is still in use rather than what the allocator keeps
    (issue 16's measure for the million-lock cycle). False where there is no glibc."""
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
        return True
    except (OSError, AttributeError):
        return False


TRIM = malloc_trim()


def rss_growth(factory: Callable[[], Any], n: int) -> tuple[float, float, str]:
    """MB of RSS above the start with n locks alive (each taken once), and after dropping them
    (then gc, then malloc_trim where there is one)."""
    gc.collect()
    malloc_trim()
    before, source = rss_bytes()
    locks = [factory() for _ in range(n)]
    for lock in locks:
        with lock:
            pass
    alive, _ = rss_bytes()
    del locks, lock
    gc.collect()
    malloc_trim()
    after, _ = rss_bytes()
    mb = 1024 * 1024
    return (alive - before) / mb, (after - before) / mb, source


def bytes_per_lock(factory: Callable[[], Any], n: int = 10_000) -> float:
    """Python-heap bytes a live lock costs (tracemalloc): RSS growth under-counts when the
    allocator reuses memory freed earlier."""
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        locks = [factory() for _ in range(n)]
        for lock in locks:
            with lock:
                pass
        used = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    del locks
    return (used - sys.getsizeof([None] * n)) / n  # less the list that holds them


def bench_memory(cfg: Config) -> list[Result]:
    """Needs lockwatch enabled: `threading.Lock` is then the instrumented factory. Runs first, on
    a small heap. Two create/drop cycles of each kind, alternating: the first cycle in a process
    leaves the allocator holding memory even for plain locks, so the raw column is the yardstick."""
    n = cfg.memory_locks
    cycles = []
    for _ in range(2):
        raw_alive, raw_after, source = rss_growth(RAW_LOCK, n)
        lw_alive, lw_after, _ = rss_growth(threading.Lock, n)
        cycles.append((raw_alive, raw_after, lw_alive, lw_after))
    raw_bytes, lw_bytes = bytes_per_lock(RAW_LOCK), bytes_per_lock(threading.Lock)
    raw_alive, _, lw_alive, _ = cycles[0]
    results = [
        Result("memory: bytes per live Lock (tracemalloc)", "B", raw_bytes, lw_bytes,
               lw_bytes / raw_bytes),
        Result(f"memory: RSS growth, {n:,} Locks alive", "MB", raw_alive, lw_alive,
               lw_alive / raw_alive if raw_alive > 0 else None, note=source),
    ]
    for k, (_, raw_after, _, lw_after) in enumerate(cycles, 1):
        results.append(Result(
            f"memory: RSS after dropping them + gc + trim, cycle {k}", "MB", raw_after, lw_after, None,
            f"<= {TARGET_MEMORY_MB:.0f} MB", "ok" if lw_after <= TARGET_MEMORY_MB else "over target",
            note="; ".join(x for x in (
                "malloc_trim(0) before measuring" if TRIM else "no malloc_trim: RSS has what the allocator keeps",
                "the target is for 1,000,000 locks" if n != 1_000_000 else "",
                "a fresh process's first cycle leaves memory with the allocator, plain locks "
                "too: compare with raw" if k == 1 else "") if x)))
    return results


# --- report -----------------------------------------------------------------------------------

def _qualified(t: type) -> str:
    # lockwatch's stand-ins for threading's classes say they are threading's (as the real ones
    # do): _lw_original tells them apart.
    if getattr(t, "_lw_original", None) is not None:
        return f"lockwatch.primitives.{t.__qualname__}"
    return f"{t.__module__}.{t.__qualname__}"


def type_name(obj: Any) -> str:
    return _qualified(type(obj))


def fmt_value(value: float, unit: str) -> str:
    if value != value:  # NaN: no measurement
        return "-"
    if unit == "MB":
        return f"{value:+.1f} MB"
    if unit == "B":
        return f"{value:.0f} B"
    return f"{value:,.0f} ns" if value >= 100 else f"{value:.1f} ns"


def print_table(results: list[Result]) -> None:
    rows = [("benchmark", "raw", "lockwatch", "ratio", "target", "")]
    for r in results:
        rows.append((r.name, fmt_value(r.raw, r.unit), fmt_value(r.lockwatch, r.unit),
                     f"{r.ratio:.2f}x" if r.ratio is not None else "-", r.target or "-", r.status))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:5], widths[1:5])]
        print("  ".join(cells) + "  " + row[5])
        if k == 0:
            print("  ".join("-" * w for w in widths[:5]) + "  " + "-" * widths[5])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shrink everything for a smoke run")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON to PATH")
    parser.add_argument("--rounds", type=int, help="rounds of interleaved measurements")
    parser.add_argument("--core", choices=("both", "c", "python"), default="both",
                        help="which core of lockwatch to measure (both: each in its own process)")
    args = parser.parse_args(argv)
    if args.core != "both" and args.core != proxies.CORE and os.environ.get(_CHILD):
        print(f"the {args.core} core did not load here ({proxies.CORE_DETAILS or 'no details'}); "
              "rebuild it (pip install -e .)", file=sys.stderr)
        return 1
    if args.core == "both" or args.core != proxies.CORE:
        return run_cores(args, sys.argv[1:] if argv is None else argv)
    cfg = QUICK if args.quick else FULL
    if args.rounds:
        cfg = replace(cfg, rounds=args.rounds, workload_rounds=args.rounds)

    print(f"Python {sys.version.split()[0]} ({platform.python_implementation()}, "
          f"{platform.machine()}, {os.cpu_count()} CPUs), lockwatch {lockwatch.__version__}, "
          f"{proxies.CORE} core{', --quick' if args.quick else ''}")
    print(f"{cfg.rounds} interleaved rounds, each side's best of {cfg.repeats} per round "
          f"(workload: {cfg.workload_rounds} rounds of one run each);\n"
          "raw and lockwatch are medians over the rounds, ratio the median of per-round ratios\n")

    raw_lock, raw_rlock, raw_cond = RAW_LOCK(), RAW_RLOCK(), RAW_CONDITION()
    raw_pair = (RAW_LOCK(), RAW_LOCK())
    session = lockwatch.enable(report_at_exit=False)  # its defaults otherwise, as a user gets them
    timeout = getattr(session.settings, "deadlock_timeout", None)
    if timeout is not None:
        print(f"lockwatch.enable() defaults: deadlock watchdog "
              f"{f'on ({timeout:g} s)' if timeout else 'off'}\n")
    try:
        lw_lock, lw_rlock, lw_cond = threading.Lock(), threading.RLock(), threading.Condition()
        lw_pair = (threading.Lock(), threading.Lock())
        memory = bench_memory(cfg)  # first, on a small heap
        types = {
            "Lock": (type_name(raw_lock), type_name(lw_lock)),
            "RLock": (type_name(raw_rlock), type_name(lw_rlock)),
            "Condition": (type_name(raw_cond), type_name(lw_cond)),
            "Condition's lock": (type_name(raw_cond._lock), type_name(lw_cond._lock)),
        }
        results = [
            bench_lock(raw_lock, lw_lock, cfg),
            bench_lock_called(raw_lock, lw_lock, cfg),
            bench_rlock(raw_rlock, lw_rlock, cfg),
            bench_nested(raw_pair, lw_pair, cfg),
            bench_condition(raw_cond, lw_cond, cfg),
        ]
        results.append(bench_creation(RAW_LOCK, threading.Lock, "Lock", cfg))
        results.append(bench_creation(RAW_RLOCK, threading.RLock, "RLock", cfg))
        workload, raw_types, lw_types = bench_workload(cfg, label=" (~1 us work each)")
        results.append(workload)
        # The same pipeline doing some work per item, as real pipelines do: the ratio depends on
        # how much of the time is spent in locks, so both are reported.
        results.append(bench_workload(cfg, size=4096, label=" (~40 us work each)")[0])
        for key in raw_types:
            types[f"workload {key}"] = (raw_types[key], lw_types.get(key, "(no run completed)"))
        results.append(bench_as_completed(cfg))
        results.extend(memory)
    finally:
        lockwatch.disable()

    print("types used (raw -> lockwatch):")
    width = max(len(k) for k in types)
    for key, (raw_t, lw_t) in types.items():
        flag = "" if lw_t.startswith("lockwatch.") else "   <- NOT INSTRUMENTED"
        print(f"  {key.ljust(width)}  {raw_t} -> {lw_t}{flag}")
    print()
    print_table(results)
    notes = [r for r in results if r.note]
    if notes:
        print()
        for r in notes:
            print(f"  {r.name}: {r.note}")
    for r in results:
        for error in r.errors:
            print(f"\n  ERROR in {r.name}: {error}")
    print("\nper-round ratios (spread):")
    for r in results:
        if r.per_round_ratios:
            lo, hi = min(r.per_round_ratios), max(r.per_round_ratios)
            print(f"  {r.name}: {lo:.2f}x .. {hi:.2f}x")

    if args.json:
        data = {
            "python": sys.version.split()[0],
            "implementation": platform.python_implementation(),
            "cpus": os.cpu_count(),
            "lockwatch": lockwatch.__version__,
            "core": proxies.CORE,
            "quick": args.quick,
            "config": asdict(cfg),
            "types": {k: {"raw": r, "lockwatch": w} for k, (r, w) in types.items()},
            "results": [{k: (None if isinstance(v, float) and v != v else v)
                         for k, v in asdict(r).items()} for r in results],
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        print(f"\nJSON written to {args.json}")
    return 0


def _without(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option`` and its value (either "--opt VALUE" or "--opt=VALUE")."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == option:
            skip = True
        elif not a.startswith(option + "="):
            out.append(a)
    return out


_CHILD = "LOCKWATCH_OVERHEAD_CHILD"  # set in the process run_cores starts for one core


def run_cores(args: argparse.Namespace, argv: list[str]) -> int:
    """Run this script once per core asked for, each in a process of its own (the core is chosen
    at import), then print the ratios of both side by side (and write both to --json)."""
    import subprocess
    import tempfile

    built = importlib.util.find_spec("lockwatch._core") is not None
    cores = ["c", "python"] if args.core == "both" else [args.core]
    if "c" in cores and not built:
        print("lockwatch._core is not built (no C compiler at install?): the compiled core is not measured\n")
        cores.remove("c")
    if not cores:
        return 1
    base = _without(_without(argv, "--core"), "--json")
    found: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for core in cores:
            env = {**os.environ, "LOCKWATCH_PURE_PYTHON": "1" if core == "python" else "", _CHILD: "1"}
            out = os.path.join(tmp, f"{core}.json")
            print(f"=== {core} core " + "=" * 60, flush=True)
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), *base, "--core", core,
                                   "--json", out], env=env)
            if proc.returncode != 0 or not os.path.exists(out):
                print(f"the {core} core's run failed (exit status {proc.returncode})")
                return proc.returncode or 1
            with open(out, encoding="utf-8") as f:
                found[core] = json.load(f)
            print()
    print("=== ratios, lockwatch / raw, by core " + "=" * 38)
    names = [r["name"] for r in next(iter(found.values()))["results"]]
    width = max(len(n) for n in names)
    print(f"{'benchmark'.ljust(width)}  " + "  ".join(f"{c:>8}" for c in found))
    for name in names:
        cells = []
        for core in found:
            row = next((r for r in found[core]["results"] if r["name"] == name), None)
            ratio = row and row["ratio"]
            cells.append(f"{ratio:7.2f}x" if isinstance(ratio, (int, float)) else f"{'-':>8}")
        print(f"{name.ljust(width)}  " + "  ".join(cells))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"cores": found}, f, indent=2)
            f.write("\n")
        print(f"\nJSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
