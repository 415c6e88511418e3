"""SVG drawings of the HTML report (the lock-order graph, the timing charts) and its markup helpers."""
from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any, Optional

from ... import histogram
from ...model import LockStats
from ...stacks import short_path
from ..common import fmt_ns, plural
from .layout import NODE_H, Graph, Layout

SourceLines = dict[str, dict[int, str]]  # Snapshot.source_lines


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def source_line(lines: SourceLines, filename: str, line: int) -> str:
    """The text of a source line as the report holds it (else ""): never read from a file here."""
    return lines.get(filename, {}).get(line, "")


def fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def box_exit(cx: float, cy: float, w: float, h: float, tx: float, ty: float, pad: float = 3) -> tuple[float, float]:
    """Where the ray from a box's centre towards (tx, ty) leaves the box (plus ``pad``)."""
    dx, dy = tx - cx, ty - cy
    if dx == 0 and dy == 0:
        return cx, cy
    t = min((w / 2 + pad) / abs(dx) if dx else math.inf, (h / 2 + pad) / abs(dy) if dy else math.inf)
    return cx + dx * t, cy + dy * t


def edge_path(g: Graph, a: str, b: str, pos: dict[str, tuple[float, float]]) -> str:
    (x0, y0), (x1, y1) = pos[a], pos[b]
    wa, wb = g.nodes[a].width, g.nodes[b].width
    if a == b:  # same-site nesting: a loop over the box
        top = y0 - NODE_H / 2
        return (f"M{fmt(x0 - 14)},{fmt(top)} C{fmt(x0 - 34)},{fmt(top - 42)} "
                f"{fmt(x0 + 34)},{fmt(top - 42)} {fmt(x0 + 16)},{fmt(top - 4)}")
    dx, dy = x1 - x0, y1 - y0
    dist = math.hypot(dx, dy)
    # Bend every edge to its left: A->B and B->A then never overlap.
    bend = min(0.18 * dist, 46.0)
    cx, cy = (x0 + x1) / 2 + dy / dist * bend, (y0 + y1) / 2 - dx / dist * bend
    sx, sy = box_exit(x0, y0, wa, NODE_H, cx, cy)
    ex, ey = box_exit(x1, y1, wb, NODE_H, cx, cy, pad=5)
    return f"M{fmt(sx)},{fmt(sy)} Q{fmt(cx)},{fmt(cy)} {fmt(ex)},{fmt(ey)}"


def graph_svg(g: Graph, keys: Sequence[str], layout: Layout, ident: str, scale_to_fit: bool,
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
        label = f'<text class="group-title" x="{fmt(x)}" y="{fmt(y)}">{esc(text)}</text>'
        out.append(f'<a href="{esc(href)}">{label}</a>' if href else label)
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
        path = (f'<path class="{cls}" d="{edge_path(g, a, b, pos)}" marker-end="{marker}">'
                f"<title>{esc(tip)}</title></path>")
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
        src = source_line(g.source_lines, node.filename, node.line)
        if src:
            tips.append(src)
        if s is not None:
            tips.append(f"{s.acquisitions} acquisitions, {s.contended} contended")
        if node.cycles:
            tips.append("in potential deadlock " + ", ".join(str(n) for n in node.cycles))
        cls = "node" + (" cyc" if node.cycles else "")
        href = f"#cycle-{node.cycles[0]}" if node.cycles else (f"#lock-{node.index}" if node.index is not None else "")
        body = (f'<g class="{cls}" data-key="{esc(k)}"><title>{esc(chr(10).join(tips))}</title>'
                f'<rect x="{fmt(x - nw / 2)}" y="{fmt(y - NODE_H / 2)}" width="{fmt(nw)}" height="{NODE_H}" rx="7"/>'
                f'<text class="name" x="{fmt(x)}" y="{fmt(y - 3)}">{esc(node.label)}</text>'
                f'<text class="sub" x="{fmt(x)}" y="{fmt(y + 12)}">{esc(node.sub)}</text></g>')
        out.append(f'<a href="{esc(href)}">{body}</a>' if href else body)
    out.append("</svg>")
    return "\n".join(out), omitted


def chart(s: LockStats, lo: int, hi: int, ticks: list[int]) -> str:
    width, plot_h, top = 320.0, 40.0, 8.0
    n = hi - lo + 1
    bw = width / n
    axis = top + plot_h + 2
    bars = []
    for t, cls, up in ((s.hold, "hold", True), (s.wait, "wait", False)):
        counts = histogram.as_sqrt2(t.buckets, t.scale)  # the chart's buckets (sections.charts_section)
        peak = max((counts.get(i, 0) for i in range(lo, hi + 1)), default=0)
        if not peak:
            continue
        for i in range(lo, hi + 1):
            c = counts.get(i, 0)
            if not c:
                continue
            bh = max(1.5, plot_h * c / peak)
            low, high = histogram.sqrt2_bucket_bounds(i)
            y = axis - 1 - bh if up else axis + 1
            bars.append(f'<rect class="{cls}" x="{fmt((i - lo) * bw + 0.5)}" y="{fmt(y)}" '
                        f'width="{fmt(max(bw - 1, 1))}" height="{fmt(bh)}"><title>{cls} '
                        f"{esc(fmt_ns(low))}–{esc(fmt_ns(high))}: {c}</title></rect>")
    grid = []
    total_h = axis + plot_h + 4 + 14
    for v in ticks:
        x = (histogram.sqrt2_bucket_of(v) - lo) * bw
        grid.append(f'<line class="tick" x1="{fmt(x)}" x2="{fmt(x)}" y1="{fmt(top)}" y2="{fmt(axis + plot_h + 2)}"/>'
                    f'<text class="tick" x="{fmt(x)}" y="{fmt(total_h - 3)}">{esc(fmt_ns(v))}</text>')
    return (f'<svg class="hist" viewBox="-6 0 {fmt(width + 12)} {fmt(total_h)}" width="100%" '
            f'role="img" aria-label="hold and wait time distribution of {esc(s.name)}">'
            + "".join(grid)
            + f'<line class="axis" x1="0" x2="{fmt(width)}" y1="{fmt(axis)}" y2="{fmt(axis)}"/>'
            + "".join(bars) + "</svg>")
