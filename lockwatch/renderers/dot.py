"""The site-level lock-order graph as Graphviz DOT, cycles in red."""
from __future__ import annotations

import re
from typing import Any

from ..model import EdgeRecord, Report
from ..stacks import short_path
from .common import plural, visible

EXTENSION = ".dot"
CYCLE_COLOR = "#c6372c"


def quote(text: Any) -> str:
    """A DOT double-quoted string. Inside quotes DOT itself only knows ``\\"``, but labels are
    escString (``\\N`` is the node's name, ``\\l`` a left-justified line break), so every backslash
    is doubled: a Windows path must not turn into ``\\N``."""
    s = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + s.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n") + '"'


def _attrs(**attrs: Any) -> str:
    return "[" + ", ".join(f"{k}={quote(v)}" for k, v in attrs.items() if v is not None) + "]"


def cycle_numbers(report: Report) -> tuple[dict[tuple[str, str], list[int]], dict[str, list[int]]]:
    """The numbers (1-based, as in the text report) of the potential deadlocks each site-level
    edge and each site belongs to."""
    edges: dict[tuple[str, str], list[int]] = {}
    nodes: dict[str, list[int]] = {}
    for n, p in enumerate(report.potential_deadlocks, 1):
        for k, lk in enumerate(p.locks):
            pair = (lk.key, p.locks[(k + 1) % len(p.locks)].key)
            if n not in edges.setdefault(pair, []):
                edges[pair].append(n)
            if n not in nodes.setdefault(lk.key, []):
                nodes[lk.key].append(n)
    return edges, nodes


def site_graph(report: Report) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], EdgeRecord]]:
    """Every site (with what is known of it) and every site-level edge, including the edges of
    cycles whose sites a merged report knows only by key."""
    nodes: dict[str, dict[str, Any]] = {}
    for s in report.snapshot.locks:
        nodes[s.key] = {"name": s.name, "kind": s.kind, "site": s.site, "acquisitions": s.acquisitions,
                        "contended": s.contended}
    edges: dict[tuple[str, str], EdgeRecord] = {}
    for e in report.snapshot.site_edges:
        edges.setdefault((e.src, e.dst), e)
    for p in report.potential_deadlocks:
        for k, lk in enumerate(p.locks):
            nodes.setdefault(lk.key, {"name": lk.name, "kind": lk.kind, "site": lk.site,
                                      "acquisitions": 0, "contended": 0})
            nxt = p.locks[(k + 1) % len(p.locks)]
            if k < len(p.edges):
                edges.setdefault((lk.key, nxt.key), p.edges[k])
    for src, dst in edges:
        for key in (src, dst):
            if key not in nodes:
                filename, _, kind = key.rpartition(":")
                nodes[key] = {"name": key, "kind": kind, "site": filename, "acquisitions": 0, "contended": 0}
    return nodes, edges


def render(report: Report, **options: Any) -> str:
    report = visible(report)  # control characters and bidirectional overrides as escapes
    nodes, edges = site_graph(report)
    cyc_edges, cyc_nodes = cycle_numbers(report)
    ids = {key: f"n{i}" for i, key in enumerate(nodes)}
    found = report.potential_deadlocks
    out = [
        "// lockwatch: the lock-order graph between lock creation sites. An edge A -> B: a thread",
        "// held a lock created at A and waited for one created at B. Red: an edge of a potential",
        "// deadlock (a cycle); dashed: a timed acquire (can stall, not hang).",
        f"// {plural(len(nodes), 'site')}, {plural(len(edges), 'edge')}, "
        f"{plural(len(found), 'potential deadlock')}.",
        "// Render with: dot -Tsvg lockorder.dot -o lockorder.svg",
        "digraph lockwatch {",
        '  graph [rankdir="LR", fontname="Helvetica", fontsize="11", label="lockwatch lock-order graph", '
        'labelloc="t"];',
        '  node [shape="box", style="rounded,filled", fillcolor="white", fontname="Helvetica", fontsize="10"];',
        '  edge [fontname="Helvetica", fontsize="9", color="#8a9099"];',
    ]
    for key, info in nodes.items():
        label = f"{info['name']}\n{info['kind']}\n{short_path(info['site'])}"
        extra: dict[str, Any] = {}
        if key in cyc_nodes:
            extra = {"color": CYCLE_COLOR, "fillcolor": "#fbeceb", "penwidth": "2"}
        tip = f"{info['name']} ({info['kind']}) created at {info['site']}: {info['acquisitions']} acquisitions, " \
              f"{info['contended']} contended"
        if key in cyc_nodes:
            tip += "; in potential deadlock " + ", ".join(map(str, cyc_nodes[key]))
        out.append(f"  {ids[key]} {_attrs(label=label, tooltip=tip, **extra)};  // {_comment(key)}")
    for (src, dst), e in edges.items():
        marks = cyc_edges.get((src, dst))
        attrs: dict[str, Any] = {"label": f"{e.thread} ({e.count}x)" if e.count > 1 else e.thread}
        tip = f"thread {e.thread} held {nodes[src]['name']} and waited for {nodes[dst]['name']}" + \
              (f" (during {e.context})" if e.context else "")
        if marks:
            attrs.update(color=CYCLE_COLOR, fontcolor=CYCLE_COLOR, penwidth="2.5")
            tip += "; in potential deadlock " + ", ".join(map(str, marks))
        if e.timed:
            attrs["style"] = "dashed"
        attrs["tooltip"] = tip
        out.append(f"  {ids[src]} -> {ids[dst]} {_attrs(**attrs)};")
    out.append("}")
    return "\n".join(out) + "\n"


def _comment(text: str) -> str:
    # A // comment ends at the line's end: a newline in a key must not end it early.
    return re.sub(r"[\r\n]+", " ", text)
