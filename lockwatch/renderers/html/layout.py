"""Geometry of the HTML report's lock-order graph: which locks to draw and where (pure functions)."""
from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Optional

from ...model import EdgeRecord, LockRef, LockStats, Report

NODE_H = 38  # height of a lock's box
NAME_CHARS = 26  # the name in a box is clipped to this many characters
SUB_CHARS = 30  # and its second line (kind, file:line) to this many
COLUMN_ROWS = 8  # locks in one column beside a group of cycles
PAD = 16  # margin around a drawing


def clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def short_site(filename: str, line: int) -> str:
    return f"{os.path.basename(filename) or filename}:{line}"


@dataclass
class Node:
    key: str
    name: str
    kind: str
    filename: str
    line: int
    stats: Optional[LockStats]
    cycles: list[int] = field(default_factory=list)
    index: Optional[int] = None  # row in the table of locks

    @property
    def label(self) -> str:
        return clip(self.name, NAME_CHARS)

    @property
    def sub(self) -> str:
        return clip(f"{self.kind} · {short_site(self.filename, self.line)}", SUB_CHARS)

    @property
    def width(self) -> float:
        # Estimated text widths of the 12px bold name and the 11px second line.
        return max(7.2 * len(self.label), 6.1 * len(self.sub), 48) + 20

    @property
    def acquisitions(self) -> int:
        return self.stats.acquisitions if self.stats else 0


class Graph:
    """The site-level lock-order graph, with the edges and locks of every cycle marked."""

    def __init__(self, report: Report) -> None:
        snap = report.snapshot
        self.source_lines = snap.source_lines
        self.nodes: dict[str, Node] = {}
        self.edges: dict[tuple[str, str], EdgeRecord] = {}
        self.succ: dict[str, set[str]] = {}
        self.pred: dict[str, set[str]] = {}
        self.cycle_edges: dict[tuple[str, str], list[int]] = {}
        for i, s in enumerate(snap.locks):
            self.nodes[s.key] = Node(s.key, s.name, s.kind, s.filename, s.line, s, index=i)
        for e in snap.site_edges:
            self._add(e.src, e.dst, e)
        for n, p in enumerate(report.potential_deadlocks, 1):
            for k, lk in enumerate(p.locks):
                nxt = p.locks[(k + 1) % len(p.locks)]
                node = self._node(lk.key, lk)
                if n not in node.cycles:
                    node.cycles.append(n)
                self._node(nxt.key, nxt)
                pair = (lk.key, nxt.key)
                if pair not in self.edges and k < len(p.edges):
                    self._add(lk.key, nxt.key, p.edges[k])
                marks = self.cycle_edges.setdefault(pair, [])
                if n not in marks:
                    marks.append(n)

    def _node(self, key: str, ref: Optional[LockRef] = None) -> Node:
        node = self.nodes.get(key)
        if node is None:
            if ref is not None:
                name = ref.name.split("#")[0] if ref.instance is not None else ref.name
                node = Node(key, name, ref.kind, ref.filename, ref.line, None)
            else:
                filename, _, kind = key.rpartition(":")
                filename, _, line = filename.rpartition(":")
                node = Node(key, key, kind, filename, int(line) if line.isdigit() else 0, None)
            self.nodes[key] = node
        return node

    def _add(self, src: str, dst: str, e: EdgeRecord) -> None:
        self._node(src)
        self._node(dst)
        self.edges.setdefault((src, dst), e)
        self.succ.setdefault(src, set()).add(dst)
        self.pred.setdefault(dst, set()).add(src)

    def neighbours(self, key: str) -> set[str]:
        return (self.succ.get(key, set()) | self.pred.get(key, set())) - {key}

    def degree(self, key: str) -> int:
        return len(self.neighbours(key))


@dataclass
class Layout:
    pos: dict[str, tuple[float, float]]
    width: float
    height: float
    labels: list[tuple[float, float, str, str]] = field(default_factory=list)  # x, y, text, href
    # Group of each drawn lock: edges between groups are not drawn (they would cross the view).
    group: dict[str, int] = field(default_factory=dict)


