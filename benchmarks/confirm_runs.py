"""How many steered runs `--confirm` needs to confirm each test program, and how long it takes.

    python benchmarks/confirm_runs.py [--repeat 10] [--runs 5] [--pause 0.5] [--only NAME ...]

Runs the whole `python -m lockwatch --confirm` (or `pytest --lockwatch --lockwatch-confirm` for the
split inversion) REPEAT times on each program of tests/programs/confirm/, and prints, per program,
the status found, the run that confirmed (min / median / max over the repetitions) and the wall
time of the whole command (min / median / max). DeadlockFuzzer and ConLock report probabilities
of reproducing a deadlock; this is ours.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = ROOT / "tests" / "programs" / "confirm"
CLI = ("abba_together.py", "ring3.py", "bank.py", "gated.py", "single.py", "sequential.py")
PYTEST = "pytest_split"


def one(name: str, runs: int, pause: float, tmp: Path) -> tuple[str, int, float, float]:
    """(status, runs made or the run that confirmed, wall seconds, CPU seconds of every process)
    of one whole --confirm run. The CPU time does not grow with the machine's load; the wall time does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKWATCH")}
    env["PYTHONPATH"] = str(ROOT)
    report = tmp / "report.json"
    options = ["--confirm-runs" if name != PYTEST else "--lockwatch-confirm-runs", str(runs),
               "--confirm-pause" if name != PYTEST else "--lockwatch-confirm-pause", str(pause)]
    if name == PYTEST:
        work = tmp / PYTEST
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(PROGRAMS / PYTEST, work)
        (work / "pytest.ini").write_text("[pytest]\n")
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--lockwatch",
                "--lockwatch-confirm", "--lockwatch-json", str(report), *options, "test_cart.py", "test_stock.py"]
        cwd = work
    else:
        argv = [sys.executable, "-m", "lockwatch", "--confirm", "-q", "--json", str(report), *options,
                str(PROGRAMS / name)]
        cwd = tmp
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # grandchildren too: each waited for its own
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    data = json.loads(report.read_text())
    [found] = [p for p in data["potential_deadlocks"] if p["origin"] == "user" and
               (name != PYTEST or {lk["name"] for lk in p["locks"]} == {"cart_lock", "stock_lock"})]
    c = found["confirmation"]
    return c["status"], c.get("run") or c["runs"], wall, cpu


def spread(values: list[float], fmt: str) -> str:
    return " / ".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pause", type=float, default=0.5)
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    names = [n for n in args.only if n in (*CLI, PYTEST)] if args.only else [*CLI, PYTEST]
    print(f"{'program':<20} {'status (count)':<20} {'confirmed in run':<18} {'wall s min/med/max':<22} "
          "CPU s min/med/max")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            results = [one(name, args.runs, args.pause, Path(tmp)) for _ in range(args.repeat)]
            statuses = {s: sum(1 for r in results if r[0] == s) for s in sorted({r[0] for r in results})}
            confirmed = [float(r[1]) for r in results if r[0] == "confirmed"]
            print(f"{name:<20} {', '.join(f'{s} ({n})' for s, n in statuses.items()):<20} "
                  f"{spread(confirmed, '.0f') if confirmed else '-':<18} "
                  f"{spread([r[2] for r in results], '.1f'):<22} {spread([r[3] for r in results], '.1f')}",
                  flush=True)


if __name__ == "__main__":
    main()
