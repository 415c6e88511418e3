"""Taking a snapshot: the recorder's state copied into the plain data of lockwatch.model."""
from __future__ import annotations

import os
import sys
import time
from typing import Any

from . import histogram, recorder
from .model import EdgeRecord, LockStats, Snapshot, Timing, Violation, merge
from .stacks import STDLIB_DIRS, stable_path

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
    # The recorder's registry of live instances: no walk of the heap, which may hold millions of
    # objects (and, in a forked child, would dirty its copy-on-write pages).
    from .recorder import live_instances

    return [o for o in live_instances() if isinstance(o, bases)]


def _site_edge(entry: list) -> EdgeRecord:
    """The site edge: its first instance edge, amended with what the dead instance edges of the
    same site pair told (recorder._fold_edge) as analysis amends it with the live ones."""
    rec = _edge(entry[0], False)
    if len(entry) < 3:
        return rec
    gates, timed, multi, thread_ids = entry[2]
    serials = {serial for serial, _site in gates}
    keep = [i for i, serial in enumerate(rec.gate_instances) if serial in serials]
    rec.gates = [rec.gates[i] for i in keep]
    rec.gate_instances = [rec.gate_instances[i] for i in keep]
    rec.timed = rec.timed and timed
    rec.multi = rec.multi or multi or len(thread_ids) > 1
    return rec


def _core_name() -> str:
    proxies = sys.modules.get("lockwatch.proxies")
    return str(getattr(proxies, "CORE", "python"))


def take(state: Any, mutex: Any, bases: tuple, live_stats: bool = True) -> Snapshot:
    """Copy the recorder's state into plain data. Live instances' counters are summed in; their
    sites already hold the totals of instances that died. ``live_stats=False`` skips visiting
    the live instances: the lock-order graph is complete, the counters are not."""
    live = _live_instances(bases) if live_stats else []
    with mutex:
        # Copies before iterating: program code (a finalizer at an allocation here) may add a
        # site or an edge meanwhile (see recorder.mutex).
        sites = list(state.sites.values())
        site_edge_list = list(state.site_edges.values())
        in_graph = {site_key(s) for entry in site_edge_list for s in (entry[0].src_site, entry[0].dst_site)}
        live_by_site: dict[int, list] = {}
        for lock in live:
            site = getattr(lock, "_site", None)
            if site is not None and site.epoch == state.epoch:  # not from an earlier session
                live_by_site.setdefault(site.index, []).append(lock)
        stats: dict[int, LockStats] = {}
        for site in sites:
            mine = live_by_site.get(site.index, ())
            # Only the locks that were used: modules create many they never take in a given run.
            # Left out before their names, paths and histograms are worked out (a site's name
            # parses its source line).
            if not (site.acquisitions or site.failed or any(lock._n or lock._nfail for lock in mine)
                    or site_key(site) in in_graph):
                continue
            st = LockStats(
                key=site_key(site), name=site.display_name(), kind=site.kind,
                filename=site.filename, line=site.line, function=site.function,
                named=site.explicit_name is not None, signal=site.signal,
                value=site.sem_value, stdlib=is_stdlib(site.filename),
                stable_file=stable_path(site.filename),
                instances=site.instances,
                acquisitions=site.acquisitions, contended=site.contended, failed=site.failed,
            )
            hold_total, hold_max = site.hold_totals()
            st.hold = Timing(0, hold_total, hold_max, site.hold_counts())
            st.wait = Timing(0, site.wait_total, site.wait_max, histogram.read_counters(site.wait_hist))
            for lock in mine:  # live instances' counters are summed in
                st.acquisitions += lock._n
                st.contended += lock._ncont
                st.failed += lock._nfail
                st.hold.total_ns += lock._hold_tot
                st.wait.total_ns += lock._wait_tot
                st.hold.max_ns = max(st.hold.max_ns, lock._hold_max)
                st.wait.max_ns = max(st.wait.max_ns, lock._wait_max)
            st.hold.count = sum(st.hold.buckets.values())
            st.wait.count = sum(st.wait.buckets.values())
            stats[site.index] = st
        site_edges = [_site_edge(entry) for entry in site_edge_list]
        seen: set[tuple[int, int]] = set()
        instance_edges = []
        for owner in recorder.edge_owners(state):
            for e in list((owner._in or {}).values()):
                seen.add((e.src_serial, e.dst_serial))
                instance_edges.append(_edge(e, True))
        for key, e in dict(state.kept_edges).items():  # dict(): copied without allocating per item
            if key not in seen:
                instance_edges.append(_edge(e, True))
        errors = list(state.internal_errors)
        raw_violations = [dict(v) for v in state.violations]
        started = state.started
    # In creation order of their ends, not in the order of a weak set (ids): the same program gives
    # the same report (both cores, every run).
    instance_edges.sort(key=lambda e: (e.src_instance or 0, e.dst_instance or 0))
    violations = [Violation.from_dict(v, "violation", "the recorder") for v in raw_violations]
    meta = {
        "python": sys.version.split()[0],
        "implementation": sys.implementation.name,
        "core": _core_name(),  # which hot path recorded it: "c" (lockwatch._core) or "python"
        "pid": os.getpid(),
        "argv": list(sys.argv),
        "started": started,
        "duration_s": round(time.time() - started, 6),
    }
    snap = Snapshot(locks=[stats[i] for i in sorted(stats)], site_edges=site_edges,
                    instance_edges=instance_edges, meta=meta, internal_errors=errors,
                    violations=violations)
    waits = sys.modules.get("lockwatch.waits")
    if waits is not None:  # edges through joins, Events, Queues, Futures (waits.py)
        try:
            waits.add_to_snapshot(snap)
        except Exception as exc:
            snap.internal_errors.append(f"waits: {type(exc).__name__}: {exc}")
    return snap


_STDLIB_DIRS = STDLIB_DIRS


def is_stdlib(filename: str) -> bool:
    """Created by the standard library (not site-packages, not the program)."""
    if filename.startswith("<frozen"):
        return True
    path = os.path.abspath(filename)
    return path.startswith(_STDLIB_DIRS) and "site-packages" not in path and "dist-packages" not in path
