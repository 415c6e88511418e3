"""Tests for lockwatch.analysis: findings from hand-built snapshots (plain data, no threads)."""
from __future__ import annotations

import itertools
from typing import Optional

import networkx
import pytest

from lockwatch import analysis
from lockwatch.analysis import analyze, canonical_rotation, fingerprint
from lockwatch.model import EdgeRecord, LockStats, Snapshot

# Files outside the working directory and sys.path: fingerprints use their base names.
SRC = "/srv/lockwatch-fixture/app"


def stats(name: str, line: int = 10, kind: str = "Lock", filename: Optional[str] = None) -> LockStats:
    filename = filename or f"{SRC}/{name}.py"
    return LockStats(key=f"{filename}:{line}:{kind}", name=name, kind=kind, filename=filename,
                     line=line, function="<module>", instances=1)


def site_edge(src: LockStats, dst: LockStats, thread: str = "T", timed: bool = False) -> EdgeRecord:
    return EdgeRecord(src=src.key, dst=dst.key, thread=thread,
                      held_stack=[f"{src.filename}:{src.line + 5} in work"],
                      acquire_stack=[f"{dst.filename}:{dst.line + 6} in work"], timed=timed)


def inst_edge(src: LockStats, si: int, dst: LockStats, di: int, thread: str = "T") -> EdgeRecord:
    e = site_edge(src, dst, thread)
    e.src_instance, e.dst_instance = si, di
    return e


def snapshot(locks: list[LockStats], site_edges: list[EdgeRecord] = (),
             instance_edges: list[EdgeRecord] = ()) -> Snapshot:
    return Snapshot(locks=list(locks), site_edges=list(site_edges), instance_edges=list(instance_edges))


def site_cycle_snapshot(names: list[str], order: list[tuple[int, int]]) -> tuple[Snapshot, list[LockStats]]:
    locks = [stats(n) for n in names]
    return snapshot(locks, [site_edge(locks[a], locks[b]) for a, b in order]), locks


def assert_well_formed(p: analysis.PotentialDeadlock) -> None:
    """edges[i] goes from locks[i] to locks[i+1], the last one back to the first."""
    n = len(p.locks)
    assert len(p.edges) == n >= 2
    for k, e in enumerate(p.edges):
        assert e.src == p.locks[k].key
        assert e.dst == p.locks[(k + 1) % n].key
        if p.scope == "instance":
            assert e.src_instance == p.locks[k].instance
            assert e.dst_instance == p.locks[(k + 1) % n].instance


# -- cycles and no cycles --------------------------------------------------------------------


def test_two_cycle() -> None:
    snap, (a, b) = site_cycle_snapshot(["a", "b"], [(0, 1), (1, 0)])
    report = analyze(snap)
    assert len(report.potential_deadlocks) == 1
    p = report.potential_deadlocks[0]
    assert p.scope == "site"
    assert {lk.key for lk in p.locks} == {a.key, b.key}
    assert [lk.kind for lk in p.locks] == ["Lock", "Lock"]
    assert all(lk.instance is None for lk in p.locks)
    assert_well_formed(p)
    assert report.cycles_not_listed == 0


def test_three_cycle() -> None:
    snap, locks = site_cycle_snapshot(["a", "b", "c"], [(0, 1), (1, 2), (2, 0)])
    report = analyze(snap)
    assert len(report.potential_deadlocks) == 1
    p = report.potential_deadlocks[0]
    assert len(p.locks) == 3
    assert_well_formed(p)
    # Read in the cycle's own direction: a -> b -> c, from whichever lock it starts.
    names = [lk.name for lk in p.locks]
    assert canonical_rotation(names) == ["a", "b", "c"]


def test_dag_has_no_cycle() -> None:
    snap, _ = site_cycle_snapshot(["a", "b", "c", "d"], [(0, 1), (1, 2), (0, 2), (2, 3), (0, 3)])
    report = analyze(snap)
    assert report.potential_deadlocks == []
    assert report.cycles_not_listed == 0


