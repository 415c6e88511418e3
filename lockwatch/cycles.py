"""Cycles of the lock-order graph, found in bounded time whatever the graph's shape.

A strongly connected component can hold exponentially many simple cycles (a graph of 10,000
sites with one edge back across it kept networkx's enumeration busy for 884 s), so the search is
bounded, with plain dicts and no networkx:

1. Strongly connected components, in linear time. A component of one node has no cycle (the
   analysis leaves same-site nesting, a self-loop, to the instance graph).
2. In each component, smallest first: every simple cycle, shortest first (length 2, then 3, ...),
   until the component's share of the work budget is spent. A component enumerated to the end has
   the same cycles as networkx's simple_cycles finds, listed shortest first up to the cap.
3. A component whose enumeration was cut short: for each edge that is on no cycle found so far,
   the shortest cycle through it (a breadth-first search from the edge's head back to its tail),
   so that every lock-order edge on a cycle is shown in at least one listed cycle while the budget
   lasts. The first such search of every component runs whatever the budget: each component has
   at least one cycle listed, and those searches cost O(edges) in all.

At most ``cap`` cycles are listed per component; the cycles found beyond it are counted, and when
the search stopped before it had seen every cycle of a component the count is a lower bound (the
report says "at least N more cycles not listed"). The budget is counted in steps (edges looked
at), so that a result does not depend on the machine's speed; a wall-clock deadline backs it up.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import field
from typing import Any, Optional

from .records import record

# Work, in edges looked at (a step is ~0.2-0.4 µs of Python): a whole analysis spends at most
# STEP_BUDGET (~0.2 s) on searching, and one component at most COMPONENT_STEPS of it on listing
# every cycle (step 2) before it turns to one cycle per edge (step 3).
STEP_BUDGET = 500_000
COMPONENT_STEPS = 20_000
TIME_BUDGET = 1.0  # seconds: the backstop for a slow or loaded machine


class Graph:
    """A directed graph as plain dicts, nodes and successors in insertion order."""

    def __init__(self) -> None:
        self.adj: dict[Any, dict[Any, None]] = {}

    def add_edge(self, u: Any, v: Any) -> None:
        self.adj.setdefault(u, {})[v] = None
        self.adj.setdefault(v, {})

    def successors(self, u: Any) -> Iterable[Any]:
        return self.adj.get(u, {})

    def has_edge(self, u: Any, v: Any) -> bool:
        return v in self.adj.get(u, {})

    def components(self, trivial: bool = True) -> Iterator[set[Any]]:
        """Strongly connected components, in the order networkx's strongly_connected_components
        yields them (the same iterative Tarjan walk: sources and successors in insertion order).
        ``trivial=False``: only those of several nodes (a lock-order graph of 100,000 sites is
        mostly single nodes: no set made and yielded for each)."""
        adj = self.adj
        preorder: dict[Any, int] = {}
        lowlink: dict[Any, int] = {}
        found: set[Any] = set()
        pending: list[Any] = []
        counter = 0
        successors: dict[Any, Iterator[Any]] = {}  # of each node visited: those not walked yet
        for source in adj:
            if source in found:
                continue
            stack = [source]
            while stack:
                v = stack[-1]
                walk = successors.get(v)
                if walk is None:
                    counter += 1
                    preorder[v] = lowlink[v] = counter
                    walk = successors[v] = iter(adj[v])
                pv, low = preorder[v], lowlink[v]
                # One pass over the successors: a node visited already and not in a component
                # yet stays so until v is done (its component's root is v or above it), so its
                # part of v's lowlink can be taken now; a child's, when the child is done.
                for w in walk:
                    pw = preorder.get(w)
                    if pw is None:
                        lowlink[v] = low
                        stack.append(w)
                        break
                    if w not in found:
                        if pw > pv:
                            pw = lowlink[w]
                        if pw < low:
                            low = pw
                else:
                    lowlink[v] = low
                    del successors[v]  # (a node done is never walked again)
                    stack.pop()
                    if low != pv:
                        pending.append(v)
                        if low < lowlink[stack[-1]]:  # a node with a lower one is below it
                            lowlink[stack[-1]] = low
                    elif pending and preorder[pending[-1]] > pv:
                        comp = {v}
                        while pending and preorder[pending[-1]] > pv:
                            comp.add(pending.pop())
                        found.update(comp)
                        yield comp
                    else:
                        found.add(v)
                        if trivial:
                            yield {v}


@record
class Budget:
    """What is left of the search's work: steps, and a wall-clock deadline."""

    steps: int = STEP_BUDGET
    seconds: float = TIME_BUDGET
    deadline: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def spent(self) -> bool:
        return self.steps <= 0 or time.monotonic() > self.deadline


@record
class Listing:
    """The cycles a search lists, and how many more it found (or knows of) and does not list."""

    cycles: list[list[Any]] = field(default_factory=list)
    not_listed: int = 0
    at_least: bool = False  # the search stopped early: there may be more than ``not_listed``


class _OutOfSteps(Exception):
    pass