def linked_groups(order: list[str], pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    """``order`` split into the groups of keys that ``pairs`` link (in either direction): each
    group in the order of ``order``, the groups in the order of their first key."""
    import networkx as nx

    linked = nx.Graph()
    linked.add_nodes_from(order)
    linked.add_edges_from((a, b) for a, b in pairs if a in linked and b in linked)
    rank = {k: i for i, k in enumerate(order)}
    groups = [sorted(c, key=rank.__getitem__) for c in nx.connected_components(linked)]
    return sorted(groups, key=lambda grp: rank[grp[0]])


def ring_positions(keys: list[str], g: Graph) -> dict[str, tuple[float, float]]:
    """``keys`` evenly on a (slightly flattened) circle around (0, 0), the first on the left,
    clockwise, with room between neighbours for the two edges of an inversion."""
    n = len(keys)
    if n == 1:
        return {keys[0]: (0.0, 0.0)}
    if n == 2:  # one above the other: both reach the columns of neighbours on either side
        return {keys[0]: (0.0, -52.0), keys[1]: (0.0, 52.0)}
    widest = max(g.nodes[k].width for k in keys)
    radius = max(95.0, (widest + 28) / (2 * math.sin(math.pi / n)))
    pos = {}
    for i, k in enumerate(keys):
        a = math.pi + 2 * math.pi * i / n
        pos[k] = (radius * math.cos(a), radius * math.sin(a) * 0.8)
    return pos


def focus_layout(g: Graph, report: Report, limit: int) -> tuple[Layout, list[str], int]:
    """The cycles, each group of cycles that share locks on a ring, and the locks one edge away
    around it. Returns the layout, the keys drawn, and how many neighbours were left out."""
    cycles = report.potential_deadlocks
    order: list[str] = []
    for p in cycles:
        for lk in p.locks:
            if lk.key not in order:
                order.append(lk.key)
    # Groups: locks joined by cycle edges, in the order the cycles are listed.
    group_list = linked_groups(order, g.cycle_edges)
    group_of = {k: i for i, grp in enumerate(group_list) for k in grp}
    in_cycle = set(order)

    # Neighbours: one edge from a lock of a cycle. Each belongs to the first group it touches;
    # they are taken round-robin over groups, the best connected first, within the budget.
    rank = {k: i for i, k in enumerate(order)}
    candidates: dict[int, list[tuple[int, int, str, str]]] = {}
    homed: set[str] = set()
    for k in order:
        for nb in sorted(g.neighbours(k)):
            if nb in in_cycle or nb in homed:
                continue
            homed.add(nb)
            touching = [c for c in g.neighbours(nb) if c in in_cycle]
            home = min(group_of[c] for c in touching)
            anchor = min(touching, key=lambda c: (group_of[c] != home, rank[c]))
            candidates.setdefault(home, []).append((-len(touching), -g.nodes[nb].acquisitions, nb, anchor))
    for lst in candidates.values():
        lst.sort(reverse=True)  # best last: popped first
    budget = max(0, limit - len(order))
    chosen: dict[int, list[tuple[str, str]]] = {}
    while budget > 0 and any(candidates.values()):
        for i in sorted(candidates):
            if candidates[i] and budget > 0:
                _, _, nb, anchor = candidates[i].pop()
                chosen.setdefault(i, []).append((nb, anchor))
                budget -= 1
    left_out = sum(len(lst) for lst in candidates.values())

    # Each group on a ring around (0, 0); the locks taken before one of its locks in a column on
    # its left, those taken after on its right. Then the groups are packed in rows.
    boxes = []
    layout_group: dict[str, int] = {}
    for i, grp in enumerate(group_list):
        pos = ring_positions(grp, g)
        members = set(grp)
        before = [(nb, a) for nb, a in chosen.get(i, []) if g.succ.get(nb, set()) & members]
        after = [(nb, a) for nb, a in chosen.get(i, []) if not g.succ.get(nb, set()) & members]
        ring_minx = min(pos[k][0] - g.nodes[k].width / 2 for k in grp)
        ring_maxx = max(pos[k][0] + g.nodes[k].width / 2 for k in grp)
        for side, nbs in ((-1, before), (1, after)):
            if not nbs:
                continue
            nbs.sort(key=lambda t: (pos[t[1]][1], -side * pos[t[1]][0], g.nodes[t[0]].name))
            colw = max(g.nodes[nb].width for nb, _ in nbs)
            edge_x = ring_minx if side < 0 else ring_maxx
            for c in range(0, len(nbs), COLUMN_ROWS):
                chunk = nbs[c:c + COLUMN_ROWS]
                x = edge_x + side * (76 + colw / 2 + (c // COLUMN_ROWS) * (colw + 26))
                top = -(len(chunk) * (NODE_H + 14) - 14) / 2 + NODE_H / 2
                for j, (nb, _) in enumerate(chunk):
                    pos[nb] = (x, top + j * (NODE_H + 14))
        for k in pos:
            layout_group[k] = i
        minx = min(x - g.nodes[k].width / 2 for k, (x, y) in pos.items())
        maxx = max(x + g.nodes[k].width / 2 for k, (x, y) in pos.items())
        miny = min(y - NODE_H / 2 for k, (x, y) in pos.items()) - 48  # title and self-loops
        maxy = max(y + NODE_H / 2 for k, (x, y) in pos.items())
        nums = sorted({n for k in grp for n in g.nodes[k].cycles})
        title = ("Potential deadlock " if len(nums) == 1 else "Potential deadlocks ") + \
            ", ".join(str(n) for n in nums)
        maxx = max(maxx, minx + 7.5 * len(title))
        boxes.append((pos, minx, miny, maxx, maxy, title, f"#cycle-{nums[0]}" if nums else ""))
    layout = pack(boxes, max_width=1100)
    layout.group = layout_group
    keys = list(order) + [nb for i in sorted(chosen) for nb, _ in chosen[i]]
    return layout, keys, left_out


def pack(boxes: list[tuple[Any, ...]], max_width: float) -> Layout:
    """Shelf-pack the laid out groups in rows no wider than ``max_width``."""
    out = Layout({}, 0, 0)
    x = y = float(PAD)
    row_h = 0.0
    gap = 36.0
    for pos, minx, miny, maxx, maxy, title, href in boxes:
        w, h = maxx - minx, maxy - miny
        if x > PAD and x + w > max_width:
            x, y = float(PAD), y + row_h + gap
            row_h = 0.0
        dx, dy = x - minx, y - miny
        for k, (px, py) in pos.items():
            out.pos[k] = (px + dx, py + dy)
        out.labels.append((x, y + 12, title, href))
        x += w + gap
        row_h = max(row_h, h)
        out.width = max(out.width, x - gap + PAD)
    out.height = y + row_h + PAD
    return out


def layered_layout(g: Graph, keys: list[str], max_width: float = 1500) -> Layout:
    """Lock order from top to bottom: each lock one row below the locks taken before it
    (longest path in the graph of strongly connected components, whose locks stay together),
    rows ordered by the mean position of their predecessors and wrapped at ``max_width``."""
    import networkx as nx

    wanted = set(keys)
    dg = nx.DiGraph()
    dg.add_nodes_from(keys)
    dg.add_edges_from((a, b) for (a, b) in g.edges if a != b and a in wanted and b in wanted)
    cond = nx.condensation(dg)
    layer: dict[int, int] = {}
    for c in nx.topological_sort(cond):
        layer[c] = max((layer[p] + 1 for p in cond.predecessors(c)), default=0)
    rows: dict[int, list[int]] = {}
    for c, n in layer.items():
        rows.setdefault(n, []).append(c)
    rank = {k: i for i, k in enumerate(keys)}
    out = Layout({}, 0, 0)
    y = PAD + 30 + NODE_H / 2  # room for a self-loop above the first row
    gap_x, gap_y = 40.0, NODE_H + 40
    for n in sorted(rows):
        def bary(c: int) -> tuple[float, int]:
            xs = [out.pos[p][0] for m in cond.nodes[c]["members"] for p in dg.predecessors(m) if p in out.pos]
            first = min(rank[m] for m in cond.nodes[c]["members"])
            return (sum(xs) / len(xs) if xs else math.inf, first)

        x = float(PAD)
        for c in sorted(rows[n], key=bary):
            want = bary(c)[0]
            for m in sorted(cond.nodes[c]["members"], key=rank.__getitem__):
                w = g.nodes[m].width
                if want != math.inf and want - w / 2 > x and want + w / 2 <= max_width:
                    x = want - w / 2  # under its predecessors: shorter, straighter edges
                want = math.inf
                if x > PAD and x + w > max_width:
                    x, y = float(PAD), y + gap_y
                out.pos[m] = (x + w / 2, y)
                x += w + gap_x
                out.width = max(out.width, x - gap_x + PAD)
        y += gap_y
    out.height = y - gap_y + NODE_H / 2 + PAD
    out.width = max(out.width, 200)
    return out


def overview_keys(g: Graph, report: Report, limit: int) -> list[str]:
    """With no cycle to show: the most contended locks, then the most connected."""
    stats = report.snapshot.locks
    keys: list[str] = []
    for s in sorted((s for s in stats if s.contended), key=lambda s: (-s.wait.total_ns, -s.contended, s.key)):
        if len(keys) >= limit // 2:
            break
        keys.append(s.key)
    rest = sorted(g.nodes, key=lambda k: (-g.degree(k), -g.nodes[k].acquisitions, k))
    for k in rest:
        if len(keys) >= limit:
            break
        if k not in keys:
            keys.append(k)
    return keys


def full_keys(g: Graph, limit: int) -> tuple[list[str], int]:
    keys = list(g.nodes)
    if len(keys) <= limit:
        return keys, 0
    cyc = [k for k in keys if g.nodes[k].cycles]
    rest = sorted((k for k in keys if not g.nodes[k].cycles), key=lambda k: (-g.degree(k), k))
    keep = set(cyc + rest[: max(0, limit - len(cyc))])
    return [k for k in keys if k in keep], len(keys) - len(keep)
