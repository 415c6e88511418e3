"""Findings from a snapshot: potential deadlocks (cycles of the lock-order graph) and contention."""
from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional, Sequence

from .snapshot import EdgeRecord, LockStats, Snapshot
from .stacks import stable_path

# A dense strongly connected component has exponentially many simple cycles: enumerate the
# shortest ones first and stop at this many per component (the rest are counted, not listed).
MAX_CYCLES_PER_COMPONENT = 50


@dataclass
class LockRef:
    key: str
    name: str
    kind: str
    filename: str
    line: int
    instance: Optional[int] = None

    @property
    def site(self) -> str:
        return f"{self.filename}:{self.line}"


@dataclass
class PotentialDeadlock:
    """A cycle of the lock-order graph. ``edges[i]`` goes from ``locks[i]`` to ``locks[i+1]``
    (the last back to the first). ``scope`` is "instance" when these very lock objects were taken
    in both orders, "site" when only locks created at these sites were (lockdep's lock classes)."""

    scope: str
    locks: list[LockRef]
    edges: list[EdgeRecord]
    fingerprint: str
    occurrences: int = 1  # instance cycles of the same shape (e.g. many account pairs)

    @property
    def threads(self) -> list[str]:
        return sorted({e.thread for e in self.edges})


@dataclass
class Report:
    snapshot: Snapshot
    potential_deadlocks: list[PotentialDeadlock] = field(default_factory=list)
    deadlocks: list[dict[str, Any]] = field(default_factory=list)  # seen by the watchdog
    alerts: list[dict[str, Any]] = field(default_factory=list)  # long holds and waits
    cycles_not_listed: int = 0

    def most_contended(self, n: int = 5) -> list[LockStats]:
        rows = [s for s in self.snapshot.locks if s.contended]
        rows.sort(key=lambda s: (s.wait.total_ns, s.contended), reverse=True)
        return rows[:n]

    def longest_held(self, n: int = 5) -> list[LockStats]:
        rows = [s for s in self.snapshot.locks if s.hold.count and not s.signal]
        rows.sort(key=lambda s: (s.hold.max_ns, s.hold.total_ns), reverse=True)
        return rows[:n]


def stable_site(stats: Optional[LockStats], key: str) -> str:
    """A site identity that is the same on every machine and run: path relative to its import
    root, line and kind (never serials or ids)."""
    if stats is None:
        return key
    return f"{stable_path(stats.filename)}:{stats.line}:{stats.kind}"


def fingerprint(site_ids: Sequence[str]) -> str:
    """Stable id of a cycle: the same whichever lock the cycle is read from."""
    rot = canonical_rotation(list(site_ids))
    return hashlib.sha1("\n".join(rot).encode()).hexdigest()[:12]


def canonical_rotation(seq: list[Any]) -> list[Any]:
    if not seq:
        return seq
    best = min(range(len(seq)), key=lambda i: seq[i:] + seq[:i])
    return seq[best:] + seq[:best]


def _cycles(graph: Any, cap: int) -> tuple[list[list[Any]], int]:
    """Simple cycles of ``graph``, shortest first, at most ``cap`` per non-trivial strongly
    connected component (networkx's find_cycle is quadratic on large acyclic graphs; SCCs are
    linear, so cycles are looked for only inside them). Returns (cycles, number not listed)."""
    import networkx as nx

    found: list[list[Any]] = []
    skipped = 0
    for comp in nx.strongly_connected_components(graph):
        if len(comp) < 2:
            continue
        sub = graph.subgraph(comp)
        cycles = list(itertools.islice(_shortest_cycles_first(nx, sub, len(comp)), cap + 1))
        if len(cycles) > cap:
            skipped += 1  # at least one more; exact counts can be exponential
            cycles = cycles[:cap]
        found.extend(cycles)
    return found, skipped


SHORT_CYCLE = 8  # cycles up to this length are listed shortest first; longer ones as found


def _shortest_cycles_first(nx: Any, sub: Any, size: int) -> Iterator[list[Any]]:
    longest = min(size, SHORT_CYCLE)
    try:
        for bound in range(2, longest + 1):
            for c in nx.simple_cycles(sub, length_bound=bound):
                if len(c) == bound:
                    yield c
    except TypeError:  # networkx < 3.1 has no length_bound
        yield from nx.simple_cycles(sub)
        return
    if size > longest:
        for c in nx.simple_cycles(sub):
            if len(c) > longest:
                yield c


