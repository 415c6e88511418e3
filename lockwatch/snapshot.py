"""Plain-data snapshot of what the recorder saw: the input of analysis, saved and merged as JSON."""
from __future__ import annotations

import gc
import os
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from . import histogram
from .stacks import stable_path


@dataclass
class Timing:
    """A duration distribution: exact count, total and max; percentiles from the histogram."""

    count: int = 0
    total_ns: int = 0
    max_ns: int = 0
    buckets: list[int] = field(default_factory=histogram.new_counts)

    @property
    def mean_ns(self) -> float:
        return self.total_ns / self.count if self.count else 0.0

    def percentile_ns(self, q: float) -> int:
        return histogram.percentile(self.buckets, q, self.max_ns)

    def merge(self, other: "Timing") -> None:
        self.count += other.count
        self.total_ns += other.total_ns
        self.max_ns = max(self.max_ns, other.max_ns)
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets)]


@dataclass
class LockStats:
    """One creation site (a lock class, in lockdep's terms) and the totals of all its instances."""

    key: str  # "<file>:<line>:<kind>", unique within a report
    name: str
    kind: str
    filename: str
    line: int
    function: str
    named: bool = False  # name given with lockwatch.name(), not derived from the source line
    signal: bool = False  # a semaphore released by other threads than the acquirer: not a lock
    value: int = 0  # for semaphores: the largest initial value (permits)
    stdlib: bool = False  # created by the standard library
    stable_file: str = ""  # the file, machine-independent (stacks.stable_path), for fingerprints
    instances: int = 0
    acquisitions: int = 0
    contended: int = 0
    failed: int = 0
    hold: Timing = field(default_factory=Timing)
    wait: Timing = field(default_factory=Timing)

    @property
    def site(self) -> str:
        return f"{self.filename}:{self.line}"


@dataclass
class EdgeRecord:
    """Lock-order edge src -> dst: ``thread`` held src (taken at ``held_stack``) and blocked to
    take dst (at ``acquire_stack``). ``src``/``dst`` are LockStats keys; the instance serials
    are set for instance edges."""

    src: str
    dst: str
    thread: str
    held_stack: list[str]
    acquire_stack: list[str]
    count: int = 1
    timed: bool = False
    context: Optional[str] = None  # e.g. the pytest node id during which it was first seen
    src_instance: Optional[int] = None
    dst_instance: Optional[int] = None
    src_name: Optional[str] = None  # per-instance names given with lockwatch.name()
    dst_name: Optional[str] = None
    # Other locks held every time the edge was taken: their keys, and (parallel) instance serials.
    gates: list[str] = field(default_factory=list)
    gate_instances: list[int] = field(default_factory=list)
    thread_id: str = ""  # "<pid>:<ident>" of the first thread that took the edge
    multi: bool = False  # taken by more than one thread


@dataclass
class Snapshot:
    locks: list[LockStats] = field(default_factory=list)
    site_edges: list[EdgeRecord] = field(default_factory=list)
    instance_edges: list[EdgeRecord] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    internal_errors: list[str] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)  # declared-order violations

    def lock(self, key: str) -> Optional[LockStats]:
        for s in self.locks:
            if s.key == key:
                return s
        return None


def site_key(site: Any) -> str:
    return f"{site.filename}:{site.line}:{site.kind}"


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
            st = stats.get(site.index) if site is not None and site.epoch == state.epoch else None
            if st is None:
                continue  # from an earlier session (or a site made since the copy above)
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
        violations = [dict(v) for v in state.violations]
        started = state.started
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


def merge(snapshots: list[Snapshot]) -> Snapshot:
    """One snapshot from several (processes, test workers, runs). Locks are matched by creation
    site; site edges are united (the first record of an edge is kept, counts add up). Instance
    serials are per process, so each snapshot's instance edges stay among themselves: they are
    renumbered apart, and inversions across processes are found at site scope."""
    out = Snapshot(meta={"merged": len(snapshots), "sources": [s.meta for s in snapshots]})
    locks: dict[str, LockStats] = {}
    edges: dict[tuple[str, str], EdgeRecord] = {}
    offset = 0
    for snap in snapshots:
        for st in snap.locks:
            have = locks.get(st.key)
            if have is None:
                locks[st.key] = LockStats(**{**st.__dict__, "hold": Timing(**st.hold.__dict__),
                                             "wait": Timing(**st.wait.__dict__)})
                continue
            have.instances += st.instances
            have.acquisitions += st.acquisitions
            have.contended += st.contended
            have.failed += st.failed
            have.signal = have.signal or st.signal
            have.named = have.named or st.named
            have.hold.merge(st.hold)
            have.wait.merge(st.wait)
        top = max([i for e in snap.instance_edges for i in (e.src_instance or 0, e.dst_instance or 0)]
                  + [g for e in snap.site_edges for g in e.gate_instances] + [0])
        for e in snap.site_edges:
            have_e = edges.get((e.src, e.dst))
            if have_e is None:
                moved = EdgeRecord(**e.__dict__)
                moved.gate_instances = [g + offset for g in e.gate_instances]
                edges[(e.src, e.dst)] = moved
            else:
                have_e.count += e.count
                have_e.timed = have_e.timed and e.timed
                have_e.multi = have_e.multi or e.multi or have_e.thread_id != e.thread_id
                # a gate counts only if held every time: keep the ones both records have
                theirs = {(k, g + offset) for k, g in zip(e.gates, e.gate_instances)}
                kept = [(k, g) for k, g in zip(have_e.gates, have_e.gate_instances) if (k, g) in theirs]
                have_e.gates = [k for k, _g in kept]
                have_e.gate_instances = [g for _k, g in kept]
        for e in snap.instance_edges:
            moved = EdgeRecord(**e.__dict__)
            if e.src_instance is not None and e.dst_instance is not None:
                moved.src_instance = e.src_instance + offset
                moved.dst_instance = e.dst_instance + offset
            moved.gate_instances = [g + offset for g in e.gate_instances]
            out.instance_edges.append(moved)
        offset += top + 1
        out.internal_errors.extend(snap.internal_errors)
        out.violations.extend(snap.violations)
    out.locks = list(locks.values())
    out.site_edges = list(edges.values())
    return out
