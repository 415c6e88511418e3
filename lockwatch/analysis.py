"""Findings from a snapshot: potential deadlocks (cycles of the lock-order graph) and contention."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple, Optional

from .cycles import Budget, find_cycles
from .cycles import Graph as _Graph
from .model import (
    FAILING,
    SEVERITY,
    Alert,
    BaselineEntry,
    Deadlock,
    EdgeRecord,
    LockRef,
    LockStats,
    PotentialDeadlock,
    Report,
    SavedReport,
    Snapshot,
    canonical_rotation,
    cycle_id,
    merge,
)
from .stacks import stable_path

try:  # the built-in SHA-1, which hashlib.sha1 falls back to: the same digests, without importing
    #  hashlib and OpenSSL's _hashlib (~5 % of an empty run's instructions under the CLI or in a child)
    from _sha1 import sha1 as _sha1  # type: ignore[import-not-found]
except ImportError:  # a build without it
    from hashlib import sha1 as _sha1

__all__ = ["FAILING", "SEVERITY", "LockRef", "PotentialDeadlock", "Report", "analyze", "apply_policy",
           "build_report", "canonical_rotation", "fingerprint", "stable_site", "triage"]

# A dense strongly connected component has exponentially many simple cycles: list the shortest
# ones first and stop at this many per component (the rest are counted, not listed; the search
# itself is bounded: lockwatch.cycles).
MAX_CYCLES_PER_COMPONENT = 50


def stable_site(stats: Optional[LockStats], key: str) -> str:
    """A site identity that is the same on every machine, run and Python version: the path
    relative to the project (or to the import root), the creating function and the lock's name
    (the variable it is assigned to, or a name given with lockwatch.name()), so that editing lines
    above it does not change it; the line only when the lock has no name. Never serials or ids."""
    if stats is None:
        return key
    unnamed = stats.name.startswith(f"{stats.kind}@")
    where = stats.stable_file or stable_path(stats.filename)  # as recorded, where the file was
    # A derived name's class prefix ("Account._lock") is left out: fingerprints, and so the
    # baselines and suppressions written before names carried their class, stay the same.
    name = stats.name if stats.named else stats.name.rsplit(".", 1)[-1]
    return f"{where}:{stats.function}:{stats.line if unnamed else name}:{stats.kind}"


def fingerprint(site_ids: Sequence[str]) -> str:
    """Stable id of a cycle: the same whichever lock the cycle is read from."""
    rot = canonical_rotation(list(site_ids))
    # surrogatepass: a path with undecodable bytes (or a report's lone surrogate) has a
    # fingerprint too; every other string encodes as before.
    return _sha1("\n".join(rot).encode("utf-8", "surrogatepass")).hexdigest()[:12]


def analyze(snapshot: Snapshot, cap: int = MAX_CYCLES_PER_COMPONENT, budget: Optional[Budget] = None) -> Report:
    """The findings of ``snapshot``. The cycle search of both graphs shares ``budget`` (by
    default lockwatch.cycles' step and time budgets): what it does not list is counted in
    ``cycles_not_listed``, as a lower bound when ``cycles_not_listed_at_least`` is set."""
    budget = budget if budget is not None else Budget()
    stats = {s.key: s for s in snapshot.locks}
    report = Report(snapshot=snapshot)
    # A semaphore released by other threads than its acquirers is a signal: holding it is not
    # holding a lock, so edges out of it are not lock-order edges (waiting *on* it still is).
    signals = {s.key for s in snapshot.locks if s.signal}

    # Instance scope: these exact lock objects were taken in both orders. Only the graph is
    # built for every edge (a report can have a million): what a finding names of its edges and
    # instances is looked up when there is a cycle (``instances``).
    ig = _Graph()
    iadj = ig.adj
    for e in snapshot.instance_edges:
        u, v = e.src_instance, e.dst_instance
        if u is None or v is None or (signals and e.src in signals):
            continue
        succ = iadj.get(u)
        if succ is None:
            succ = iadj[u] = {}
        succ[v] = None
        if v not in iadj:
            iadj[v] = {}  # (Graph.add_edge, inline)
    tables: list[_InstanceTables] = []

    def instances() -> _InstanceTables:
        if not tables:
            tables.append(_InstanceTables.of(snapshot.instance_edges, signals))
        return tables[0]

    listing = find_cycles(ig, cap, budget)
    cycles = listing.cycles
    inst_skipped = listing.not_listed > 0 or listing.at_least
    report.cycles_not_listed += listing.not_listed
    report.cycles_not_listed_at_least = report.cycles_not_listed_at_least or listing.at_least
    by_fp: dict[str, PotentialDeadlock] = {}

    def instance_finding(cyc: list[int], fp: str) -> PotentialDeadlock:
        iedges, inst_key, inst_name = instances()
        locks = [_ref(stats, inst_key[i], i, inst_name.get(i)) for i in cyc]
        # Instances of one site share a name: tell them apart in words, numbered within the
        # cycle by creation order ("Account._lock (instance 2)"), never by a global serial.
        by_name: dict[str, list[LockRef]] = {}
        for lk in locks:
            by_name.setdefault(lk.name, []).append(lk)
        for name, same in by_name.items():
            if len(same) > 1:
                for k, lk in enumerate(sorted(same, key=lambda lk: lk.instance or 0), 1):
                    lk.name = f"{name} (instance {k})"
        edges = [iedges[(cyc[k], cyc[(k + 1) % len(cyc)])] for k in range(len(cyc))]
        return PotentialDeadlock("instance", locks, edges, fp)

    # A longer way round the same sites is the same bug: with account locks 1..5 taken in order
    # and 5 then 1 taken elsewhere, 1->5->1 is the finding and 1->3->5->1 one more occurrence.
    # Shortest first over all components, so the finding is the shortest such cycle.
    by_site_set: dict[frozenset, str] = {}
    for cyc in sorted(cycles, key=len):
        cyc = canonical_rotation(cyc)
        inst_key = instances().key
        sites = [stable_site(stats.get(inst_key[i]), inst_key[i]) for i in cyc]
        fp = fingerprint(sites)
        if fp not in by_fp:
            shorter = by_site_set.get(frozenset(sites))
            if shorter is not None and len(by_fp[shorter].locks) < len(cyc):
                fp = shorter  # (of equal length, A->B->C and A->C->B are two orders: two bugs)
        if fp in by_fp:
            by_fp[fp].occurrences += 1
            continue
        by_fp[fp] = instance_finding(cyc, fp)
        by_site_set.setdefault(frozenset(sites), fp)

    # Site scope: locks created at these sites were taken in both orders, though the instances
    # never met (lockdep's lock classes). Same-site nesting (a self-loop) is left to the instance
    # graph: instances of one site taken in a consistent order are not a cycle.
    sg = _Graph()
    sadj = sg.adj
    for e in snapshot.site_edges:
        src, dst = e.src, e.dst
        if src == dst or (signals and src in signals):
            continue
        succ = sadj.get(src)
        if succ is None:
            succ = sadj[src] = {}
        succ[dst] = None
        if dst not in sadj:
            sadj[dst] = {}
    listing = find_cycles(sg, cap, budget)
    cycles = listing.cycles
    report.cycles_not_listed += listing.not_listed
    report.cycles_not_listed_at_least = report.cycles_not_listed_at_least or listing.at_least
    by_site: dict[str, list[int]] = {}
    if inst_skipped:  # instance cycles went unlisted: a site cycle may be one of them
        for i, k in instances().key.items():
            by_site.setdefault(k, []).append(i)
    sedges = _site_edges(snapshot, signals, cycles)
    for cyc in cycles:
        sites = [stable_site(stats.get(k), k) for k in cyc]
        fp = fingerprint(sites)
        if fp in by_fp:
            continue
        lifted = _instance_cycle(cyc, ig, instances().key, by_site) if by_site else None
        if lifted is not None:  # these very objects were taken in this order: not "site"
            by_fp[fp] = instance_finding(canonical_rotation(lifted), fp)
            continue
        cyc = _rotate_like(cyc, sites)
        locks = [_ref(stats, k, None, None) for k in cyc]
        edges = [sedges[(cyc[k], cyc[(k + 1) % len(cyc)])] for k in range(len(cyc))]
        by_fp[fp] = PotentialDeadlock("site", locks, edges, fp)

    for p in by_fp.values():
        triage(p, stats)
    if snapshot.pool_waits:  # thread pools whose tasks wait on their own futures (waitfindings)
        from .waitfindings import pool_findings

        for p in pool_findings(snapshot, fingerprint):
            by_fp.setdefault(p.fingerprint, p)
    report.potential_deadlocks = sorted(by_fp.values(), key=_order)
    return report


class _InstanceTables(NamedTuple):
    """What the instance edges say of each edge and instance (the last edge of a pair is the
    one a finding shows; an instance's name is the first one given)."""

    edges: dict[tuple[int, int], EdgeRecord]
    key: dict[int, str]  # instance -> its site's key
    name: dict[int, Optional[str]]

    @classmethod
    def of(cls, instance_edges: list[EdgeRecord], signals: set[str]) -> _InstanceTables:
        edges: dict[tuple[int, int], EdgeRecord] = {}
        key: dict[int, str] = {}
        name: dict[int, Optional[str]] = {}
        for e in instance_edges:
            if e.src_instance is None or e.dst_instance is None or e.src in signals:
                continue
            edges[(e.src_instance, e.dst_instance)] = e
            key[e.src_instance], key[e.dst_instance] = e.src, e.dst
            name.setdefault(e.src_instance, e.src_name)
            name.setdefault(e.dst_instance, e.dst_name)
        return cls(edges, key, name)


def _site_edges(snapshot: Snapshot, signals: set[str], cycles: list[list[str]]) -> dict[tuple[str, str], EdgeRecord]:
    """The site edges ``cycles`` go through, each made to stand for its instance edges
    (``_site_wide``; the last record of a pair, as the graph has it)."""
    pairs = {(cyc[k], cyc[(k + 1) % len(cyc)]) for cyc in cycles for k in range(len(cyc))}
    if not pairs:
        return {}
    srcs = {u for u, _v in pairs}
    found: dict[tuple[str, str], EdgeRecord] = {}
    for e in snapshot.site_edges:
        if e.src in srcs and e.src != e.dst and e.src not in signals and (e.src, e.dst) in pairs:
            found[(e.src, e.dst)] = e
    by_pair: dict[tuple[str, str], list[EdgeRecord]] = {}
    for e in snapshot.instance_edges:
        if e.src in srcs and (e.src, e.dst) in pairs:
            by_pair.setdefault((e.src, e.dst), []).append(e)
    return {pair: _site_wide(e, by_pair.get(pair, ())) for pair, e in found.items()}


def _site_wide(e: EdgeRecord, instances: Iterable[EdgeRecord]) -> EdgeRecord:
    """The site edge ``e`` (recorded as its first instance edge) made to stand for every instance
    edge between the same sites that the snapshot still has: a gate counts only if it was held on
    all of them, the edge is timed only if all of them were, and taken by several threads if any
    was (as merge() does across snapshots). A copy: the snapshot is left as it was."""
    # (The common case, one instance edge that agrees with its site edge, allocates nothing.)
    gates: Optional[list[tuple[str, int]]] = None
    timed, multi = e.timed, e.multi
    for i in instances:
        if e.gates and (gates is None or gates):
            theirs = set(zip(i.gates, i.gate_instances))
            gates = [g for g in (zip(e.gates, e.gate_instances) if gates is None else gates) if g in theirs]
        timed = timed and i.timed
        multi = multi or i.multi or i.thread_id != e.thread_id
    if (gates is None or len(gates) == len(e.gates)) and timed == e.timed and multi == e.multi:
        return e
    if gates is None:
        gates = list(zip(e.gates, e.gate_instances))
    return replace(e, gates=[k for k, _g in gates], gate_instances=[g for _k, g in gates],
                   timed=timed, multi=multi)


def _order(p: PotentialDeadlock) -> tuple:
    # Failing risks first, most severe first; then instance findings (definite) before site ones;
    # then by size: a 2-lock inversion is the clearest.
    return (not p.fails, p.origin != "user", SEVERITY.index(p.triage), p.scope != "instance",
            len(p.locks), p.fingerprint)


def triage(p: PotentialDeadlock, stats: dict[str, LockStats]) -> None:
    """Say how sure a potential deadlock is and why (never from whether its threads overlapped
    in time: finding inversions between code paths that ran separately is the point)."""
    labels: list[str] = []
    reasons: list[str] = []
    in_cycle = {lk.key for lk in p.locks}
    # guarded: one other lock (the same object) was held around every edge, every time.
    common: Optional[set[int]] = None
    for e in p.edges:
        gates = set(e.gate_instances)
        common = gates if common is None else common & gates
    gate_keys = {g for e in p.edges for g in e.gates} - in_cycle
    if common:
        serial = min(common)
        gate_key = next((g for e in p.edges for g, i in zip(e.gates, e.gate_instances) if i == serial), None)
        if gate_key is None:
            gate_key = min(gate_keys) if gate_keys else ""
        p.gate = stats[gate_key].name if gate_key in stats else (gate_key or f"instance #{serial}")
        labels.append("guarded")
        reasons.append(f"guarded: every edge was taken while holding {p.gate}, so the threads "
                       f"cannot deadlock on this cycle while that discipline holds")
    if any(e.timed for e in p.edges):
        labels.append("timed")
        timed = [f"{p.locks[(k + 1) % len(p.locks)].name}" for k, e in enumerate(p.edges) if e.timed]
        reasons.append(f"timed: the cycle closes only through a timed acquire of {', '.join(timed)}: "
                       "a stall of at most the timeout, not a hang")
    sems = [lk for lk in p.locks if lk.kind in ("Semaphore", "BoundedSemaphore")
            and stats.get(lk.key) is not None and stats[lk.key].value > 1]
    if sems:
        labels.append("semaphore")
        what = ", ".join(f"{lk.name} (value {stats[lk.key].value})" for lk in sems)
        reasons.append(f"semaphore: the cycle runs through {what}: it blocks only when every "
                       "permit is taken by threads waiting in this cycle")
    ids = {e.thread_id for e in p.edges}
    if len(ids) == 1 and "" not in ids and not any(e.multi for e in p.edges):
        labels.append("single-thread")
        reasons.append(f"single-thread: every edge was taken by thread {p.edges[0].thread!r} so far; "
                       "it is still an inversion, and deadlocks as soon as two threads run these paths")
    p.triage = max(labels, key=SEVERITY.index) if labels else "deadlock"
    if not labels:
        reasons.append("deadlock: threads holding these locks can each wait forever for the next")
    p.reasons = reasons
    if all(stats.get(lk.key) is not None and stats[lk.key].stdlib for lk in p.locks):
        p.origin = "stdlib"


def build_report(snapshots: Sequence[Snapshot], *, deadlocks: Iterable[Deadlock] = (),
                 alerts: Iterable[Alert] = (), suppressions: Sequence[Any] = (),
                 baseline: Optional[Mapping[str, BaselineEntry]] = None,
                 saved: Sequence[SavedReport] = ()) -> Report:
    """The one way from recorded data to a report: merge the snapshots (processes, workers, saved
    reports) by creation site, analyse the union, add the watchdog's findings, carry over the
    suppressed and known marks of ``saved`` reports (and the baseline cycles they no longer saw),
    then apply the project's suppressions and baseline."""
    snap = snapshots[0] if len(snapshots) == 1 else merge(snapshots)
    report = analyze(snap)
    report.deadlocks = list(deadlocks)
    report.alerts = list(alerts)
    if saved:
        for p in report.potential_deadlocks:
            ids = (p.fingerprint, cycle_id([lk.key for lk in p.locks]))
            for s in saved:
                for ident in ids:
                    if ident in s.suppressed and p.suppressed is None:
                        p.suppressed = s.suppressed[ident]
                    if ident in s.known:
                        p.known = True
                    if ident in s.confirmations and p.confirmation is None:
                        p.confirmation = s.confirmations[ident]
        seen = {p.fingerprint for p in report.potential_deadlocks}
        gone: dict[str, BaselineEntry] = {}
        for s in saved:
            for entry in s.baseline_gone:
                if entry.fingerprint not in seen:
                    gone.setdefault(entry.fingerprint, entry)
        report.baseline_gone = list(gone.values())
    report = apply_policy(report, suppressions, baseline)  # sorts: suppressed and known ones last
    if saved and not suppressions:
        # the saved runs' own list: an entry that matched nothing in every one of them
        unused = [u for u in saved[0].unused_suppressions
                  if all(u in s.unused_suppressions for s in saved[1:])]
        report.unused_suppressions = unused
    return report


def apply_policy(report: Report, suppressions: Sequence[Any] = (),
                 baseline: Optional[Mapping[str, BaselineEntry]] = None) -> Report:
    """Mark suppressed and baseline-known findings (they stay in the report, counted), and list
    the baseline's cycles that were not seen this time."""
    used: set[int] = set()
    for p in report.potential_deadlocks:
        sites = [lk.site for lk in p.locks]
        for k, sup in enumerate(suppressions):
            if sup.matches(p.fingerprint, sites):
                used.add(k)
                if p.suppressed is None:
                    p.suppressed = sup.reason  # the first entry that matches gives the reason
        if baseline is not None and p.fingerprint in baseline:
            p.known = True
    # An entry that matched nothing: its cycle is fixed (or was not run), or its pattern is wrong.
    report.unused_suppressions = [sup.describe() for k, sup in enumerate(suppressions) if k not in used]
    if baseline is not None:
        seen = {p.fingerprint for p in report.potential_deadlocks}
        report.baseline_gone = [entry for fp, entry in sorted(baseline.items()) if fp not in seen]
    report.potential_deadlocks.sort(key=_order)
    return report


def _instance_cycle(site_cycle: list[str], graph: _Graph, inst_key: dict[int, str],
                    by_site: dict[str, list[int]]) -> Optional[list[int]]:
    """A cycle of instances created at ``site_cycle``'s sites, in its order, or None. The sites
    of a simple cycle are distinct, so each layer of the search holds instances of one site."""
    for start in by_site.get(site_cycle[0], ()):
        layers: list[dict[int, int]] = [{start: start}]  # instance -> its predecessor
        for want in site_cycle[1:]:
            layer: dict[int, int] = {}
            for node in layers[-1]:
                for nxt in graph.successors(node):
                    if inst_key[nxt] == want and nxt not in layer:
                        layer[nxt] = node
            if not layer:
                break
            layers.append(layer)
        else:
            for last in layers[-1]:
                if graph.has_edge(last, start):
                    cyc = [last]
                    for j in range(len(layers) - 1, 0, -1):
                        cyc.append(layers[j][cyc[-1]])
                    return cyc[::-1]
    return None


def _rotate_like(cyc: list[str], sites: list[str]) -> list[str]:
    rot = canonical_rotation(list(sites))
    for i in range(len(cyc)):
        if sites[i:] + sites[:i] == rot:
            return cyc[i:] + cyc[:i]
    return cyc


def _ref(stats: dict[str, LockStats], key: str, instance: Optional[int], name: Optional[str]) -> LockRef:
    s = stats.get(key)
    if s is None:  # a key from another report (merging): derive what can be derived
        filename, _, rest = key.rpartition(":")
        filename, _, line = filename.rpartition(":")
        return LockRef(key, name or key, rest, filename, int(line or 0), instance)
    return LockRef(key, name or s.name, s.kind, s.filename, s.line, instance)


def lock_refs(items: Iterable[PotentialDeadlock]) -> set[str]:
    return {lock.key for p in items for lock in p.locks}
