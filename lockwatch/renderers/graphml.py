"""The site-level lock-order graph in GraphML (yEd, Gephi, Cytoscape, networkx), via networkx."""
from __future__ import annotations

import re
from typing import Any

from ..model import Report
from .common import visible
from .dot import cycle_numbers, site_graph

EXTENSION = ".graphml"

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _s(value: Any) -> str:
    """A GraphML attribute value: a string, without the characters XML 1.0 cannot hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        value = "\n".join(map(str, value))
    return _XML_BAD.sub("?", str(value))


def render(report: Report, **options: Any) -> str:
    """The same graph in GraphML (yEd, Gephi, Cytoscape, networkx), every attribute a string."""
    import networkx as nx

    report = visible(report)  # control characters and bidirectional overrides as escapes
    nodes, edges = site_graph(report)
    cyc_edges, cyc_nodes = cycle_numbers(report)
    g = nx.DiGraph(name="lockwatch lock-order graph")
    for key, info in nodes.items():
        g.add_node(_s(key), **{k: _s(v) for k, v in info.items()},
                   in_cycle=_s(key in cyc_nodes),
                   cycles=_s(",".join(map(str, cyc_nodes.get(key, [])))))
    for (src, dst), e in edges.items():
        marks = cyc_edges.get((src, dst), [])
        g.add_edge(_s(src), _s(dst), thread=_s(e.thread), count=_s(e.count), timed=_s(e.timed),
                   context=_s(e.context), held_stack=_s(e.held_stack), acquire_stack=_s(e.acquire_stack),
                   in_cycle=_s(bool(marks)), cycles=_s(",".join(map(str, marks))))
    return "\n".join(nx.generate_graphml(g)) + "\n"
