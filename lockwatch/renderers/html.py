"""The HTML report: one self-contained, offline file (inline CSS, JS and SVG) for people to explore."""
from __future__ import annotations

import html
import linecache
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from .. import histogram
from ..model import EdgeRecord, LockInfo, LockRef, LockStats, PotentialDeadlock, Report, Timing
from ..stacks import short_path
from .common import BADGES, KNOWN_REASON, SCOPE_TEXT, cycle_title, fmt_ns, plural

EXTENSION = ".html"

# The default graph view draws the cycles and their neighbourhood, never more than this many
# locks: a graph of hundreds of locks drawn whole is a hairball (the whole one is a click away).
FOCUS_LIMIT = 160
# With no cycle, the default view shows this many of the most contended / most connected locks.
OVERVIEW_LIMIT = 30
# The "whole graph" view stops here: beyond it the browser slows down and nothing is legible.
FULL_LIMIT = 2000
FULL_EDGE_LIMIT = 6000
# Rows of the table of locks: the most waited-for (and every lock of a cycle).
TABLE_LIMIT = 2000
# Timing charts for this many locks (those that spent the most time waiting and holding).
CHART_LIMIT = 24
COLUMN_ROWS = 8  # locks in one column beside a group of cycles

NODE_H = 38
NAME_CHARS = 26
SUB_CHARS = 30
FRAME_RE = re.compile(r"^(?P<file>.*):(?P<line>\d+) in (?P<func>.*)$")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _source_line(filename: str, line: int) -> str:
    """The text of a source line, when the file is readable here (else "")."""
    if not filename or line <= 0 or filename.startswith("<"):
        return ""
    try:
        return linecache.getline(filename, line).strip()
    except Exception:  # an unreadable or undecodable file is not the report's problem
        return ""


def _short_site(filename: str, line: int) -> str:
    return f"{os.path.basename(filename) or filename}:{line}"


# -- the graph ------------------------------------------------------------------------------------


@dataclass
class _Node:
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
        return _clip(self.name, NAME_CHARS)

    @property
    def sub(self) -> str:
        return _clip(f"{self.kind} · {_short_site(self.filename, self.line)}", SUB_CHARS)

    @property
    def width(self) -> float:
        # Estimated text widths of the 12px bold name and the 11px second line.
        return max(7.2 * len(self.label), 6.1 * len(self.sub), 48) + 20

    @property
    def acquisitions(self) -> int:
        return self.stats.acquisitions if self.stats else 0


class _Graph:
    """The site-level lock-order graph, with the edges and locks of every cycle marked."""

    def __init__(self, report: Report) -> None:
        snap = report.snapshot
        self.nodes: dict[str, _Node] = {}
        self.edges: dict[tuple[str, str], EdgeRecord] = {}
        self.succ: dict[str, set[str]] = {}
        self.pred: dict[str, set[str]] = {}
        self.cycle_edges: dict[tuple[str, str], list[int]] = {}
        for i, s in enumerate(snap.locks):
            self.nodes[s.key] = _Node(s.key, s.name, s.kind, s.filename, s.line, s, index=i)
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

    def _node(self, key: str, ref: Optional[LockRef] = None) -> _Node:
        node = self.nodes.get(key)
        if node is None:
            if ref is not None:
                name = ref.name.split("#")[0] if ref.instance is not None else ref.name
                node = _Node(key, name, ref.kind, ref.filename, ref.line, None)
            else:
                filename, _, kind = key.rpartition(":")
                filename, _, line = filename.rpartition(":")
                node = _Node(key, key, kind, filename, int(line) if line.isdigit() else 0, None)
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
class _Layout:
    pos: dict[str, tuple[float, float]]
    width: float
    height: float
    labels: list[tuple[float, float, str, str]] = field(default_factory=list)  # x, y, text, href
    # Group of each drawn lock: edges between groups are not drawn (they would cross the view).
    group: dict[str, int] = field(default_factory=dict)


PAD = 16


def _ring_positions(keys: list[str], g: _Graph) -> dict[str, tuple[float, float]]:
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