def find_cycles(graph: Graph, cap: int, budget: Optional[Budget] = None) -> Listing:
    """The simple cycles of ``graph`` to list (at most ``cap`` per strongly connected component,
    shortest first), each a list of nodes in the cycle's order (``graph`` has the edge from each
    node to the next, and from the last to the first)."""
    budget = budget if budget is not None else Budget()
    out = Listing()
    adj = graph.adj
    comps = list(graph.components(trivial=False))
    if not comps:
        return out
    # Smallest first: a huge component takes what the small ones (each cheap) left of the budget.
    order = {v: i for i, v in enumerate(adj)}
    comps.sort(key=len)
    for comp in comps:
        nodes = sorted(comp, key=order.__getitem__)  # insertion order: deterministic
        sub = {u: [v for v in adj[u] if v in comp and v != u] for u in nodes}
        found, more = _component_cycles(nodes, sub, order, budget)
        found.sort(key=len)  # stable: shortest first, then in the order found
        out.cycles.extend(found[:cap])
        out.not_listed += max(0, len(found) - cap) + (more or 0)
        out.at_least = out.at_least or more is not None
    return out


def _component_cycles(nodes: list[Any], sub: dict[Any, list[Any]], order: dict[Any, int],
                      budget: Budget) -> tuple[list[list[Any]], Optional[int]]:
    """Cycles of one component, and None when they are all of its simple cycles; otherwise
    how many more it certainly has that are not among them (1 when an edge is on none of them:
    a cycle through that edge, 0 when every edge is on one of them)."""
    found: list[list[Any]] = []
    seen: set[tuple[Any, ...]] = set()
    share = max(0, min(COMPONENT_STEPS, budget.steps))
    steps = _enumerate(nodes, sub, order, share, found)
    if steps is not None:
        budget.steps -= steps
        return found, None
    budget.steps -= share
    seen.update(_key(c, order) for c in found)
    covered = {(c[k], c[(k + 1) % len(c)]) for c in found for k in range(len(c))}
    first = not found  # the first search runs whatever the budget: one cycle per component
    for u in nodes:
        for v in sub[u]:
            if (u, v) in covered:
                continue
            if not first and budget.spent():
                return found, 1
            path, steps = _shortest_path(sub, v, u)
            budget.steps -= steps
            first = False
            if path is None:  # cannot happen inside a strongly connected component
                continue
            cyc = [u, *path[:-1]]
            key = _key(cyc, order)
            if key not in seen:
                seen.add(key)
                found.append(cyc)
            covered.update((cyc[k], cyc[(k + 1) % len(cyc)]) for k in range(len(cyc)))
    return found, 0


def _key(cyc: list[Any], order: dict[Any, int]) -> tuple[Any, ...]:
    """A cycle the same whichever node it is read from (its nodes are distinct)."""
    start = min(range(len(cyc)), key=lambda i: order[cyc[i]])
    return tuple(cyc[start:] + cyc[:start])


def _shortest_path(sub: dict[Any, list[Any]], src: Any, dst: Any) -> tuple[Optional[list[Any]], int]:
    """A shortest path from ``src`` to ``dst`` (breadth first), and the steps it took."""
    parent: dict[Any, Any] = {src: src}
    queue = deque([src])
    steps = 0
    while queue:
        u = queue.popleft()
        for v in sub[u]:
            steps += 1
            if v in parent:
                continue
            parent[v] = u
            if v == dst:
                path = [v]
                while path[-1] != src:
                    path.append(parent[path[-1]])
                return path[::-1], steps
            queue.append(v)
    return None, steps


def _enumerate(nodes: list[Any], sub: dict[Any, list[Any]], order: dict[Any, int], limit: int,
               found: list[list[Any]]) -> Optional[int]:
    """Append every simple cycle of the component to ``found``, shortest first; the steps taken,
    or None when ``limit`` steps did not suffice (``found`` then holds every cycle shorter than
    the length being enumerated, and some of that length). A cycle is enumerated from its
    first node in ``order``, through later nodes only, so that each is found once."""
    rank = {v: order[v] for v in nodes}
    pred: dict[Any, list[Any]] = {v: [] for v in nodes}
    for u in nodes:
        for v in sub[u]:
            pred[v].append(u)
    counter = [0]

    def step(n: int = 1) -> None:
        counter[0] += n
        if counter[0] > limit:
            raise _OutOfSteps

    dists: dict[Any, dict[Any, int]] = {}

    def to_start(s: Any) -> dict[Any, int]:
        """Distances to ``s`` from the nodes after it, through nodes after it."""
        d = dists.get(s)
        if d is None:
            d = {s: 0}
            queue = deque([s])
            rs = rank[s]
            while queue:
                v = queue.popleft()
                step(len(pred[v]) + 1)
                for u in pred[v]:
                    if u not in d and rank[u] > rs:
                        d[u] = d[v] + 1
                        queue.append(u)
            dists[s] = d
        return d

    try:
        for length in range(2, len(nodes) + 1):
            for s in nodes:
                d = to_start(s)
                if len(d) < length:  # fewer nodes than the cycle needs can reach s
                    continue
                rs = rank[s]
                path = [s]
                on_path = {s}
                iters = [iter(sub[s])]
                while iters:
                    depth = len(path)  # edges taken so far: depth - 1; next edge: depth
                    for x in iters[-1]:
                        step()
                        if x == s:
                            if depth == length:
                                found.append(list(path))
                            continue
                        if (depth < length and rank[x] > rs and x not in on_path
                                and depth + d.get(x, length) <= length):
                            path.append(x)
                            on_path.add(x)
                            iters.append(iter(sub[x]))
                            break
                    else:
                        iters.pop()
                        on_path.discard(path.pop())
    except _OutOfSteps:
        return None
    return counter[0]
