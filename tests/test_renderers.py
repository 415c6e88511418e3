"""Tests for lockwatch.renderers: text and JSON against one fixture report, and reading reports back."""
from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from support import assert_follows_contract, timing
from support import edge_record as edge
from support import lock_stats as lock

from lockwatch.analysis import Report, analyze
from lockwatch.model import Deadlock, ReportError, SavedReport, Snapshot, load
from lockwatch.renderers import jsonreport, text


def snapshot_from(data: Any) -> Snapshot:
    return SavedReport.from_dict(data).snapshot

# Outside the working directory: the text report shows these paths in full.
SRC = "/srv/lockwatch-fixture/shop"




def fixture_snapshot() -> Snapshot:
    """An instance 2-cycle (cart <-> stock), a site-only 2-cycle with a timed edge
    (stock <-> ledger), contention stats, and a lock that is never in a cycle."""
    cart = lock("cart_lock", "Lock", f"{SRC}/cart.py", 12, instances=3, acquisitions=1000, contended=40,
                hold=timing([2_000] * 900 + [50_000] * 100),
                wait=timing([10_000] * 30 + [3_000_000] * 10))
    stock = lock("stock_lock", "RLock", f"{SRC}/stock.py", 7, instances=1, acquisitions=500, contended=5,
                 hold=timing([1_500] * 500), wait=timing([20_000] * 5))
    ledger = lock("ledger_cond", "Condition", f"{SRC}/ledger.py", 30, instances=2, acquisitions=80,
                  hold=timing([700_000] * 80))
    gate = lock("gate", "BoundedSemaphore", f"{SRC}/gate.py", 5, instances=1, acquisitions=3,
                hold=timing([100, 200, 300]))
    s1 = [f"{SRC}/main.py:40 in run", f"{SRC}/cart.py:55 in checkout", f"{SRC}/cart.py:58 in _reserve"]
    a1 = [f"{SRC}/main.py:40 in run", f"{SRC}/cart.py:55 in checkout", f"{SRC}/cart.py:61 in _reserve"]
    s2 = [f"{SRC}/main.py:44 in restock", f"{SRC}/stock.py:90 in refill"]
    a2 = [f"{SRC}/main.py:44 in restock", f"{SRC}/stock.py:93 in refill"]
    s3 = [f"{SRC}/stock.py:120 in audit"]
    a3 = [f"{SRC}/stock.py:122 in audit"]
    s4 = [f"{SRC}/ledger.py:70 in post"]
    a4 = [f"{SRC}/ledger.py:74 in post"]
    instance_edges = [
        edge(cart, stock, "worker-1", s1, a1, 1, 2, count=17),
        edge(stock, cart, "restocker", s2, a2, 2, 1, count=2),
        edge(stock, ledger, "auditor", s3, a3, 2, 3, timed=True),
        edge(ledger, stock, "poster", s4, a4, 5, 2 + 100),
        edge(gate, cart, "worker-2", [f"{SRC}/gate.py:9 in enter"], [f"{SRC}/gate.py:10 in enter"], 4, 1),
    ]
    site_edges = [
        edge(cart, stock, "worker-1", s1, a1, count=17),
        edge(stock, cart, "restocker", s2, a2, count=2),
        edge(stock, ledger, "auditor", s3, a3, timed=True),
        edge(ledger, stock, "poster", s4, a4),
        edge(gate, cart, "worker-2", [f"{SRC}/gate.py:9 in enter"], [f"{SRC}/gate.py:10 in enter"]),
    ]
    return Snapshot(locks=[cart, stock, ledger, gate], site_edges=site_edges, instance_edges=instance_edges,
                    meta={"python": "3.11.7", "argv": ["shop.py"], "pid": 4242})


@pytest.fixture(scope="module")
def report() -> Report:
    return analyze(fixture_snapshot())


# A real deadlock with only the keys the contract promises (DESIGN.md): what another tool, or an
# older lockwatch, may have written.
CONTRACT_DEADLOCK = {"threads": [{"name": "worker-1", "stack": [f"{SRC}/cart.py:61 in _reserve"]},
                                 {"name": "restocker", "stack": [f"{SRC}/stock.py:93 in refill"]}]}


def test_fixture_report_has_what_the_tests_rely_on(report: Report) -> None:
    assert [(p.scope, sorted(lk.name for lk in p.locks)) for p in report.potential_deadlocks] == [
        ("instance", ["cart_lock", "stock_lock"]), ("site", ["ledger_cond", "stock_lock"])]
    assert any(e.timed for e in report.potential_deadlocks[1].edges)


# -- the report contract ------------------------------------------------------------------------


# -- JSON -----------------------------------------------------------------------------------------


