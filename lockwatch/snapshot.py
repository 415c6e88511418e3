"""Taking a snapshot: the recorder's state copied into the plain data of lockwatch.model."""
from __future__ import annotations

import gc
import os
import sys
import sysconfig
import time
from typing import Any

from . import histogram
from .model import EdgeRecord, LockStats, Snapshot, Timing, Violation, merge
from .stacks import stable_path

__all__ = ["EdgeRecord", "LockStats", "Snapshot", "Timing", "merge", "take", "is_stdlib", "site_key"]


def site_key(site: Any) -> str:
    return str(site.key)


def _edge(e: Any, instance: bool) -> EdgeRecord:
    return EdgeRecord(
        src=site_key(e.src_site), dst=site_key(e.dst_site), thread=e.thread,
        held_stack=list(e.held_stack), acquire_stack=list(e.acquire_stack), count=e.count,
        timed=e.timed, context=e.context,
        src_instance=e.src_serial if instance else None,
        dst_instance=e.dst_serial if instance else None,
        src_name=e.src_name, dst_name=e.dst_name,
        # parallel lists: gate_instances[i] is an instance of the lock created at gates[i]
        gates=[site_key(site) for _serial, site in sorted(e.gates, key=lambda g: g[0])],
        gate_instances=[serial for serial, _site in sorted(e.gates, key=lambda g: g[0])],
        thread_id=e.thread_id, multi=e.multi,
    )


def _live_instances(bases: tuple) -> list:
    # One MRO test per type, not per object: the heap may hold millions of objects.
    verdict: dict[type, bool] = {}
    out = []
    for o in gc.get_objects():
        t = type(o)
        ok = verdict.get(t)
        if ok is None:
            ok = verdict[t] = any(b in t.__mro__ for b in bases)
        if ok:
            out.append(o)
    return out


def take(state: Any, mutex: Any, bases: tuple, live_stats: bool = True) -> Snapshot:
    """Copy the recorder's state into plain data. Live instances' counters are summed in; their
    sites already hold the totals of instances that died. ``live_stats=False`` skips the heap
    walk that finds live instances: the lock-order graph is complete, the counters are not."""
    live = _live_instances(bases) if live_stats else []
    with mutex:
        stats: dict[int, LockStats] = {}
        # Copies before iterating: program code (a finalizer at an allocation here) may add a
        # site or an edge meanwhile (see recorder.mutex).
        for site in list(state.sites.values()):
            st = LockStats(
                key=site_key(site), name=site.display_name(), kind=site.kind,
                filename=site.filename, line=site.line, function=site.function,
                named=site.explicit_name is not None, signal=site.signal,
                value=site.sem_value, stdlib=is_stdlib(site.filename),
                stable_file=stable_path(site.filename),
                instances=site.instances,
                acquisitions=site.acquisitions, contended=site.contended, failed=site.failed,
            )
            st.hold = Timing(0, site.hold_total, site.hold_max, histogram.read_counters(site.hold_hist))
            st.wait = Timing(0, site.wait_total, site.wait_max, histogram.read_counters(site.wait_hist))
            stats[site.index] = st
        for lock in live:
            site = getattr(lock, "_site", None)
            live_st = stats.get(site.index) if site is not None and site.epoch == state.epoch else None
            if live_st is None:
                continue  # from an earlier session (or a site made since the copy above)
            st = live_st
            st.acquisitions += lock._n
            st.contended += lock._ncont
            st.failed += lock._nfail
            st.hold.total_ns += lock._hold_tot
            st.wait.total_ns += lock._wait_tot
            st.hold.max_ns = max(st.hold.max_ns, lock._hold_max)
            st.wait.max_ns = max(st.wait.max_ns, lock._wait_max)
        for st in stats.values():
            st.hold.count = sum(st.hold.buckets)
            st.wait.count = sum(st.wait.buckets)
        site_edge_list = list(state.site_edges.values())
        in_graph = {site_key(s) for first, _pairs in site_edge_list for s in (first.src_site, first.dst_site)}
        # Only the locks that were used: modules create many they never take in a given run.
        for index in [i for i, st in stats.items()
                      if not (st.acquisitions or st.failed or st.key in in_graph)]:
            del stats[index]
        site_edges = [_edge(first, False) for first, _pairs in site_edge_list]
        seen: set[tuple[int, int]] = set()
        instance_edges = []
        for owner in list(state.edge_owners):
            for e in list((owner._in or {}).values()):
                seen.add((e.src_serial, e.dst_serial))
                instance_edges.append(_edge(e, True))
        for key, e in dict(state.kept_edges).items():  # dict(): copied without allocating per item
            if key not in seen:
                instance_edges.append(_edge(e, True))
        errors = list(state.internal_errors)
        raw_violations = [dict(v) for v in state.violations]
        started = state.started
    violations = [Violation.from_dict(v, "violation", "the recorder") for v in raw_violations]
    meta = {
        "python": sys.version.split()[0],
        "implementation": sys.implementation.name,
        "pid": os.getpid(),
        "argv": list(sys.argv),
        "started": started,
        "duration_s": round(time.time() - started, 6),
    }
    return Snapshot(locks=[stats[i] for i in sorted(stats)], site_edges=site_edges,
                    instance_edges=instance_edges, meta=meta, internal_errors=errors,
                    violations=violations)


def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple({os.path.abspath(paths[k]) + os.sep for k in ("stdlib", "platstdlib") if k in paths})


# Found at import, not at the first snapshot: importing then (sysconfig and its _sysconfigdata
# module) could be cut short by a fork in another thread, and the child waited forever for the
# half-imported module's lock when it took its own snapshot (its report at exit).
_STDLIB_DIRS = _stdlib_dirs()


def is_stdlib(filename: str) -> bool:
    """Created by the standard library (not site-packages, not the program)."""
    if filename.startswith("<frozen"):
        return True
    path = os.path.abspath(filename)
    return path.startswith(_STDLIB_DIRS) and "site-packages" not in path and "dist-packages" not in path
