"""Tests for lockwatch.renderers.dot: Graphviz DOT (checked with a small parser of the DOT grammar
lockwatch writes, no graphviz needed) and GraphML (parsed back with networkx)."""
from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import pytest
from support import child_env
from support import load_report_fixture as load_fixture

from lockwatch.analysis import Report, analyze
from lockwatch.model import EdgeRecord, LockStats, Snapshot
from lockwatch.renderers import dot, graphml
from lockwatch.stacks import short_path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RED = dot.CYCLE_COLOR


fx = load_fixture()


@pytest.fixture(scope="module")
def report() -> Report:
    return fx.shop_report()


# -- a parser for the DOT that lockwatch writes ----------------------------------------------------

TOKEN = re.compile(r'\s+|//[^\n]*|/\*.*?\*/|(?P<str>"(?:[^"\\]|\\.)*")|(?P<arrow>->|--)'
                   r"|(?P<id>[A-Za-z_][A-Za-z_0-9]*|-?(?:\.\d+|\d+(?:\.\d*)?))|(?P<punct>[{}\[\];,=])", re.S)


@dataclass
class Dot:
    name: str
    defaults: dict[str, dict[str, str]] = field(default_factory=dict)
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


def tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        assert m, f"not DOT at {text[pos:pos + 40]!r}"
        pos = m.end()
        kind = m.lastgroup
        if kind:
            value = m.group(kind)
            if kind == "str":  # the lexer only unescapes \" ; keep other escapes for the label check
                value = value[1:-1].replace('\\"', '"')
            out.append((kind, value))
    return out


def parse_dot(text: str) -> Dot:
    """A strict subset of the DOT grammar: `digraph ID { stmt; ... }` whose statements are
    attribute defaults, node statements and single edges, each with an optional attribute list."""
    toks = tokens(text)
    i = 0

    def take(kind: str, value: str = "") -> str:
        nonlocal i
        assert i < len(toks), "unexpected end"
        k, v = toks[i]
        assert k == kind and (not value or v == value), f"expected {value or kind}, got {v!r}"
        i += 1
        return v

    def ident() -> str:
        k, _v = toks[i]
        return take(k if k in ("id", "str") else "id")

    def attrs() -> dict[str, str]:
        out: dict[str, str] = {}
        if i < len(toks) and toks[i] == ("punct", "["):
            take("punct", "[")
            while toks[i] != ("punct", "]"):
                key = ident()
                take("punct", "=")
                assert key not in out, f"attribute {key} twice"
                out[key] = ident()
                if toks[i] == ("punct", ","):
                    take("punct", ",")
            take("punct", "]")
        return out

    take("id", "digraph")
    graph = Dot(ident())
    take("punct", "{")
    while toks[i] != ("punct", "}"):
        if toks[i] in (("id", "graph"), ("id", "node"), ("id", "edge")):
            kind = take("id")
            graph.defaults[kind] = attrs()
        else:
            a = ident()
            if toks[i] == ("arrow", "->"):
                take("arrow", "->")
                b = ident()
                graph.edges.append((a, b, attrs()))
            else:
                assert a not in graph.nodes, f"node {a} twice"
                graph.nodes[a] = attrs()
        take("punct", ";")
    take("punct", "}")
    assert i == len(toks), "text after the graph"
    for a, b, _ in graph.edges:
        assert a in graph.nodes and b in graph.nodes, "edge to an undeclared node"
    return graph


def label_text(value: str) -> str:
    """What Graphviz shows for an escString label: \\n is a line break, \\\\ a backslash."""
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) in "nlr" else m.group(1), value)


def by_label(g: Dot) -> dict[str, str]:
    """Node id by the lock name on the first line of its label."""
    return {label_text(a["label"]).split("\n")[0]: n for n, a in g.nodes.items()}


# -- DOT ------------------------------------------------------------------------------------------------


def test_dot_has_every_site_and_edge(report: Report) -> None:
    g = parse_dot(dot.render(report))
    assert g.name == "lockwatch"
    snap = report.snapshot
    assert len(g.nodes) == len(snap.locks) == 10
    assert len(g.edges) == len(snap.site_edges) == 10
    for s in snap.locks:
        node = g.nodes[by_label(g)[s.name]]
        assert label_text(node["label"]).split("\n") == [s.name, s.kind, f"{short_path(s.filename)}:{s.line}"]
    names = {n: label_text(a["label"]).split("\n")[0] for n, a in g.nodes.items()}
    pairs = {(names[a], names[b]) for a, b, _ in g.edges}
    key_name = {s.key: s.name for s in snap.locks}
    assert pairs == {(key_name[e.src], key_name[e.dst]) for e in snap.site_edges}
    worker = next(attrs for a, b, attrs in g.edges if (names[a], names[b]) == ("_cart_lock", "stock_lock"))
    assert worker["label"] == "worker-1 (17x)"