def test_same_site_nesting_is_not_a_cycle() -> None:
    # Two instances of one site (sorted account locks) always nested in the same order.
    acct = stats("account")
    snap = snapshot([acct], [site_edge(acct, acct)],
                    [inst_edge(acct, 1, acct, 2), inst_edge(acct, 2, acct, 3), inst_edge(acct, 1, acct, 3)])
    assert analyze(snap).potential_deadlocks == []


def test_same_site_instances_in_both_orders_is_an_instance_cycle() -> None:
    acct = stats("account")
    snap = snapshot([acct], [site_edge(acct, acct)], [inst_edge(acct, 1, acct, 2), inst_edge(acct, 2, acct, 1)])
    found = analyze(snap).potential_deadlocks
    assert [(p.scope, sorted(lk.instance for lk in p.locks)) for p in found] == [("instance", [1, 2])]


# -- instance versus site scope ----------------------------------------------------------------


def test_instance_cycle_is_reported_once_as_instance() -> None:
    a, b = stats("a"), stats("b")
    snap = snapshot([a, b], [site_edge(a, b, "T1"), site_edge(b, a, "T2")],
                    [inst_edge(a, 1, b, 2, "T1"), inst_edge(b, 2, a, 1, "T2")])
    found = analyze(snap).potential_deadlocks
    assert len(found) == 1  # not again at site scope
    p = found[0]
    assert p.scope == "instance"
    assert sorted(lk.instance for lk in p.locks) == [1, 2]
    assert p.threads == ["T1", "T2"]
    assert_well_formed(p)


def test_site_only_cycle_is_labelled_site() -> None:
    # a#1 -> b#2 in one place, b#4 -> a#3 in another: the instances never met.
    a, b = stats("a"), stats("b")
    snap = snapshot([a, b], [site_edge(a, b, "T1"), site_edge(b, a, "T2")],
                    [inst_edge(a, 1, b, 2, "T1"), inst_edge(b, 4, a, 3, "T2")])
    found = analyze(snap).potential_deadlocks
    assert [p.scope for p in found] == ["site"]
    assert {lk.key for lk in found[0].locks} == {a.key, b.key}
    assert_well_formed(found[0])


def test_instance_findings_come_before_site_findings() -> None:
    a, b, c, d = stats("a"), stats("b"), stats("c"), stats("d")
    site_edges = [site_edge(a, b), site_edge(b, a), site_edge(c, d), site_edge(d, c)]
    instance_edges = [inst_edge(c, 5, d, 6), inst_edge(d, 6, c, 5), inst_edge(a, 1, b, 2)]
    found = analyze(snapshot([a, b, c, d], site_edges, instance_edges)).potential_deadlocks
    assert [(p.scope, sorted(lk.name for lk in p.locks)) for p in found] == [
        ("instance", ["c", "d"]), ("site", ["a", "b"])]


# -- fingerprints ------------------------------------------------------------------------------


def test_fingerprint_is_stable_under_rotation() -> None:
    ids = ["x.py:1:Lock", "y.py:2:RLock", "z.py:3:Lock"]
    fps = {fingerprint(ids[i:] + ids[:i]) for i in range(3)}
    assert len(fps) == 1
    assert fingerprint(list(reversed(ids))) not in fps  # the opposite direction is another cycle
    assert fingerprint(ids[:2]) not in fps


def test_finding_fingerprint_does_not_depend_on_where_the_cycle_is_read_from() -> None:
    first, _ = site_cycle_snapshot(["a", "b", "c"], [(0, 1), (1, 2), (2, 0)])
    rotated, _ = site_cycle_snapshot(["a", "b", "c"], [(2, 0), (1, 2), (0, 1)])
    fp1 = analyze(first).potential_deadlocks[0].fingerprint
    fp2 = analyze(rotated).potential_deadlocks[0].fingerprint
    assert fp1 == fp2


