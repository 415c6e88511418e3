"""Tests for lockwatch.renderers.html.layout: the geometry of the graph, from hand-built reports."""
from __future__ import annotations

from typing import Optional

from lockwatch.model import EdgeRecord, LockRef, LockStats, PotentialDeadlock, Report, Snapshot
from lockwatch.renderers.html import layout
from lockwatch.renderers.html.layout import NODE_H, PAD, Graph


def stats(name: str, contended: int = 0, acquisitions: int = 1) -> LockStats:
    return LockStats(key=f"/srv/m.py:{name}:Lock", name=name, kind="Lock", filename="/srv/m.py",
                     line=1 + sum(map(ord, name)) % 97, function="f", acquisitions=acquisitions,
                     contended=contended)


def key(name: str) -> str:
    return f"/srv/m.py:{name}:Lock"


def edge(a: str, b: str) -> EdgeRecord:
    return EdgeRecord(src=key(a), dst=key(b), thread="t", held_stack=[], acquire_stack=[])


def cycle(*names: str) -> PotentialDeadlock:
    locks = [LockRef(key(n), n, "Lock", "/srv/m.py", 1) for n in names]
    edges = [edge(names[i], names[(i + 1) % len(names)]) for i in range(len(names))]
    return PotentialDeadlock("site", locks, edges, fingerprint="-".join(names))


def report(names: str, edges: str, cycles: tuple[str, ...] = (), contended: Optional[dict[str, int]] = None) -> Report:
    """Locks named by letters; edges as "ab bc" (a -> b, b -> c); cycles as ("ab", ...)."""
    contended = contended or {}
    snap = Snapshot(locks=[stats(n, contended.get(n, 0)) for n in names],
                    site_edges=[edge(e[0], e[1]) for e in edges.split()])
    return Report(snap, potential_deadlocks=[cycle(*c) for c in cycles])


def test_linked_groups_keep_the_given_order() -> None:
    order = ["a", "b", "c", "d", "e"]
    assert layout.linked_groups(order, [("c", "a"), ("e", "d")]) == [["a", "c"], ["b"], ["d", "e"]]
    assert layout.linked_groups(order, []) == [[k] for k in order]
    assert layout.linked_groups(["x", "y"], [("x", "y"), ("y", "x")]) == [["x", "y"]]


def test_ring_positions() -> None:
    g = Graph(report("abcd", "ab bc cd da"))
    assert layout.ring_positions([key("a")], g) == {key("a"): (0.0, 0.0)}
    two = layout.ring_positions([key("a"), key("b")], g)
    assert two[key("a")][0] == two[key("b")][0] and two[key("a")][1] < two[key("b")][1]
    ring = layout.ring_positions([key(n) for n in "abcd"], g)
    (ax, ay), (bx, by), (cx, cy), (dx, dy) = (ring[key(n)] for n in "abcd")
    assert ax < 0 and abs(ay) < 1e-9  # the first on the left
    assert cx == -ax  # the third opposite
    assert by < 0 < dy  # clockwise on screen: the second above (y grows downwards)
    # neighbours far enough apart for their boxes
    assert abs(ax - bx) + abs(ay - by) > g.nodes[key("a")].width / 2


def test_pack_wraps_rows_at_the_width() -> None:
    def box(w: float, h: float, title: str) -> tuple:
        return ({title: (w / 2, h / 2)}, 0.0, 0.0, w, h, title, "")

    out = layout.pack([box(400, 100, "one"), box(400, 50, "two"), box(400, 80, "three")], max_width=1000)
    one, two, three = (out.pos[t] for t in ("one", "two", "three"))
    assert one == (PAD + 200, PAD + 50)
    assert two[1] == PAD + 25 and two[0] > one[0]  # same row
    assert three[0] == PAD + 200 and three[1] > PAD + 100  # next row, below the tallest of the first
    assert out.width <= 1000 and out.height >= three[1] + 40
    assert [label[2] for label in out.labels] == ["one", "two", "three"]


def test_layered_layout_puts_later_locks_lower() -> None:
    g = Graph(report("abcd", "ab bc cb cd"))
    out = layout.layered_layout(g, [key(n) for n in "abcd"])
    y = {n: out.pos[key(n)][1] for n in "abcd"}
    assert y["a"] < y["b"] == y["c"] < y["d"]  # b and c (a cycle) share a row
    assert out.pos[key("b")][0] != out.pos[key("c")][0]


def test_focus_layout_groups_cycles_and_places_neighbours_beside_them() -> None:
    # Cycles a<->b and c<->d share no lock: two groups. x is taken before a, y after d.
    rep = report("abcdxy", "ab ba cd dc xa dy", cycles=("ab", "cd"))
    g = Graph(rep)
    out, keys, left_out = layout.focus_layout(g, rep, limit=100)
    assert keys == [key(n) for n in "abcdxy"] and left_out == 0
    assert out.group[key("a")] == out.group[key("b")] == out.group[key("x")] == 0
    assert out.group[key("c")] == out.group[key("d")] == out.group[key("y")] == 1
    assert out.pos[key("x")][0] < min(out.pos[key("a")][0], out.pos[key("b")][0])  # before: left
    assert out.pos[key("y")][0] > max(out.pos[key("c")][0], out.pos[key("d")][0])  # after: right
    assert [label[2] for label in out.labels] == ["Potential deadlock 1", "Potential deadlock 2"]
    for x, y in out.pos.values():
        assert x >= PAD and y - NODE_H / 2 >= PAD


def test_focus_layout_leaves_out_neighbours_beyond_the_limit() -> None:
    rep = report("abxyz", "ab ba xa ya za", cycles=("ab",))
    out, keys, left_out = layout.focus_layout(Graph(rep), rep, limit=3)
    assert len(keys) == 3 and left_out == 2
    assert keys[:2] == [key("a"), key("b")]


def test_overview_keys_most_contended_then_most_connected() -> None:
    rep = report("abcde", "ab ac ad ae", contended={"e": 5, "d": 1})
    keys = layout.overview_keys(Graph(rep), rep, limit=4)
    assert keys == [key("e"), key("d"), key("a"), key("b")]


def test_full_keys_keep_every_cycle_lock() -> None:
    rep = report("abcde", "ab ba cd ce", cycles=("ab",))
    keys, dropped = layout.full_keys(Graph(rep), limit=3)
    assert dropped == 2 and {key("a"), key("b"), key("c")} == set(keys)
    assert layout.full_keys(Graph(rep), limit=10) == ([key(n) for n in "abcde"], 0)
