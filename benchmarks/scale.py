"""How analysis and JSON reports scale with the size and shape of the lock-order graph.

Run from the project root (lockwatch importable, e.g. installed editable)::

    python benchmarks/scale.py                 # 10k and 100k sites, every shape (a few minutes)
    python benchmarks/scale.py --quick         # 10k sites only
    python benchmarks/scale.py --timeout 120   # give up on a step after this many seconds

Each row is one synthetic snapshot (made here, deterministic, no threads): ``sites`` lock sites,
``edges`` site edges i -> j (i < j, j at most 50 sites further: a layered, acyclic lock order)
and as many instance edges (one instance per site, as a recording of long-lived locks has),
each edge with its own stacks (8 frames: a shared call path, the function holding the first lock
and the line taking the second, so most acquire stacks are distinct) plus:

- ``acyclic``: nothing more;
- ``few cycles``: five edges back over a few sites (five small strongly connected components);
- ``giant SCC``: one edge from the last site back to the first, which makes nearly the whole graph
  one strongly connected component (networkx's enumeration took 884 s on 10k sites).

The locks have acquisitions but no hold or wait times: their timings are idle, written
``{"count": 0}``. A real run's locks that were taken have hold times (a few histogram buckets:
~220 bytes more a lock in the JSON, about 22 MB at 100k sites); their waits are idle unless contended.

Each step runs in its own subprocess (so that its peak memory, ``ru_maxrss``, is its own, and a
step that runs on can be stopped): ``analysis`` is ``lockwatch.analysis.build_report`` on the
snapshot; ``write`` renders and writes the JSON report (``lockwatch.files.write_report_file``);
``read`` is ``lockwatch.model.load`` of that file. ``peak MB`` is the largest resident size of
the write and read subprocesses (``base MB``: a subprocess that only built the snapshot).
The same script runs against an older lockwatch with ``PYTHONPATH=/path/to/old/checkout``.
Nothing here asserts on speed.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from typing import Any

SHAPES = ("acyclic", "few cycles", "giant SCC")
SIZES = ((10_000, 50_000), (100_000, 500_000))


def make_snapshot(sites: int, edges: int, shape: str, seed: int = 16) -> Any:
    from lockwatch.model import EdgeRecord, LockStats, Snapshot

    rng = random.Random(seed)
    root = "/home/dev/project/app"
    locks = [LockStats(key=f"{root}/mod{i // 100:04d}.py:{10 + i % 100 * 3}:Lock", name=f"lock_{i}",
                       kind="Lock", filename=f"{root}/mod{i // 100:04d}.py", line=10 + i % 100 * 3,
                       function="<module>", stable_file=f"app/mod{i // 100:04d}.py", instances=1,
                       acquisitions=rng.randint(1, 10_000))
             for i in range(sites)]
    paths = [[f"{root}/service{p % 40}.py:{20 + k * 7} in step{k}" for k in range(6)] for p in range(200)]
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < edges:
        i = rng.randrange(sites - 1)
        pairs.add((i, min(sites - 1, i + rng.randint(1, 50))))
    order = sorted(pairs)
    if shape == "few cycles":  # five cycles of 2 to 6 sites, each its own small component
        for k in range(5):
            i = (k + 1) * sites // 7
            chain = [(i + m, i + m + 1) for m in range(k + 1)]
            order.extend(p for p in chain if p not in pairs)
            order.append((i + k + 1, i))
    elif shape == "giant SCC":
        order.append((sites - 1, 0))
    site_edges, instance_edges = [], []
    for i, j in order:
        a, b = locks[i], locks[j]
        prefix = paths[(i * 31 + j) % len(paths)]
        held = prefix + [f"{a.filename}:{a.line + 40} in use_{i}"]
        acquire = prefix + [f"{a.filename}:{a.line + 41 + j % 5} in use_{i}", f"{b.filename}:{b.line + 2} in take_{j}"]
        thread = f"worker-{(i + j) % 8}"
        e = EdgeRecord(src=a.key, dst=b.key, thread=thread, held_stack=held, acquire_stack=acquire,
                       count=1 + (i * j) % 3, thread_id=f"4242:{140000 + (i + j) % 8}")
        site_edges.append(e)
        # replace(), not EdgeRecord(**e.__dict__): reading __dict__ makes CPython (3.11+) keep
        # e's attributes in a dict of its own from then on, slower to read than those of the
        # records snapshot.take(), merge() and model.load() make (a fifth of the writer's time
        # for these edges)
        instance_edges.append(replace(e, src_instance=i + 1, dst_instance=j + 1))
    return Snapshot(locks=locks, site_edges=site_edges, instance_edges=instance_edges,
                    meta={"benchmark": "scale", "sites": sites, "edges": len(order), "shape": shape})


def _peak_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def _one(step: str, sites: int, edges: int, shape: str, path: str) -> dict[str, Any]:
    """One step in this process: its seconds, peak memory and what it found."""
    from lockwatch import analysis, files, model

    out: dict[str, Any] = {}
    if step == "read":
        t, c = time.perf_counter(), time.process_time()
        saved = model.load(path)
        out["seconds"], out["cpu"] = time.perf_counter() - t, time.process_time() - c
        out["edges_read"] = len(saved.snapshot.site_edges) + len(saved.snapshot.instance_edges)
    else:
        snap = make_snapshot(sites, edges, shape)
        out["base_mb"] = _peak_mb()
        if step != "base":
            t, c = time.perf_counter(), time.process_time()
            report = analysis.build_report([snap])
            out["analysis_s"], out["analysis_cpu"] = time.perf_counter() - t, time.process_time() - c
            out["findings"] = len(report.potential_deadlocks)
            out["not_listed"] = report.cycles_not_listed
            out["at_least"] = bool(getattr(report, "cycles_not_listed_at_least", False))
            if step == "write":
                t, c = time.perf_counter(), time.process_time()
                files.write_report_file(report, "json", path)
                out["seconds"], out["cpu"] = time.perf_counter() - t, time.process_time() - c
                out["bytes"] = os.path.getsize(path)
    out["peak_mb"] = _peak_mb()
    return out


def _run(step: str, sites: int, edges: int, shape: str, path: str, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--one", step, str(sites), str(edges), shape, path]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"timeout": True}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _fmt_s(r: dict[str, Any], key: str, cpu: str, timeout: float) -> str:
    """Wall-clock seconds (CPU seconds of the process): on a loaded machine the second is the
    steadier."""
    if r.get("timeout"):
        return f"> {timeout:g} s"
    if "error" in r:
        return "error"
    return f"{r[key]:.2f} s ({r[cpu]:.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10k sites only")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds before a step is given up")
    ap.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated: " + ", ".join(SHAPES))
    ap.add_argument("--one", nargs=5, metavar=("STEP", "SITES", "EDGES", "SHAPE", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        step, sites, edges, shape, path = args.one
        print(json.dumps(_one(step, int(sites), int(edges), shape, path)))
        return
    import lockwatch

    print(f"lockwatch {getattr(lockwatch, '__version__', '?')} from {os.path.dirname(lockwatch.__file__)}, "
          f"Python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("seconds: wall clock (CPU seconds of the step's process)")
    print("| sites / edges | shape | analysis | findings (+ not listed) | JSON write | file | JSON read "
          "| base MB | peak MB write / read | load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    sizes = SIZES[:1] if args.quick else SIZES
    with tempfile.TemporaryDirectory() as tmp:
        for sites, edges in sizes:
            for shape in args.shapes.split(","):
                path = os.path.join(tmp, "report.json")
                a = _run("analysis", sites, edges, shape, path, args.timeout)
                w = _run("write", sites, edges, shape, path, args.timeout) if "analysis_s" in a else a
                r = _run("read", sites, edges, shape, path, args.timeout) if "bytes" in w else w
                found = "-"
                if "findings" in a:
                    more = f"{'≥' if a['at_least'] else ''}{a['not_listed']}"
                    found = f"{a['findings']} (+{more})"
                size = f"{w['bytes'] / 1e6:.1f} MB" if "bytes" in w else "-"
                peak = (f"{w.get('peak_mb', 0):.0f} / {r.get('peak_mb', 0):.0f}"
                        if "peak_mb" in w and "peak_mb" in r else "-")
                analysed = _fmt_s(a, 'analysis_s', 'analysis_cpu', args.timeout)
                print(f"| {sites // 1000}k / {edges // 1000}k | {shape} | {analysed} "
                      f"| {found} | {_fmt_s(w, 'seconds', 'cpu', args.timeout)} | {size} "
                      f"| {_fmt_s(r, 'seconds', 'cpu', args.timeout)} | {a.get('base_mb', 0):.0f} | {peak} "
                      f"| {os.getloadavg()[0]:.1f} |", flush=True)
                if os.path.exists(path):
                    os.unlink(path)


if __name__ == "__main__":
    main()