def test_json_follows_the_contract(report: Report) -> None:
    data = json.loads(jsonreport.render(report))
    assert_follows_contract(data)
    assert len(data["potential_deadlocks"]) == 2
    first = data["potential_deadlocks"][0]
    assert first["scope"] == "instance"
    assert {lk["site"] for lk in first["locks"]} == {f"{SRC}/cart.py:12", f"{SRC}/stock.py:7"}
    assert {lk["kind"] for lk in first["locks"]} == {"Lock", "RLock"}
    stacks = {e["thread"]: (e["held_stack"], e["acquire_stack"]) for e in first["edges"]}
    assert stacks["worker-1"][1][-1] == f"{SRC}/cart.py:61 in _reserve"  # innermost last
    assert data["deadlocks"] == []
    cart = next(lk for lk in data["locks"] if lk["name"] == "cart_lock")
    assert (cart["acquisitions"], cart["contended"]) == (1000, 40)
    assert cart["wait"]["count"] == 40
    assert cart["wait"]["max"] == pytest.approx(3e-3)
    assert cart["hold"]["p50"] == pytest.approx(2e-6, rel=0.19)


def test_json_round_trips_to_an_equal_analysis(report: Report) -> None:
    data = json.loads(jsonreport.render(report))
    snap = snapshot_from(data)
    assert snap == report.snapshot
    again = analyze(snap)
    assert [p.fingerprint for p in again.potential_deadlocks] == [
        p.fingerprint for p in report.potential_deadlocks]
    assert [p.scope for p in again.potential_deadlocks] == [p.scope for p in report.potential_deadlocks]
    assert again.to_dict()["potential_deadlocks"] == data["potential_deadlocks"]


def test_load_reads_a_written_report(tmp_path: Path) -> None:
    rep = analyze(fixture_snapshot())
    rep.deadlocks = [Deadlock.from_dict(CONTRACT_DEADLOCK)]
    path = tmp_path / "report.json"
    path.write_text(jsonreport.render(rep))
    data = json.loads(path.read_text())
    assert_follows_contract(data)
    assert data["deadlocks"] == [CONTRACT_DEADLOCK]  # written back with only the keys it had
    saved = load(str(path))
    assert saved.snapshot == rep.snapshot
    assert [d.to_dict() for d in saved.deadlocks] == [CONTRACT_DEADLOCK]


def test_text_renders_a_deadlock_with_only_the_contract_keys() -> None:
    rep = analyze(fixture_snapshot())
    rep.deadlocks = [Deadlock.from_dict(CONTRACT_DEADLOCK)]
    out = text.render(rep)
    assert "'worker-1'" in out and "'restocker'" in out
    assert "cart.py:61 in _reserve" in out


# -- text -----------------------------------------------------------------------------------------


def test_text_names_the_locks_and_their_sites(report: Report) -> None:
    out = text.render(report)
    assert "2 potential deadlocks" in out
    assert "cart_lock -> stock_lock -> cart_lock" in out or "stock_lock -> cart_lock -> stock_lock" in out
    assert re.search(r"cart_lock\s+Lock\s+created at " + re.escape(f"{SRC}/cart.py:12"), out)
    assert re.search(r"stock_lock\s+RLock\s+created at " + re.escape(f"{SRC}/stock.py:7"), out)
    assert re.search(r"ledger_cond\s+Condition\s+created at " + re.escape(f"{SRC}/ledger.py:30"), out)
    assert "scope: instance" in out and "scope: site" in out
    for p in report.potential_deadlocks:
        assert p.fingerprint in out


def test_text_shows_both_stacks_of_every_edge(report: Report) -> None:
    out = text.render(report)
    for p in report.potential_deadlocks:
        for e in p.edges:
            assert f"thread {e.thread!r}" in out
            for frame in e.held_stack + e.acquire_stack:
                assert frame in out
    block = out[out.index("thread 'worker-1'"):]
    block = block[:block.index("\n\n")]
    assert "17 times" in block
    assert block.index("cart.py:58 in _reserve") < block.index("cart.py:61 in _reserve")
    assert "gate.py:9" not in out.split("Most contended")[0]  # not in a cycle: no edge listed


def test_text_marks_the_timed_edge(report: Report) -> None:
    out = text.render(report)
    edge_lines = [line for line in out.splitlines() if " held " in line and "waited for" in line]
    timed = [line for line in edge_lines if "timed acquire" in line]
    assert len(timed) == 1 and "'auditor'" in timed[0]
    # and the cycle's triage says why it is only a stall
    assert any(line.strip().startswith("timed: the cycle closes only through a timed acquire")
               for line in out.splitlines())


