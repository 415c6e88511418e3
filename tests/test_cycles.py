"""Tests for lockwatch.cycles: a bounded cycle search, whatever the graph's shape (plain data)."""
from __future__ import annotations

import random

import networkx
import pytest

from lockwatch import analysis, cycles
from lockwatch.cycles import Budget, Graph, find_cycles
from lockwatch.model import EdgeRecord, LockStats, Snapshot

UNHURRIED = 1e9  # seconds: the step budget alone bounds the search (results do not depend on load)


def graph(edges: list[tuple[int, int]]) -> Graph:
    g = Graph()
    for u, v in edges:
        g.add_edge(u, v)
    return g


def assert_simple_cycle(g: Graph, cyc: list[int]) -> None:
    assert len(cyc) >= 2
    assert len(set(cyc)) == len(cyc)
    for k, u in enumerate(cyc):
        assert g.has_edge(u, cyc[(k + 1) % len(cyc)])


def rotations_key(cyc: list[int]) -> tuple[int, ...]:
    k = cyc.index(min(cyc))
    return tuple(cyc[k:] + cyc[:k])


def giant_scc_edges(n: int, seed: int = 5) -> list[tuple[int, int]]:
    """A layered acyclic lock order over n sites, and one edge from the last site back to the
    first: (nearly) one strongly connected component with exponentially many simple cycles."""
    rng = random.Random(seed)
    edges = {(i, i + 1) for i in range(n - 1)}
    while len(edges) < 5 * n:
        i = rng.randrange(n - 1)
        edges.add((i, min(n - 1, i + rng.randint(1, 30))))
    return sorted(edges) + [(n - 1, 0)]


@pytest.mark.parametrize("seed", range(40))
def test_small_graphs_list_exactly_the_simple_cycles(seed: int) -> None:
    # Few enough cycles to enumerate: the same set as networkx's simple_cycles, shortest first.
    rng = random.Random(seed)
    n = rng.randint(2, 7)
    edges = [(u, v) for u in range(n) for v in range(n) if u != v and rng.random() < 0.4]
    g = graph(edges)
    listing = find_cycles(g, cap=10_000, budget=Budget(seconds=UNHURRIED))
    ref = networkx.DiGraph(edges)
    expected = {rotations_key(c) for c in networkx.simple_cycles(ref)}
    assert {rotations_key(c) for c in listing.cycles} == expected
    assert len(listing.cycles) == len(expected)  # each once
    assert listing.not_listed == 0 and not listing.at_least
    for c in listing.cycles:
        assert_simple_cycle(g, c)


def test_cap_counts_the_rest_exactly_when_they_can_be_enumerated() -> None:
    n = 5  # K5: 10 + 20 + 30 + 24 = 84 simple cycles
    g = graph([(u, v) for u in range(n) for v in range(n) if u != v])
    listing = find_cycles(g, cap=12, budget=Budget(seconds=UNHURRIED))
    assert [len(c) for c in listing.cycles] == [2] * 10 + [3] * 2
    assert listing.not_listed == 84 - 12
    assert not listing.at_least


def test_giant_component_is_searched_within_the_budget() -> None:
    # 3,000 sites, 15,000 edges, one edge back across the graph: enumeration would not end.
    edges = giant_scc_edges(3000)
    g = graph(edges)
    budget = Budget(steps=200_000, seconds=UNHURRIED)
    listing = find_cycles(g, cap=50, budget=budget)
    assert 1 <= len(listing.cycles) <= 50
    for c in listing.cycles:
        assert_simple_cycle(g, c)
        assert (2999, 0) in {(c[k], c[(k + 1) % len(c)]) for k in range(len(c))}  # the only way round
    assert listing.at_least
    assert listing.not_listed >= 1
    # Bounded: the budget was spent by at most one search's worth of steps past it.
    assert budget.steps > -len(edges) - 1


def test_exhausted_budget_still_lists_one_cycle_per_component() -> None:
    # A spent budget (steps or time) still gives every component its first cycle.
    edges = giant_scc_edges(500) + [(1000, 1001), (1001, 1000), (2000, 2001), (2001, 2002), (2002, 2000)]
    g = graph(edges)
    for budget in (Budget(steps=0, seconds=UNHURRIED), Budget(seconds=0.0)):
        listing = find_cycles(g, cap=50, budget=budget)
        nodes = [set(c) for c in listing.cycles]
        assert {1000, 1001} in nodes
        assert {2000, 2001, 2002} in nodes
        assert any(0 in c and 499 in c for c in nodes)
        assert listing.at_least and listing.not_listed >= 1
        for c in listing.cycles:
            assert_simple_cycle(g, c)