def test_fingerprint_is_the_same_with_other_serials() -> None:
    def run(s1: int, s2: int) -> analysis.PotentialDeadlock:
        a, b = stats("a"), stats("b")
        snap = snapshot([a, b], [site_edge(a, b), site_edge(b, a)],
                        [inst_edge(a, s1, b, s2), inst_edge(b, s2, a, s1)])
        (p,) = analyze(snap).potential_deadlocks
        return p

    p, q = run(1, 2), run(907, 31)
    assert {lk.instance for lk in p.locks} != {lk.instance for lk in q.locks}
    assert p.fingerprint == q.fingerprint
    assert len(p.fingerprint) == 12


def test_fingerprint_changes_with_the_sites() -> None:
    snap1, _ = site_cycle_snapshot(["a", "b"], [(0, 1), (1, 0)])
    snap2, _ = site_cycle_snapshot(["a", "c"], [(0, 1), (1, 0)])
    assert analyze(snap1).potential_deadlocks[0].fingerprint != analyze(snap2).potential_deadlocks[0].fingerprint


def test_many_instance_cycles_of_one_shape_are_one_finding() -> None:
    # Ten account pairs, each taken in both orders: one bug, ten occurrences.
    a, b = stats("src_account"), stats("dst_account")
    edges = []
    for k in range(10):
        edges += [inst_edge(a, 2 * k + 1, b, 2 * k + 2), inst_edge(b, 2 * k + 2, a, 2 * k + 1)]
    found = analyze(snapshot([a, b], [site_edge(a, b), site_edge(b, a)], edges)).potential_deadlocks
    assert len(found) == 1
    assert found[0].scope == "instance"
    assert found[0].occurrences == 10


def test_a_longer_way_round_the_same_sites_is_the_same_finding() -> None:
    # Account locks 1..4 taken in order, and 4 then 1 elsewhere: 1->4->1 is the bug; 1->2->4->1,
    # 1->3->4->1 and 1->2->3->4->1 go round the same site and count as occurrences of it.
    acct = stats("account")
    edges = [inst_edge(acct, i, acct, j) for i in range(1, 5) for j in range(i + 1, 5)]
    edges.append(inst_edge(acct, 4, acct, 1, thread="U"))
    found = analyze(snapshot([acct], [site_edge(acct, acct)], edges)).potential_deadlocks
    assert len(found) == 1
    assert [ref.instance for ref in found[0].locks] == [1, 4]
    assert found[0].occurrences == 4


def test_two_orders_of_the_same_three_sites_are_two_findings() -> None:
    a, b, c = stats("a"), stats("b"), stats("c")
    edges = [inst_edge(a, 1, b, 2), inst_edge(b, 2, c, 3), inst_edge(c, 3, a, 1),
             inst_edge(a, 4, c, 6), inst_edge(c, 6, b, 5), inst_edge(b, 5, a, 4)]
    sites = [site_edge(a, b), site_edge(b, c), site_edge(c, a), site_edge(a, c), site_edge(c, b),
             site_edge(b, a)]
    found = analyze(snapshot([a, b, c], sites, edges)).potential_deadlocks
    assert sorted(len(p.locks) for p in found if p.scope == "instance") == [3, 3]


# -- big graphs --------------------------------------------------------------------------------


def test_dense_component_is_capped_shortest_first() -> None:
    n = 12
    names = [f"k{i:02d}" for i in range(n)]
    order = [(i, j) for i in range(n) for j in range(n) if i != j]
    snap, _ = site_cycle_snapshot(names, order)
    report = analyze(snap)
    found = report.potential_deadlocks
    assert len(found) == analysis.MAX_CYCLES_PER_COMPONENT
    assert report.cycles_not_listed > 0
    # K12 has 66 two-lock cycles, more than the cap: every listed one is a 2-cycle.
    assert {len(p.locks) for p in found} == {2}
    assert len({p.fingerprint for p in found}) == len(found)
    for p in found:
        assert_well_formed(p)