def test_text_contention_tables(report: Report) -> None:
    out = text.render(report)
    contended = out[out.index("Most contended locks"):out.index("Longest-held locks")]
    rows = [line for line in contended.splitlines()[2:] if line.strip()]
    assert [row.split()[0] for row in rows] == ["cart_lock", "stock_lock"]  # most waited for first
    assert "40 (4%)" in rows[0]
    assert "3 ms" in rows[0]  # wait max
    held = out[out.index("Longest-held locks"):]
    held_rows = [line for line in held.splitlines()[2:] if line.strip()]
    assert held_rows[0].split()[0] == "ledger_cond"  # 700 µs each
    assert {row.split()[0] for row in held_rows} == {"cart_lock", "stock_lock", "ledger_cond", "gate"}
    one = text.render(report, top=1)
    tables = one[one.index("Most contended locks"):]
    assert [line.split()[0] for line in tables.splitlines() if line.startswith("  ") and "µs" in line] == [
        "cart_lock", "ledger_cond"]


# -- empty and huge reports ---------------------------------------------------------------------------


def test_empty_report_renders_in_both_formats() -> None:
    empty = analyze(Snapshot())
    out = text.render(empty)
    assert "no potential deadlocks found" in out
    assert "Most contended" not in out
    data = json.loads(jsonreport.render(empty))
    assert_follows_contract(data)
    assert (data["potential_deadlocks"], data["deadlocks"], data["locks"]) == ([], [], [])
    assert snapshot_from(data) == Snapshot()


def huge_snapshot() -> Snapshot:
    """2,000 sites, 5,000 site edges, exactly 50 two-lock cycles (sites 2k <-> 2k+1)."""
    rng = random.Random(5)
    locks = [lock(f"lock_{i}", ["Lock", "RLock", "Semaphore"][i % 3], f"{SRC}/mod_{i // 100}.py", i + 1,
                  instances=1, acquisitions=i + 1, contended=i % 7, hold=timing([1_000 + i]),
                  wait=timing([500 * (i % 7)] * (i % 7)))
             for i in range(2_000)]
    pairs = {(2 * k, 2 * k + 1) for k in range(50)} | {(2 * k + 1, 2 * k) for k in range(50)}
    while len(pairs) < 5_000:  # forward edges only: no cycle but the 50 above
        i, j = sorted(rng.sample(range(2_000), 2))
        pairs.add((i, j))
    stack = [f"{SRC}/main.py:{n} in f{n}" for n in range(16)]
    edges = [edge(locks[i], locks[j], f"T{i % 13}", stack, stack) for i, j in sorted(pairs)]
    return Snapshot(locks=locks, site_edges=edges)


def test_huge_report_renders() -> None:
    rep = analyze(huge_snapshot())
    assert len(rep.potential_deadlocks) == 50
    out = text.render(rep)
    assert "50 potential deadlocks" in out
    assert "Potential deadlock 50 of 50" in out
    assert "2000 lock creation sites" in out and "5000 lock-order edges" in out
    data = json.loads(jsonreport.render(rep))
    assert_follows_contract(data)
    assert (len(data["potential_deadlocks"]), len(data["locks"]), len(data["lock_order"])) == (50, 2000, 5000)
    again = analyze(snapshot_from(data))
    assert {p.fingerprint for p in again.potential_deadlocks} == {p.fingerprint for p in rep.potential_deadlocks}


# -- reading reports back ---------------------------------------------------------------------------


def one_line_error(path: Path) -> str:
    with pytest.raises(ReportError) as info:
        load(str(path))
    message = str(info.value)
    assert message and "\n" not in message
    return message


def test_load_rejects_a_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("lockwatch: 1 potential deadlock\n{broken\n")
    assert "not JSON" in one_line_error(path)


@pytest.mark.parametrize("content", [{"format": "coverage", "version": 1}, [1, 2, 3], "lockwatch-report", 7])
def test_load_rejects_json_that_is_not_a_report(tmp_path: Path, content: Any) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps(content))
    message = one_line_error(path)
    assert "not a lockwatch report" in message and str(path) in message


def test_load_rejects_a_newer_version(report: Report, tmp_path: Path) -> None:
    data = json.loads(jsonreport.render(report))
    data["version"] = 999
    path = tmp_path / "future.json"
    path.write_text(json.dumps(data))
    message = one_line_error(path)
    assert "999" in message


def test_load_rejects_a_damaged_report(report: Report, tmp_path: Path) -> None:
    data = json.loads(jsonreport.render(report))
    del data["locks"][0]["site"]
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(data))
    assert "damaged" in one_line_error(path)


def test_load_of_a_missing_file(tmp_path: Path) -> None:
    assert "cannot read" in one_line_error(tmp_path / "nope.json")