def test_every_edge_on_a_cycle_is_in_a_listed_cycle_when_the_budget_allows() -> None:
    # Past the enumeration share, one cycle per uncovered edge: a ring of 200 with chords.
    n = 200
    edges = [(i, (i + 1) % n) for i in range(n)] + [(i, (i + 7) % n) for i in range(0, n, 10)]
    g = graph(edges)
    listing = find_cycles(g, cap=10_000, budget=Budget(steps=10**7, seconds=UNHURRIED))
    on_listed = {(c[k], c[(k + 1) % len(c)]) for c in listing.cycles for k in range(len(c))}
    assert set(edges) <= on_listed
    assert listing.at_least  # not every simple cycle was enumerated
    for c in listing.cycles:
        assert_simple_cycle(g, c)


@pytest.mark.parametrize("seed", range(60))
def test_components_are_networkx_components_in_its_order(seed: int) -> None:
    # The walk takes each lowlink in one pass over a node's successors: the same components, in
    # the order networkx's strongly_connected_components yields them, self-loops and all; the
    # single nodes left out when not asked for.
    rng = random.Random(seed)
    n = rng.randint(1, 40)
    edges = [(rng.randrange(n), rng.randrange(n)) for _ in range(rng.randint(0, 3 * n))]
    edges += [(rng.randrange(n), rng.randrange(n))] if seed % 3 == 0 else []
    g = graph(edges)
    ref = networkx.DiGraph()
    ref.add_nodes_from(g.adj)  # the order nodes were first seen in
    ref.add_edges_from(edges)
    expected = list(networkx.strongly_connected_components(ref))
    assert list(g.components()) == expected
    assert list(g.components(trivial=False)) == [c for c in expected if len(c) > 1]


def test_self_loops_and_acyclic_graphs_have_no_cycles() -> None:
    g = graph([(0, 0), (0, 1), (1, 2), (0, 2)])
    assert find_cycles(g, cap=50).cycles == []


def _stats(i: int) -> LockStats:
    filename = f"/srv/lockwatch-fixture/app/m{i // 100}.py"
    return LockStats(key=f"{filename}:{i + 1}:Lock", name=f"l{i}", kind="Lock", filename=filename,
                     line=i + 1, function="f", instances=1)


def test_analysis_of_a_giant_component_reports_how_many_more_are_not_listed() -> None:
    # The whole report: a few findings, every one a real cycle, and "at least N more".
    n = 2000
    locks = [_stats(i) for i in range(n)]
    site_edges, instance_edges = [], []
    for u, v in giant_scc_edges(n):
        e = EdgeRecord(locks[u].key, locks[v].key, "T", [f"a.py:{u} in f"], [f"a.py:{v} in g"],
                       thread_id="1:1")
        site_edges.append(e)
        instance_edges.append(EdgeRecord(**{**e.__dict__, "src_instance": u + 1, "dst_instance": v + 1}))
    report = analysis.analyze(Snapshot(locks=locks, site_edges=site_edges, instance_edges=instance_edges),
                              budget=Budget(seconds=UNHURRIED))
    assert 1 <= len(report.potential_deadlocks) <= analysis.MAX_CYCLES_PER_COMPONENT
    assert report.cycles_not_listed >= 1
    assert report.cycles_not_listed_at_least
    for p in report.potential_deadlocks:
        assert p.scope == "instance"
        assert len(p.edges) == len(p.locks) == len({lk.key for lk in p.locks})
        for k, e in enumerate(p.edges):
            assert (e.src, e.dst) == (p.locks[k].key, p.locks[(k + 1) % len(p.locks)].key)
    from lockwatch.renderers import text

    out = text.render(report)
    assert f"at least {report.cycles_not_listed} more cycle" in out


def test_default_budget_is_bounded() -> None:
    b = Budget()
    assert b.steps == cycles.STEP_BUDGET > cycles.COMPONENT_STEPS > 0
    assert 0 < cycles.TIME_BUDGET <= 5