def test_dot_marks_cycle_edges_red_and_timed_edges_dashed(report: Report) -> None:
    g = parse_dot(dot.render(report))
    names = {n: label_text(a["label"]).split("\n")[0] for n, a in g.nodes.items()}
    site_name = {s.key: s.name for s in report.snapshot.locks}
    in_cycles = {(site_name[p.locks[k].key], site_name[p.locks[(k + 1) % len(p.locks)].key])
                 for p in report.potential_deadlocks for k in range(len(p.locks))}
    assert len(in_cycles) == 8  # including account_lock's self-loop (an instance cycle of one site)
    for a, b, attrs in g.edges:
        pair = (names[a], names[b])
        if pair in in_cycles:
            assert attrs["color"] == RED and float(attrs["penwidth"]) >= 2, pair
            assert "in potential deadlock" in attrs["tooltip"]
        else:
            assert "color" not in attrs and "penwidth" not in attrs, pair
        timed = pair == ("stock_lock", "ledger_cond")
        assert (attrs.get("style") == "dashed") == timed, pair
    red_nodes = {names[n] for n, a in g.nodes.items() if a.get("color") == RED}
    assert red_nodes == {site_name[lk.key] for p in report.potential_deadlocks for lk in p.locks}


def test_dot_quotes_and_escapes_every_string() -> None:
    windows = r"C:\Node\new\shop.py"  # \N and \n would be escString sequences if not escaped
    weird = 'a "quoted"\nname\\ with {braces}; -> [and] // not a comment'
    a = LockStats(key=f"{windows}:3:Lock", name=weird, kind="Lock", filename=windows, line=3, function="f")
    b = LockStats(key="/x/b.py:4:RLock", name="b", kind="RLock", filename="/x/b.py", line=4, function="f")
    edges = [EdgeRecord(a.key, b.key, 'thread "one"', [], []), EdgeRecord(b.key, a.key, "two\\", [], [])]
    rep = analyze(Snapshot(locks=[a, b], site_edges=edges))
    g = parse_dot(dot.render(rep))
    labels = {label_text(attrs["label"]) for attrs in g.nodes.values()}
    shown = weird.replace("\n", "\\n")  # a newline in a name is shown as an escape, not a line break
    assert f"{shown}\nLock\n{windows}:3" in labels
    assert {label_text(attrs["label"]) for _, _, attrs in g.edges} == {'thread "one"', "two\\"}
    assert all(attrs["color"] == RED for _, _, attrs in g.edges)


def test_dot_of_an_empty_report() -> None:
    g = parse_dot(dot.render(fx.empty_report()))
    assert (g.nodes, g.edges) == ({}, [])


def test_dot_of_a_huge_report() -> None:
    rep = analyze(fx.huge_snapshot())
    g = parse_dot(dot.render(rep))
    assert (len(g.nodes), len(g.edges)) == (1_000, 3_000)
    assert sum(1 for _, _, attrs in g.edges if attrs.get("color") == RED) == 60


def test_cli_writes_the_dot_report(tmp_path: Path) -> None:
    """`python -m lockwatch --dot PATH` (Session.write_reports) renders through this module."""
    out = tmp_path / "lockorder.dot"
    env = child_env()
    proc = subprocess.run([sys.executable, "-m", "lockwatch", "-q", "--dot", str(out),
                           str(FIXTURES / "report_merge" / "abba.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    g = parse_dot(out.read_text())
    names = {n: label_text(a["label"]).split("\n")[0] for n, a in g.nodes.items()}
    red = {(names[a], names[b]) for a, b, attrs in g.edges if attrs.get("color") == RED}
    assert red == {("lock_a", "lock_b"), ("lock_b", "lock_a")}


# -- GraphML -------------------------------------------------------------------------------------------------


def test_graphml_parses_with_string_attributes(report: Report) -> None:
    g = nx.parse_graphml(graphml.render(report))
    assert isinstance(g, nx.DiGraph)
    snap = report.snapshot
    assert set(g.nodes) == {s.key for s in snap.locks}
    assert set(g.edges) == {(e.src, e.dst) for e in snap.site_edges}
    for _n, attrs in g.nodes(data=True):
        assert all(isinstance(v, str) for v in attrs.values())
    for _a, _b, attrs in g.edges(data=True):
        assert all(isinstance(v, str) for v in attrs.values())
    mail = next(s for s in snap.locks if s.name == fx.NASTY)
    assert g.nodes[mail.key]["name"] == fx.NASTY and g.nodes[mail.key]["in_cycle"] == "true"
    assert g.nodes[mail.key]["site"] == mail.site
    cycle_pairs = {(p.locks[k].key, p.locks[(k + 1) % len(p.locks)].key)
                   for p in report.potential_deadlocks for k in range(len(p.locks))}
    assert {(a, b) for a, b, d in g.edges(data=True) if d["in_cycle"] == "true"} == cycle_pairs
    cart = next(e for e in snap.site_edges if e.thread == "worker-1")
    data = g.edges[cart.src, cart.dst]
    assert (data["thread"], data["count"], data["timed"]) == ("worker-1", "17", "false")
    assert data["held_stack"].split("\n") == cart.held_stack
    assert data["context"] == "tests/test_cart.py::test_checkout"


def test_graphml_of_empty_and_huge_reports() -> None:
    assert nx.parse_graphml(graphml.render(fx.empty_report())).number_of_nodes() == 0
    g = nx.parse_graphml(graphml.render(analyze(fx.huge_snapshot())))
    assert (g.number_of_nodes(), g.number_of_edges()) == (1_000, 3_000)
    assert sum(1 for _a, _b, d in g.edges(data=True) if d["in_cycle"] == "true") == 60