def _focus_layout(g: _Graph, report: Report, limit: int) -> tuple[_Layout, list[str], int]:
    """The cycles, each group of cycles that share locks on a ring, and the locks one edge away
    around it. Returns the layout, the keys drawn, and how many neighbours were left out."""
    cycles = report.potential_deadlocks
    order: list[str] = []
    for p in cycles:
        for lk in p.locks:
            if lk.key not in order:
                order.append(lk.key)
    # Groups: locks joined by cycle edges (union-find), in the order the cycles are listed.
    parent = {k: k for k in order}

    def find(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a, b in g.cycle_edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra
    groups: dict[str, list[str]] = {}
    for k in order:
        groups.setdefault(find(k), []).append(k)
    group_list = list(groups.values())
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
        pos = _ring_positions(grp, g)
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
    layout = _pack(boxes, max_width=1100)
    layout.group = layout_group
    keys = list(order) + [nb for i in sorted(chosen) for nb, _ in chosen[i]]
    return layout, keys, left_out


def _pack(boxes: list[tuple[Any, ...]], max_width: float) -> _Layout:
    """Shelf-pack the laid out groups in rows no wider than ``max_width``."""
    out = _Layout({}, 0, 0)
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


def _layered_layout(g: _Graph, keys: list[str], max_width: float = 1500) -> _Layout:
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
    out = _Layout({}, 0, 0)
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


def _overview_keys(g: _Graph, report: Report, limit: int) -> list[str]:
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


def _full_keys(g: _Graph, limit: int) -> tuple[list[str], int]:
    keys = list(g.nodes)
    if len(keys) <= limit:
        return keys, 0
    cyc = [k for k in keys if g.nodes[k].cycles]
    rest = sorted((k for k in keys if not g.nodes[k].cycles), key=lambda k: (-g.degree(k), k))
    keep = set(cyc + rest[: max(0, limit - len(cyc))])
    return [k for k in keys if k in keep], len(keys) - len(keep)


# -- SVG ------------------------------------------------------------------------------------------


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _box_exit(cx: float, cy: float, w: float, h: float, tx: float, ty: float, pad: float = 3) -> tuple[float, float]:
    """Where the ray from a box's centre towards (tx, ty) leaves the box (plus ``pad``)."""
    dx, dy = tx - cx, ty - cy
    if dx == 0 and dy == 0:
        return cx, cy
    t = min((w / 2 + pad) / abs(dx) if dx else math.inf, (h / 2 + pad) / abs(dy) if dy else math.inf)
    return cx + dx * t, cy + dy * t


def _edge_path(g: _Graph, a: str, b: str, pos: dict[str, tuple[float, float]]) -> str:
    (x0, y0), (x1, y1) = pos[a], pos[b]
    wa, wb = g.nodes[a].width, g.nodes[b].width
    if a == b:  # same-site nesting: a loop over the box
        top = y0 - NODE_H / 2
        return (f"M{_fmt(x0 - 14)},{_fmt(top)} C{_fmt(x0 - 34)},{_fmt(top - 42)} "
                f"{_fmt(x0 + 34)},{_fmt(top - 42)} {_fmt(x0 + 16)},{_fmt(top - 4)}")
    dx, dy = x1 - x0, y1 - y0
    dist = math.hypot(dx, dy)
    # Bend every edge to its left: A->B and B->A then never overlap.
    bend = min(0.18 * dist, 46.0)
    cx, cy = (x0 + x1) / 2 + dy / dist * bend, (y0 + y1) / 2 - dx / dist * bend
    sx, sy = _box_exit(x0, y0, wa, NODE_H, cx, cy)
    ex, ey = _box_exit(x1, y1, wb, NODE_H, cx, cy, pad=5)
    return f"M{_fmt(sx)},{_fmt(sy)} Q{_fmt(cx)},{_fmt(cy)} {_fmt(ex)},{_fmt(ey)}"


def _svg(g: _Graph, keys: Sequence[str], layout: _Layout, ident: str, scale_to_fit: bool,
         edge_limit: Optional[int] = None) -> tuple[str, int]:
    """The graph of ``keys`` as SVG, and how many edges between them were left out (beyond
    ``edge_limit``; the edges of cycles are always drawn)."""
    drawn = set(keys)
    pos = layout.pos
    w, h = math.ceil(layout.width), math.ceil(layout.height)
    # Scaled to the window, but never below a legible size: a narrow window scrolls instead.
    size = (f'width="100%" style="max-width:{w}px;min-width:{min(w, 720)}px"' if scale_to_fit
            else f'width="{w}" height="{h}"')
    out = [f'<svg id="{ident}" class="graph" viewBox="0 0 {w} {h}" {size} role="img" '
           f'aria-label="lock-order graph: {len(drawn)} locks">',
           "<defs>"]
    for cls in ("", "-cyc"):
        out.append(f'<marker id="{ident}-arrow{cls}" class="arrow{cls}" viewBox="0 0 10 10" refX="9" refY="5" '
                   'markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
                   '<path d="M0,0 L10,5 L0,10 z"/></marker>')
    out.append("</defs>")
    for x, y, text, href in layout.labels:
        label = f'<text class="group-title" x="{_fmt(x)}" y="{_fmt(y)}">{_e(text)}</text>'
        out.append(f'<a href="{_e(href)}">{label}</a>' if href else label)
    plain: list[str] = []
    marked: list[str] = []
    omitted = 0
    for (a, b), e in g.edges.items():
        if a not in drawn or b not in drawn:
            continue
        if layout.group and layout.group.get(a) != layout.group.get(b):
            continue
        cycles = g.cycle_edges.get((a, b))
        na, nb = g.nodes[a], g.nodes[b]
        tip = (f"{na.name} → {nb.name}: thread {e.thread} held {na.name} and waited for {nb.name} "
               f"({plural(e.count, 'time')}{', timed acquire' if e.timed else ''}"
               f"{', during ' + e.context if e.context else ''})")
        if cycles:
            tip += " — in potential deadlock " + ", ".join(str(n) for n in cycles)
        cls = "edge" + (" cyc" if cycles else "") + (" timed" if e.timed else "")
        marker = f"url(#{ident}-arrow{'-cyc' if cycles else ''})"
        path = (f'<path class="{cls}" d="{_edge_path(g, a, b, pos)}" marker-end="{marker}">'
                f"<title>{_e(tip)}</title></path>")
        if cycles:
            marked.append(path)
        elif edge_limit is None or len(plain) < edge_limit:
            plain.append(path)
        else:
            omitted += 1
    out.extend(plain)
    out.extend(marked)  # on top
    for k in keys:
        node = g.nodes[k]
        x, y = pos[k]
        nw = node.width
        s = node.stats
        tips = [f"{node.name} ({node.kind})", f"created at {short_path(node.filename)}:{node.line}"]
        src = _source_line(node.filename, node.line)
        if src:
            tips.append(src)
        if s is not None:
            tips.append(f"{s.acquisitions} acquisitions, {s.contended} contended")
        if node.cycles:
            tips.append("in potential deadlock " + ", ".join(str(n) for n in node.cycles))
        cls = "node" + (" cyc" if node.cycles else "")
        href = f"#cycle-{node.cycles[0]}" if node.cycles else (f"#lock-{node.index}" if node.index is not None else "")
        body = (f'<g class="{cls}" data-key="{_e(k)}"><title>{_e(chr(10).join(tips))}</title>'
                f'<rect x="{_fmt(x - nw / 2)}" y="{_fmt(y - NODE_H / 2)}" width="{_fmt(nw)}" height="{NODE_H}" rx="7"/>'
                f'<text class="name" x="{_fmt(x)}" y="{_fmt(y - 3)}">{_e(node.label)}</text>'
                f'<text class="sub" x="{_fmt(x)}" y="{_fmt(y + 12)}">{_e(node.sub)}</text></g>')
        out.append(f'<a href="{_e(href)}">{body}</a>' if href else body)
    out.append("</svg>")
    return "\n".join(out), omitted


# -- sections -------------------------------------------------------------------------------------


def _graph_section(g: _Graph, report: Report) -> str:
    out = ['<section id="graph-section"><h2>Lock-order graph</h2>']
    if not g.nodes:
        out.append('<p class="muted">No locks were recorded: nothing to draw.</p></section>')
        return "\n".join(out)
    legend = ('<p class="legend"><span class="key-node"></span> lock (creation site) '
              '<span class="key-edge"></span> A → B: a thread held A and waited for B '
              + ('<span class="key-edge cyc"></span> edge of a potential deadlock '
                 if report.potential_deadlocks else "")
              + '<span class="key-edge timed"></span> timed acquire (can stall, not hang)</p>')
    if report.potential_deadlocks:
        layout, keys, left_out = _focus_layout(g, report, FOCUS_LIMIT)
        near = len(keys) - len({lk.key for p in report.potential_deadlocks for lk in p.locks})
        caption = (f"The locks of the {plural(len(report.potential_deadlocks), 'potential deadlock')} "
                   f"and {plural(near, 'lock')} one edge away")
        if left_out:
            caption += f" ({left_out} more one edge away not drawn)"
        caption += f"; {len(keys)} of {plural(len(g.nodes), 'lock')}. Click a lock of a cycle for its details."
    else:
        keys = _overview_keys(g, report, OVERVIEW_LIMIT)
        layout = _layered_layout(g, keys, max_width=1100)
        caption = (f"No cycles. The {len(keys)} most contended and most connected of "
                   f"{plural(len(g.nodes), 'lock')}, earlier-taken locks above later ones.")
    full, not_drawn = _full_keys(g, FULL_LIMIT)
    whole = len(keys) < len(g.nodes)
    out.append(legend)
    if whole:
        back = ("Show the cycles and their neighbourhood" if report.potential_deadlocks
                else "Show the most contended and connected locks")
        out.append(f'<p><button type="button" id="graph-toggle" data-other="{back}">'
                   f"Show the whole graph ({plural(len(g.nodes), 'lock')}, "
                   f"{plural(len(g.edges), 'edge')})</button></p>")
    focus_svg, _ = _svg(g, keys, layout, "gf", True)
    out.append(f'<div id="graph-focus"><p class="caption">{_e(caption)}</p>'
               f'<div class="graph-box">{focus_svg}</div></div>')
    if whole:
        full_svg, edges_left = _svg(g, full, _layered_layout(g, full), "gw", False, FULL_EDGE_LIMIT)
        left = []
        if not_drawn:
            left.append(f"the {plural(not_drawn, 'least connected lock')}")
        if edges_left:
            left.append(plural(edges_left, "edge") + " outside cycles")
        note = ("Whole graph, earlier-taken locks above later ones; scroll to explore."
                + (f" Left out: {' and '.join(left)}." if left else ""))
        # A template is not rendered (nor its nodes counted by the browser) until it is shown.
        out.append(f'<template id="graph-full-template"><p class="caption">{_e(note)}</p>'
                   f'<div class="graph-box scroll">{full_svg}</div></template>'
                   f'<div id="graph-full" hidden></div>')
    out.append("</section>")
    return "\n".join(out)


def _stack_html(frames: Sequence[str]) -> str:
    if not frames:
        return '<p class="muted">(stack not recorded)</p>'
    items = []
    for f in frames:
        m = FRAME_RE.match(f)
        if m:
            file, line, func = m.group("file"), int(m.group("line")), m.group("func")
            src = _source_line(file, line)
            items.append(f'<li><span class="frame"><span class="where">{_e(short_path(file))}:{line}</span> '
                         f'in <span class="func">{_e(func)}</span></span>'
                         + (f'<code class="src">{_e(src)}</code>' if src else "") + "</li>")
        else:
            items.append(f'<li><span class="frame">{_e(f)}</span></li>')
    return '<ol class="stack">' + "".join(items) + "</ol>"


def _badges(p: PotentialDeadlock) -> str:
    out = [f'<span class="badge {_e(p.scope)}" title="scope">{_e(p.scope)}</span>']
    label, cls = BADGES.get(p.triage, (p.triage, "mild"))
    out.append(f'<span class="badge {cls}">{_e(label)}</span>')
    if p.origin == "stdlib":
        out.append('<span class="badge mild">standard library</span>')
    if p.suppressed is not None:
        out.append('<span class="badge mild">suppressed</span>')
    if p.known:
        out.append('<span class="badge mild">known (baseline)</span>')
    if p.occurrences > 1:
        out.append(f'<span class="badge mild">{p.occurrences} cycles through these sites</span>')
    return " " + " ".join(out)


def _cycle_panel(n: int, p: PotentialDeadlock) -> str:
    soft = "" if p.fails else " soft"  # timed, guarded, suppressed, known: cannot fail a run
    out = [f'<details class="cycle{soft}" id="cycle-{n}"><summary>'
           f'<span class="num">{n}</span> <span class="title">{_e(cycle_title(p).replace(" -> ", " → "))}</span> '
           + _badges(p)
           + f' <span class="muted small">threads: {_e(", ".join(p.threads))}</span></summary>',
           f'<div class="panel"><p>{_e(SCOPE_TEXT.get(p.scope, ""))} '
           f'<span class="muted small">fingerprint <code>{_e(p.fingerprint)}</code></span></p>']
    reasons = list(p.reasons)
    if p.suppressed is not None:
        reasons.append(f"suppressed: {p.suppressed}")
    if p.known:
        reasons.append(KNOWN_REASON)
    if reasons:
        out.append('<ul class="reasons">' + "".join(f"<li>{_e(r)}</li>" for r in reasons) + "</ul>")
    out += [
           '<h4>Locks in the cycle</h4><div class="scroll-x"><table class="plain"><thead><tr>'
           "<th>lock</th><th>kind</th><th>created at</th><th>source</th></tr></thead><tbody>"]
    for lk in p.locks:
        inst = f' <span class="muted small">instance #{lk.instance}</span>' if lk.instance is not None else ""
        src = _source_line(lk.filename, lk.line)
        out.append(f'<tr><td class="name">{_e(lk.name)}{inst}</td><td>{_e(lk.kind)}</td>'
                   f'<td class="mono">{_e(short_path(lk.filename))}:{lk.line}</td>'
                   f'<td>{f"<code class=src>{_e(src)}</code>" if src else "<span class=muted>(source not readable here)</span>"}</td></tr>')
    out.append("</tbody></table></div><h4>How each lock was taken while another was held</h4>"
               '<p class="muted small">Stacks are innermost frame last, with the source line when '
               "the file is readable here.</p>")
    for k, e in enumerate(p.edges):
        a, b = p.locks[k], p.locks[(k + 1) % len(p.locks)]
        facts = [plural(e.count, "time")]
        if e.timed:
            facts.append('<span class="badge timed">timed acquire: can stall, not hang</span>')
        if e.context:
            facts.append(f"during <code>{_e(e.context)}</code>")
        out.append(f'<div class="edge-detail"><p><b>{_e(a.name)} → {_e(b.name)}</b>: thread '
                   f'<code>{_e(e.thread)}</code> held {_e(a.name)} and waited for {_e(b.name)} '
                   f'({", ".join(facts)})</p><div class="stacks">'
                   f'<div><h5>{_e(a.name)} was taken at</h5>{_stack_html(e.held_stack)}</div>'
                   f'<div><h5>then {_e(b.name)} was taken at</h5>{_stack_html(e.acquire_stack)}</div>'
                   "</div></div>")
    out.append("</div></details>")
    return "\n".join(out)


def _cycles_section(report: Report) -> str:
    found = report.potential_deadlocks
    if not found:
        return ('<section id="cycles"><h2>Potential deadlocks</h2><p class="ok">No lock-order '
                "inversions: no lock was taken both before and after another.</p></section>")
    out = [f'<section id="cycles"><h2>Potential deadlocks <span class="count">{len(found)}</span></h2>',
           '<p class="muted">Each is a cycle of the lock-order graph: a run that never hung can still '
           'show the inversion that hangs another. Open one for its locks and stacks. '
           '<button type="button" class="linkish" id="open-all">open all</button> · '
           '<button type="button" class="linkish" id="close-all">close all</button></p>']
    out.extend(_cycle_panel(n, p) for n, p in enumerate(found, 1))
    if report.cycles_not_listed:
        out.append(f'<p class="muted">{report.cycles_not_listed} strongly connected group(s) have more '
                   "cycles than are listed; the shortest are shown.</p>")
    out.append("</section>")
    return "\n".join(out)


def _violations_section(report: Report) -> str:
    found = report.violations
    if not found:
        return ""
    out = [f'<section id="violations"><h2>Declared lock order violations <span class="count">{len(found)}</span></h2>',
           '<p class="muted">Acquisitions against an order declared with <code>lockwatch.order()</code> '
           'or <code>lockwatch.order_key()</code>, at the first acquisition that broke it.</p>']
    for v in found:
        held, acq = v.held, v.acquired
        declared = v.declared
        if v.kind == "declared-order":
            what = "the declared order " + " → ".join(declared)
        else:
            what = "the order key of their site" + (f" ({declared[0]} is held, {declared[1]} is taken)"
                                                    if len(declared) >= 2 else "")
        ctx = f', during <code>{_e(v.context)}</code>' if v.context else ""
        out.append(f'<div class="card alert"><p>thread <code>{_e(v.thread)}</code> took '
                   f'{_lock_desc(acq)} while holding {_lock_desc(held)}, against {_e(what)}{ctx}</p>'
                   f'<div class="stacks"><div><h5>{_e(_name(held))} was taken at</h5>'
                   f'{_stack_html(v.held_stack)}</div>'
                   f'<div><h5>then {_e(_name(acq))} was taken at</h5>'
                   f'{_stack_html(v.acquire_stack)}</div></div></div>')
    out.append("</section>")
    return "\n".join(out)


def _baseline_section(report: Report) -> str:
    gone = report.baseline_gone
    if not gone:
        return ""
    items = "".join(f'<li><code>{_e(entry.fingerprint)}</code> {_e("; ".join(entry.locks))}</li>'
                    for entry in gone)
    return (f'<section id="baseline"><h2>In the baseline, no longer seen <span class="count">{len(gone)}'
            '</span></h2><p class="muted">Fixed, or not exercised by this run: remove them from the '
            f'baseline once fixed.</p><ul class="plain-list">{items}</ul></section>')


def _name(lock: LockInfo) -> str:
    return "?" if lock.name is None else lock.name


def _lock_desc(lock: LockInfo) -> str:
    return (f'<b>{_e(_name(lock))}</b>'
            + (f' <span class="muted">({_e(lock.kind or "")}, created at '
               f'<span class="mono">{_e(short_path(lock.site))}</span>)</span>' if lock.site else ""))


def _deadlocks_section(report: Report) -> str:
    if not report.deadlocks and not report.alerts:
        return ""
    out = ['<section id="real"><h2>What really happened</h2>']
    for n, d in enumerate(report.deadlocks, 1):
        threads = d.threads
        over = f" for more than {d.timeout_s:g} s" if d.timeout_s is not None else ""
        if d.waits_for_itself:
            head = f"Deadlock {n}: thread {threads[0].name!r} waited{over} for a lock it holds itself"
        else:
            head = f"Deadlock {n}: {plural(len(threads), 'thread')} waited for each other{over}"
        out.append(f'<div class="card alert deadlock" id="deadlock-{n}"><h3>{_e(head)}</h3>')
        if d.victim:
            out.append(f"<p>lockwatch.DeadlockError was raised in thread <code>{_e(d.victim)}</code> to break the cycle.</p>")
        for t in threads:
            line = f'thread <code>{_e(t.name)}</code>'
            if t.waiting_for:
                line += f' waits for {_lock_desc(t.waiting_for)}'
            if t.waiting_s is not None:
                line += f' since {t.waiting_s:.1f} s'
            if t.blocked_by:
                line += f', blocked by thread <code>{_e(t.blocked_by)}</code>'
            holds = "".join(f'<li>holds {_lock_desc(h)}'
                            + (f' <span class="muted">taken at <span class="mono">{_e(short_path(h.taken_at))}</span></span>'
                               if h.taken_at else "") + "</li>"
                            for h in t.holds)
            stack = t.stack
            out.append(f'<div class="thread"><p>{line}</p>'
                       + (f'<ul class="holds">{holds}</ul>' if holds else "")
                       + f'<details><summary>stack ({plural(len(stack), "frame")})</summary>'
                       f'{_stack_html(stack)}</details></div>')
        out.append("</div>")
    if report.alerts:
        out.append(f"<h3>{plural(len(report.alerts), 'long hold/wait alert')}</h3>")
    for a in report.alerts:
        secs_text = f"{a.seconds:.1f} s"
        if a.kind == "long-hold":
            head = (f'{_lock_desc(a.lock)} was held for {secs_text} by thread '
                    f'<code>{_e(a.thread)}</code>'
                    + (f' (taken at <span class="mono">{_e(short_path(a.taken_at))}</span>)'
                       if a.taken_at else ""))
        else:
            head = (f'thread <code>{_e(a.thread)}</code> waited {secs_text} for '
                    f'{_lock_desc(a.lock)}'
                    + (f', held by thread <code>{_e(a.holder)}</code>' if a.holder else ""))
        out.append(f'<div class="card alert"><p><span class="badge">{_e(a.kind)}</span> {head}</p>'
                   f'<details><summary>stack</summary>{_stack_html(a.stack)}</details>'
                   + (f'<details><summary>holder\'s stack</summary>{_stack_html(a.holder_stack)}</details>'
                      if a.holder_stack else "")
                   + "</div>")
    out.append("</section>")
    return "\n".join(out)


def _num(v: float, text: str) -> str:
    return f'<td class="n" data-v="{v}">{_e(text)}</td>'


def _locks_section(report: Report, g: _Graph) -> str:
    locks = report.snapshot.locks
    out = ['<section id="locks"><h2>Locks <span class="count">' + str(len(locks)) + "</span></h2>"]
    if not locks:
        out.append('<p class="muted">No instrumented lock was created.</p></section>')
        return "\n".join(out)
    out.append('<p class="muted">One row per creation site (all its instances). Click a heading to '
               'sort. Percentiles come from √2-wide histogram buckets (within 19%); counts and '
               'maxima are exact.</p>')
    cols = [("lock", "text"), ("kind", "text"), ("created at", "text"), ("instances", "num"),
            ("acquired", "num"), ("contended", "num"), ("failed", "num"),
            ("wait p50", "num"), ("wait p90", "num"), ("wait p99", "num"), ("wait max", "num"),
            ("hold p50", "num"), ("hold p90", "num"), ("hold p99", "num"), ("hold max", "num")]
    out.append('<div class="scroll-x"><table class="sortable data" id="lock-table"><thead><tr>')
    for label, how in cols:
        out.append(f'<th data-sort="{how}" aria-sort="none"><button type="button">{_e(label)}</button></th>')
    out.append("</tr></thead><tbody>")
    order = sorted(range(len(locks)), key=lambda i: (-locks[i].wait.total_ns, -locks[i].contended,
                                                     -locks[i].acquisitions, i))
    in_cycles = [i for i in order[TABLE_LIMIT:] if g.nodes[locks[i].key].cycles]
    order = order[:max(0, TABLE_LIMIT - len(in_cycles))] + in_cycles  # every lock of a cycle has a row
    for i in order:
        s = locks[i]
        node = g.nodes.get(s.key)
        mark = (' <a class="cyc-mark" href="#cycle-' + str(node.cycles[0]) + '" title="in potential deadlock '
                + ", ".join(str(n) for n in node.cycles) + '">●</a>') if node and node.cycles else ""
        pct = f" ({100 * s.contended / s.acquisitions:.0f}%)" if s.acquisitions and s.contended else ""
        cells = [f'<td class="name" data-v="{_e(s.name)}">{_e(s.name)}{mark}'
                 + (' <span class="badge">signal</span>' if s.signal else "") + "</td>",
                 f"<td>{_e(s.kind)}</td>",
                 f'<td class="mono" data-v="{_e(s.site)}" title="{_e(_source_line(s.filename, s.line))}">'
                 f"{_e(short_path(s.filename))}:{s.line}</td>",
                 _num(s.instances, str(s.instances)), _num(s.acquisitions, str(s.acquisitions)),
                 _num(s.contended, f"{s.contended}{pct}"), _num(s.failed, str(s.failed))]
        for t in (s.wait, s.hold):
            for q in (0.5, 0.9, 0.99):
                v = t.percentile_ns(q)
                cells.append(_num(v, fmt_ns(v) if t.count else "–"))
            cells.append(_num(t.max_ns, fmt_ns(t.max_ns) if t.count or t.max_ns else "–"))
        out.append(f'<tr id="lock-{i}">' + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    if len(order) < len(locks):
        out.append(f'<p class="muted">The {len(locks) - len(order)} locks waited for least are not '
                   "listed (the JSON report has them all).</p>")
    out.append("</section>")
    return "\n".join(out)


def _chart(s: LockStats, lo: int, hi: int, ticks: list[int]) -> str:
    width, plot_h, top = 320.0, 40.0, 8.0
    n = hi - lo + 1
    bw = width / n
    axis = top + plot_h + 2
    bars = []
    for t, cls, up in ((s.hold, "hold", True), (s.wait, "wait", False)):
        peak = max(t.buckets[lo:hi + 1], default=0)
        if not peak:
            continue
        for i in range(lo, hi + 1):
            c = t.buckets[i]
            if not c:
                continue
            bh = max(1.5, plot_h * c / peak)
            low, high = histogram.bucket_bounds(i)
            y = axis - 1 - bh if up else axis + 1
            bars.append(f'<rect class="{cls}" x="{_fmt((i - lo) * bw + 0.5)}" y="{_fmt(y)}" '
                        f'width="{_fmt(max(bw - 1, 1))}" height="{_fmt(bh)}"><title>{cls} '
                        f"{_e(fmt_ns(low))}–{_e(fmt_ns(high))}: {c}</title></rect>")
    grid = []
    total_h = axis + plot_h + 4 + 14
    for v in ticks:
        x = (histogram.bucket_of(v) - lo) * bw
        grid.append(f'<line class="tick" x1="{_fmt(x)}" x2="{_fmt(x)}" y1="{_fmt(top)}" y2="{_fmt(axis + plot_h + 2)}"/>'
                    f'<text class="tick" x="{_fmt(x)}" y="{_fmt(total_h - 3)}">{_e(fmt_ns(v))}</text>')
    return (f'<svg class="hist" viewBox="-6 0 {_fmt(width + 12)} {_fmt(total_h)}" width="100%" '
            f'role="img" aria-label="hold and wait time distribution of {_e(s.name)}">'
            + "".join(grid)
            + f'<line class="axis" x1="0" x2="{_fmt(width)}" y1="{_fmt(axis)}" y2="{_fmt(axis)}"/>'
            + "".join(bars) + "</svg>")


def _timing_text(t: Timing) -> str:
    if not t.count:
        return "none"
    return (f"n={t.count}, p50 {fmt_ns(t.percentile_ns(0.5))}, p99 {fmt_ns(t.percentile_ns(0.99))}, "
            f"max {fmt_ns(t.max_ns)}")


def _charts_section(report: Report) -> str:
    rows = [s for s in report.snapshot.locks if any(s.hold.buckets) or any(s.wait.buckets)]
    if not rows:
        return ""
    rows.sort(key=lambda s: (-(s.wait.total_ns + s.hold.total_ns), s.key))
    shown = rows[:CHART_LIMIT]
    nonzero = [i for s in shown for t in (s.hold, s.wait) for i, c in enumerate(t.buckets) if c]
    lo, hi = max(0, min(nonzero) - 1), max(nonzero) + 1
    # Decades inside the shared range, as tick marks.
    ticks = [10 ** k for k in range(0, 19) if lo <= histogram.bucket_of(10 ** k) <= hi]
    out = ['<section id="timing"><h2>Wait and hold times</h2>',
           '<p class="muted">Distribution of each lock\'s hold times (<span class="sw hold"></span> up) and '
           'wait times when contended (<span class="sw wait"></span> down), on one logarithmic time axis; '
           'each series is scaled to its own peak. '
           + (f"The {len(shown)} of {len(rows)} locks with the most time spent waiting and holding." if len(rows) > len(shown) else "")
           + '</p><div class="charts">']
    for s in shown:
        out.append(f'<figure class="card chart"><figcaption><b>{_e(_clip(s.name, 40))}</b> '
                   f'<span class="muted small">{_e(s.kind)} · {_e(_short_site(s.filename, s.line))}</span>'
                   f'<span class="small"><span class="sw hold"></span>hold {_e(_timing_text(s.hold))}</span>'
                   f'<span class="small"><span class="sw wait"></span>wait {_e(_timing_text(s.wait))}</span>'
                   f"</figcaption>{_chart(s, lo, hi, ticks)}</figure>")
    out.append("</div></section>")
    return "\n".join(out)


def _headline_cycles(report: Report) -> list[PotentialDeadlock]:
    """The potential deadlocks the headline counts (as the text report): the program's own, not
    suppressed. The others are listed too, labelled."""
    return [p for p in report.potential_deadlocks
            if p.origin == "user" and p.suppressed is None]


def _summary(report: Report, g: _Graph) -> str:
    snap = report.snapshot
    found = _headline_cycles(report)
    tiles = [(len(found), "potential deadlock", "bad" if found else "good", "#cycles"),
             (len(report.deadlocks), "real deadlock", "bad" if report.deadlocks else "", "#real"),
             (len(report.alerts), "long hold/wait", "warn" if report.alerts else "", "#real"),
             (len(snap.locks), "lock creation site", "", "#locks"),
             (sum(s.acquisitions for s in snap.locks), "acquisition", "", "#locks"),
             (len(snap.site_edges), "lock-order edge", "", "#graph-section")]
    out = ['<div class="tiles">']
    for n, word, cls, href in tiles:
        if word in ("real deadlock", "long hold/wait") and not n:
            continue
        many = "long holds/waits" if word == "long hold/wait" else ""
        label = plural(n, word, many).split(" ", 1)[1]
        out.append(f'<a class="tile {cls}" href="{href}"><span class="big">{n:,}</span> {_e(label)}</a>')
    out.append("</div>")
    counts: dict[str, int] = {}
    for p in found:
        counts[p.triage] = counts.get(p.triage, 0) + 1
    facts = [f"{n} {BADGES.get(t, (t, ''))[0]}" for t, n in counts.items()]
    others = report.potential_deadlocks
    stdlib = sum(1 for p in others if p.origin == "stdlib" and p.suppressed is None)
    suppressed = sum(1 for p in others if p.suppressed is not None)
    known = sum(1 for p in others if p.known)
    failing = sum(1 for p in others if p.fails)
    if stdlib:
        facts.append(f"also {stdlib} in the standard library")
    if suppressed:
        facts.append(f"{suppressed} suppressed")
    if known:
        facts.append(f"{known} known from the baseline")
    violations = len(report.violations)
    if violations:
        facts.append(plural(violations, "declared lock order violation"))
    if others:
        facts.append(f"{failing} would fail a run" if failing != 1 else "1 would fail a run")
    if facts:
        out.append('<p class="triage">' + _e(" · ".join(facts)) + "</p>")
    meta = snap.meta or {}
    facts = []
    if meta.get("merged"):
        facts.append(f"merged from {meta['merged']} reports")
    if meta.get("argv"):
        argv = meta["argv"]
        facts.append("program: <code>" + _e(" ".join(map(str, argv)) if isinstance(argv, list) else argv) + "</code>")
    if meta.get("python"):
        facts.append(f"Python {_e(meta['python'])}")
    if isinstance(meta.get("duration_s"), (int, float)):
        facts.append(f"ran {meta['duration_s']:.2f} s")
    if meta.get("pid"):
        facts.append(f"pid {_e(meta['pid'])}")
    if facts:
        out.append('<p class="muted small">' + " · ".join(facts) + "</p>")
    if snap.internal_errors:
        out.append(f'<p class="warn-text">{plural(len(snap.internal_errors), "internal error")} while recording '
                   f"(first: {_e(snap.internal_errors[0])})</p>")
    return "\n".join(out)


CSS = """
:root{--bg:#f6f6f3;--fg:#23262b;--muted:#6b7078;--card:#fff;--line:#e2e2dc;--accent:#35618f;
--red:#c6372c;--red-bg:#fbeceb;--green:#2f7d4f;--amber:#b7791f;--hold:#4b8bbe;--wait:#d68a2e;
--node:#fff;--node-line:#9aa3ad;--edge:#a7adb5;--code:#f1f1ec;--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
@media (prefers-color-scheme:dark){:root{--bg:#1b1d21;--fg:#e3e4e6;--muted:#9aa0a8;--card:#24272c;
--line:#363a41;--accent:#8db4e0;--red:#f0695d;--red-bg:#3a2523;--node:#2b2f35;--node-line:#6b737d;
--edge:#6b727c;--code:#2d3137}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1180px;margin:0 auto;padding:24px 20px 60px}
header h1{font-size:1.55rem;margin:0 0 4px;font-weight:650;letter-spacing:-.01em}
header .tag{color:var(--muted);margin:0 0 16px}
h2{font-size:1.2rem;margin:34px 0 8px;font-weight:620}
h3{font-size:1.02rem;margin:6px 0 8px}
h4{font-size:.92rem;margin:16px 0 6px;color:var(--muted);font-weight:600;text-transform:uppercase;letter-spacing:.04em}
h5{font-size:.85rem;margin:4px 0;font-weight:600}
a{color:var(--accent)}
code,.mono{font-family:var(--mono);font-size:.86em}
code{background:var(--code);padding:1px 4px;border-radius:4px}
.muted{color:var(--muted)}.small{font-size:.85em}.ok{color:var(--green)}.warn-text{color:var(--amber)}
.count{display:inline-block;min-width:1.6em;padding:0 .45em;border-radius:1em;background:var(--line);font-size:.8em;text-align:center}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:6px 0 10px}
.tile{flex:1 1 150px;background:var(--card);border:1px solid var(--line);border-radius:10px;padding:10px 14px;
color:var(--fg);text-decoration:none}
.tile .big{display:block;font-size:1.6rem;font-weight:650;line-height:1.2}
.tile.bad{border-color:var(--red);background:var(--red-bg)}.tile.bad .big{color:var(--red)}
.tile.good .big{color:var(--green)}.tile.warn .big{color:var(--amber)}
section{margin-top:8px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 16px;margin:10px 0}
.graph-box{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:8px;overflow:auto}
.graph-box.scroll{overflow:auto;max-height:85vh}
.caption{margin:4px 0;color:var(--muted);font-size:.92em}
.legend{font-size:.82em;color:var(--muted);display:flex;flex-wrap:wrap;gap:4px 14px;align-items:center;margin:4px 0 10px}
.key-node{display:inline-block;width:22px;height:12px;border:1.5px solid var(--node-line);border-radius:3px;vertical-align:middle;margin-right:4px}
.key-edge{display:inline-block;width:26px;border-top:2px solid var(--edge);vertical-align:middle;margin-right:4px}
.key-edge.cyc{border-top:3px solid var(--red)}.key-edge.timed{border-top-style:dashed}
svg.graph{display:block;height:auto;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
svg.graph .node rect{fill:var(--node);stroke:var(--node-line);stroke-width:1.3}
svg.graph .node.cyc rect{stroke:var(--red);stroke-width:2.2;fill:var(--red-bg)}
svg.graph .node text{text-anchor:middle;fill:var(--fg)}
svg.graph .node .name{font-size:12px;font-weight:650}
svg.graph .node .sub{font-size:10.5px;fill:var(--muted)}
svg.graph a:hover rect,svg.graph a:focus rect{stroke:var(--accent);stroke-width:2.5}
svg.graph .edge{fill:none;stroke:var(--edge);stroke-width:1.3}
svg.graph .edge.cyc{stroke:var(--red);stroke-width:2.6}
svg.graph .edge.timed{stroke-dasharray:6 4}
svg.graph .edge:hover{stroke-width:3.5}
svg.graph marker path{fill:var(--edge)}svg.graph marker.arrow-cyc path{fill:var(--red)}
svg.graph .group-title{font-size:13px;font-weight:600;fill:var(--red)}
button{font:inherit;cursor:pointer}
#graph-toggle{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:5px 12px;color:var(--accent)}
#graph-toggle:hover{border-color:var(--accent)}
.linkish{background:none;border:0;padding:0;color:var(--accent);text-decoration:underline}
details.cycle{background:var(--card);border:1px solid var(--line);border-left:4px solid var(--red);border-radius:10px;margin:10px 0}
details.cycle>summary{padding:10px 14px;cursor:pointer;list-style:none}
details.cycle>summary::-webkit-details-marker{display:none}
details.cycle>summary::before{content:"▸";display:inline-block;width:1.1em;color:var(--muted)}
details.cycle[open]>summary::before{content:"▾"}
details.cycle>summary .num{font-weight:700;color:var(--red)}
details.cycle.soft{border-left-color:var(--node-line)}details.cycle.soft>summary .num{color:var(--muted)}
details.cycle>summary .title{font-weight:600;word-break:break-word}
details.cycle[open]>summary{border-bottom:1px solid var(--line)}
details.cycle:target{box-shadow:0 0 0 3px var(--red-bg)}
.panel{padding:4px 16px 14px}
.badge{display:inline-block;font-size:.75em;padding:0 .5em;border-radius:4px;background:var(--line);color:var(--fg);vertical-align:1px}
.badge.timed,.badge.mild{background:var(--line)}.badge.risk{background:var(--red);color:#fff}
.badge.warn{background:var(--amber);color:#fff}.badge.site{background:none;border:1px solid var(--amber);color:var(--amber)}
.badge.instance{background:none;border:1px solid var(--red);color:var(--red)}
ul.reasons{margin:4px 0 8px;padding-left:1.3em;font-size:.92em}ul.plain-list{font-size:.9em}
.triage{margin:2px 0;font-size:.92em}
.edge-detail{border-top:1px dashed var(--line);padding-top:6px;margin-top:10px}
.stacks{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:8px 20px}
ol.stack{margin:0;padding:0 0 0 2.2em;font-size:.86em}
ol.stack li{margin:2px 0}
ol.stack .where{font-family:var(--mono)}ol.stack .func{font-family:var(--mono);font-weight:600}
code.src{display:block;background:var(--code);margin:1px 0 3px;white-space:pre-wrap;word-break:break-word}
.scroll-x{overflow-x:auto}
table.plain td{white-space:nowrap}table.plain code.src{white-space:pre}
table{border-collapse:collapse;font-size:.88em;width:100%}
th,td{padding:5px 9px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.name{font-weight:600;white-space:nowrap}
table.data{background:var(--card);border:1px solid var(--line);border-radius:10px}
table.data tbody tr:hover{background:var(--bg)}
table.data tr:target{background:var(--red-bg)}
th{white-space:nowrap;font-weight:600;color:var(--muted);font-size:.92em}
th button{background:none;border:0;padding:0;color:inherit;font-weight:inherit}
th[aria-sort=ascending] button::after{content:" ▲"}th[aria-sort=descending] button::after{content:" ▼"}
th[aria-sort=ascending],th[aria-sort=descending]{color:var(--fg)}
.cyc-mark{color:var(--red);text-decoration:none;font-size:.8em}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:12px}
figure.chart{margin:0}
figure.chart figcaption{display:flex;flex-direction:column;gap:1px;margin-bottom:4px}
svg.hist{display:block;height:auto}
svg.hist .hold{fill:var(--hold)}svg.hist .wait{fill:var(--wait)}
svg.hist .axis{stroke:var(--muted);stroke-width:1}
svg.hist .tick{stroke:var(--line);stroke-width:1}
svg.hist text.tick{stroke:none;fill:var(--muted);font-size:9px;text-anchor:middle;font-family:system-ui,sans-serif}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
.sw.hold{background:var(--hold)}.sw.wait{background:var(--wait)}
.alert{border-left:4px solid var(--amber)}.alert.deadlock{border-left-color:var(--red)}
.thread{margin:8px 0}.thread p{margin:4px 0}ul.holds{margin:2px 0 4px;padding-left:1.4em;font-size:.9em}
footer{margin-top:40px;color:var(--muted);font-size:.8em}
@media (max-width:640px){main{padding:14px 10px 40px}body{font-size:14px}.panel{padding:4px 8px 10px}
details.cycle>summary{padding:8px 8px}.stacks{grid-template-columns:1fr}.tile{flex-basis:120px}}
"""

JS = """
(function(){
  function openTarget(){
    var id = decodeURIComponent(location.hash.slice(1));
    if (id === 'whole-graph') { showGraph(true); return; }
    var el = id && document.getElementById(id);
    if (!el) return;
    for (var p = el; p; p = p.parentElement) { if (p.tagName === 'DETAILS') p.open = true; }
    el.scrollIntoView();
  }
  var toggle = document.getElementById('graph-toggle');
  var focus = document.getElementById('graph-focus');
  var full = document.getElementById('graph-full');
  function showGraph(whole){
    if (!toggle || !full) return;
    if (whole && !full.firstChild) {
      full.appendChild(document.getElementById('graph-full-template').content.cloneNode(true));
    }
    var shown = !full.hidden;
    if (whole === shown) return;
    full.hidden = !whole; focus.hidden = whole;
    var text = toggle.getAttribute('data-other');
    toggle.setAttribute('data-other', toggle.textContent); toggle.textContent = text;
  }
  if (toggle) toggle.addEventListener('click', function(){ showGraph(full.hidden); });
  function setAll(open){ document.querySelectorAll('details.cycle').forEach(function(d){ d.open = open; }); }
  var oa = document.getElementById('open-all'), ca = document.getElementById('close-all');
  if (oa) oa.addEventListener('click', function(){ setAll(true); });
  if (ca) ca.addEventListener('click', function(){ setAll(false); });
  document.querySelectorAll('table.sortable').forEach(function(table){
    var heads = table.querySelectorAll('th');
    heads.forEach(function(th, col){
      th.querySelector('button').addEventListener('click', function(){
        var num = th.getAttribute('data-sort') === 'num';
        var was = th.getAttribute('aria-sort');
        // The first click sorts numbers largest first and text A to Z; the next one reverses.
        var now = was === 'none' ? (num ? 'descending' : 'ascending') : (was === 'ascending' ? 'descending' : 'ascending');
        var dir = now === 'ascending' ? 1 : -1;
        heads.forEach(function(h){ h.setAttribute('aria-sort', 'none'); });
        th.setAttribute('aria-sort', now);
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        function key(r){ var c = r.cells[col]; var v = c.getAttribute('data-v'); return v === null ? c.textContent : v; }
        rows.sort(function(a, b){
          var x = key(a), y = key(b);
          var d = num ? (parseFloat(x) - parseFloat(y)) : String(x).localeCompare(String(y));
          return d * dir;
        });
        rows.forEach(function(r){ body.appendChild(r); });
      });
    });
  });
  window.addEventListener('hashchange', openTarget);
  openTarget();
  document.documentElement.setAttribute('data-ready', 'yes');
})();
"""


def render(report: Report, **options: Any) -> str:
    """The whole report as one HTML page that needs nothing else: no network, no files."""
    g = _Graph(report)
    found = _headline_cycles(report)
    if report.deadlocks:
        headline = f"{plural(len(report.deadlocks), 'real deadlock')} happened"
        if found:
            headline += f", and {plural(len(found), 'potential deadlock')} found"
    elif found:
        headline = f"{plural(len(found), 'potential deadlock')} (lock-order inversion{'s' if len(found) > 1 else ''}) found"
    else:
        headline = "No potential deadlocks found"
    body = [
        "<header>", f"<h1>lockwatch: {_e(headline)}</h1>",
        '<p class="tag">Lock-order graph, potential deadlocks and lock contention recorded by lockwatch.</p>',
        _summary(report, g), "</header>",
        _deadlocks_section(report),
        _graph_section(g, report),
        _cycles_section(report),
        _violations_section(report),
        _baseline_section(report),
        _locks_section(report, g),
        _charts_section(report),
        '<footer>Generated by lockwatch. This file is self-contained: it loads nothing from the network.</footer>',
    ]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        # No fetch of any kind, even if a name in the report looked like markup.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>lockwatch: {_e(headline)}</title>\n<style>{CSS}</style></head>\n"
        "<body><main>\n" + "\n".join(part for part in body if part) + "\n</main>\n"
        f"<script>{JS}</script>\n</body></html>\n"
    )