def analyze(snapshot: Snapshot, cap: int = MAX_CYCLES_PER_COMPONENT) -> Report:
    import networkx as nx

    stats = {s.key: s for s in snapshot.locks}
    report = Report(snapshot=snapshot)
    # A semaphore released by other threads than its acquirers is a signal: holding it is not
    # holding a lock, so edges out of it are not lock-order edges (waiting *on* it still is).
    signals = {s.key for s in snapshot.locks if s.signal}
    covered: set[str] = set()

    # Instance scope: these exact lock objects were taken in both orders.
    ig = nx.DiGraph()
    iedges: dict[tuple[int, int], EdgeRecord] = {}
    inst_key: dict[int, str] = {}
    inst_name: dict[int, Optional[str]] = {}
    for e in snapshot.instance_edges:
        if e.src_instance is None or e.dst_instance is None or e.src in signals:
            continue
        iedges[(e.src_instance, e.dst_instance)] = e
        ig.add_edge(e.src_instance, e.dst_instance)
        inst_key[e.src_instance], inst_key[e.dst_instance] = e.src, e.dst
        inst_name.setdefault(e.src_instance, e.src_name)
        inst_name.setdefault(e.dst_instance, e.dst_name)
    cycles, inst_skipped = _cycles(ig, cap)
    report.cycles_not_listed += inst_skipped
    by_fp: dict[str, PotentialDeadlock] = {}

    def instance_finding(cyc: list[int], fp: str) -> PotentialDeadlock:
        locks = [_ref(stats, inst_key[i], i, inst_name.get(i)) for i in cyc]
        names = [lk.name for lk in locks]
        for lk in locks:  # instances of one site share a name: tell them apart
            if names.count(lk.name) > 1:
                lk.name = f"{lk.name}#{lk.instance}"
        edges = [iedges[(cyc[k], cyc[(k + 1) % len(cyc)])] for k in range(len(cyc))]
        return PotentialDeadlock("instance", locks, edges, fp)

    for cyc in cycles:
        cyc = canonical_rotation(cyc)
        sites = [stable_site(stats.get(inst_key[i]), inst_key[i]) for i in cyc]
        fp = fingerprint(sites)
        if fp in by_fp:
            by_fp[fp].occurrences += 1
            continue
        by_fp[fp] = instance_finding(cyc, fp)
        covered.add(fp)

    # Site scope: locks created at these sites were taken in both orders, though the instances
    # never met (lockdep's lock classes). Same-site nesting (a self-loop) is left to the instance
    # graph: instances of one site taken in a consistent order are not a cycle.
    sg = nx.DiGraph()
    sedges: dict[tuple[str, str], EdgeRecord] = {}
    for e in snapshot.site_edges:
        if e.src == e.dst or e.src in signals:
            continue
        sedges[(e.src, e.dst)] = e
        sg.add_edge(e.src, e.dst)
    cycles, skipped = _cycles(sg, cap)
    report.cycles_not_listed += skipped
    by_site: dict[str, list[int]] = {}
    if inst_skipped:  # instance cycles went unlisted: a site cycle may be one of them
        for i, k in inst_key.items():
            by_site.setdefault(k, []).append(i)
    for cyc in cycles:
        sites = [stable_site(stats.get(k), k) for k in cyc]
        fp = fingerprint(sites)
        if fp in by_fp:
            continue
        lifted = _instance_cycle(cyc, ig, inst_key, by_site) if by_site else None
        if lifted is not None:  # these very objects were taken in this order: not "site"
            by_fp[fp] = instance_finding(canonical_rotation(lifted), fp)
            continue
        cyc = _rotate_like(cyc, sites)
        locks = [_ref(stats, k, None, None) for k in cyc]
        edges = [sedges[(cyc[k], cyc[(k + 1) % len(cyc)])] for k in range(len(cyc))]
        by_fp[fp] = PotentialDeadlock("site", locks, edges, fp)

    # Instance findings first (definite), then by size: a 2-lock inversion is the clearest.
    report.potential_deadlocks = sorted(
        by_fp.values(), key=lambda p: (p.scope != "instance", len(p.locks), p.fingerprint))
    return report


def _instance_cycle(site_cycle: list[str], graph: Any, inst_key: dict[int, str],
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