def test_capped_instance_cycles_are_not_relabelled_site() -> None:
    # K12 of lock objects (one per site): the instance listing stops at the cap, and the site
    # listing finds cycles of the same objects that it did not list. Those are still "instance";
    # only a/b, whose instances never met, is "site".
    n = 12
    locks = [stats(f"k{i:02d}") for i in range(n)]
    a, b = stats("a"), stats("b")
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    snap = snapshot(locks + [a, b],
                    [site_edge(locks[i], locks[j]) for i, j in pairs] + [site_edge(a, b), site_edge(b, a)],
                    [inst_edge(locks[i], i + 1, locks[j], j + 1) for i, j in pairs]
                    + [inst_edge(a, 101, b, 102), inst_edge(b, 104, a, 103)])
    report = analyze(snap)
    site = [p for p in report.potential_deadlocks if p.scope == "site"]
    assert [sorted(lk.name for lk in p.locks) for p in site] == [["a", "b"]]
    instance = [p for p in report.potential_deadlocks if p.scope == "instance"]
    assert len(instance) >= analysis.MAX_CYCLES_PER_COMPONENT
    assert report.cycles_not_listed > 0
    for p in instance:
        assert_well_formed(p)
        assert all(lk.instance is not None for lk in p.locks)


def test_capped_listing_takes_every_shorter_cycle_before_longer_ones() -> None:
    # K6: 15 two-cycles and 40 three-cycles; a cap of 30 lists all 15 and then 15 of length 3.
    # It has 15 + 40 + 90 + 144 + 120 = 409 simple cycles, few enough to count exactly.
    n = 6
    snap, _ = site_cycle_snapshot([f"k{i}" for i in range(n)],
                                  [(i, j) for i in range(n) for j in range(n) if i != j])
    report = analyze(snap, cap=30)
    lengths = sorted(len(p.locks) for p in report.potential_deadlocks)
    assert lengths == [2] * 15 + [3] * 15
    assert report.cycles_not_listed == 409 - 30
    assert not report.cycles_not_listed_at_least


def test_small_component_is_listed_in_full() -> None:
    n = 4  # K4: 6 + 8 + 6 = 20 simple cycles
    snap, _ = site_cycle_snapshot([f"k{i}" for i in range(n)],
                                  [(i, j) for i in range(n) for j in range(n) if i != j])
    report = analyze(snap)
    assert sorted(len(p.locks) for p in report.potential_deadlocks) == [2] * 6 + [3] * 8 + [4] * 6
    assert report.cycles_not_listed == 0


def test_large_acyclic_graph_enumerates_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # 10,000 sites in a layered DAG: only SCCs are computed, no cycle search runs.
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("cycle enumeration on an acyclic graph")

    monkeypatch.setattr(networkx, "simple_cycles", forbidden)
    monkeypatch.setattr(networkx, "find_cycle", forbidden)
    locks = [stats(f"n{i}", line=i + 1, filename=f"{SRC}/big.py") for i in range(10_000)]
    edges = [site_edge(locks[i], locks[j]) for i in range(10_000) for j in (i + 1, i * 7 + 3)
             if j < 10_000 and j > i]
    inst = [inst_edge(locks[i], i, locks[i + 1], i + 1) for i in range(9_999)]
    report = analyze(snapshot(locks, edges, inst))
    assert report.potential_deadlocks == []
    assert report.cycles_not_listed == 0


def test_edges_to_unknown_sites_still_make_a_finding() -> None:
    # A merged report may name sites it has no stats for: the finding derives what it can.
    a = stats("a")
    ghost = f"{SRC}/ghost.py:7:RLock"
    edges = [EdgeRecord(a.key, ghost, "T", [], []), EdgeRecord(ghost, a.key, "T", [], [])]
    (p,) = analyze(snapshot([a], edges)).potential_deadlocks
    refs = {lk.key: lk for lk in p.locks}
    assert refs[ghost].kind == "RLock"
    assert refs[ghost].line == 7
    assert refs[ghost].filename == f"{SRC}/ghost.py"


def test_canonical_rotation() -> None:
    assert canonical_rotation([3, 1, 2]) == [1, 2, 3]
    assert canonical_rotation([]) == []
    for perm in itertools.permutations("abcd"):
        rots = {tuple(canonical_rotation(list(perm[i:] + perm[:i]))) for i in range(4)}
        assert len(rots) == 1
