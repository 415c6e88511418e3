"""Every renderer against one fixture report, compared with checked-in golden outputs.

Regenerate the golden files after an intended change of an output with
``LOCKWATCH_REGEN_GOLDEN=1 python -m pytest tests/test_golden.py`` and review the diff.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import FIXTURES
from support import load_report_fixture as load_fixture

from lockwatch import renderers, sources
from lockwatch.analysis import Report, analyze, apply_policy
from lockwatch.model import Alert, BaselineEntry, Deadlock, Violation

fx = load_fixture()
GOLDEN = FIXTURES / "report_golden"
# The shop's files are read for source lines and shown relative to the working directory: the
# test runs in this folder, and its absolute path is replaced by a placeholder in the outputs.
SHOP_ROOT = FIXTURES / "report_shop"
PLACEHOLDER = "$FIXTURE"
REGEN = bool(os.environ.get("LOCKWATCH_REGEN_GOLDEN"))

VIOLATION = {
    "kind": "declared-order", "declared": ["stock_lock", "_cart_lock"],
    "held": {"name": "_cart_lock", "kind": "Lock", "site": f"{fx.CART}:7"},
    "acquired": {"name": "stock_lock", "kind": "RLock", "site": f"{fx.STOCK}:6"},
    "thread": "worker-3", "held_stack": [f"{fx.CART}:11 in checkout"],
    "acquire_stack": [f"{fx.CART}:11 in checkout", f"{fx.CART}:15 in _reserve"],
    "context": "tests/test_cart.py::test_order",
}
GONE = {"fingerprint": "0123456789ab", "scope": "site", "triage": "deadlock",
        "locks": ["old_a (Lock) shop/old.py:3", "old_b (Lock) shop/old.py:4"]}


def golden_report() -> Report:
    """The shop with every kind of finding: risks of each triage label, a standard-library cycle,
    a suppressed and a known one, real deadlocks, alerts, a declared-order violation, a cycle gone
    from the baseline and an internal error."""
    snap = fx.shop_snapshot()
    for s in snap.locks:
        if s.name in ("cache_lock", "log_lock"):
            s.stdlib = True
    by_name = {s.name: s for s in snap.locks}
    cache, log, gate = by_name["cache_lock"], by_name["log_lock"], by_name["_gate"]
    # cache_lock <-> log_lock, always under _gate: a guarded cycle (of the standard library)
    for edges, instances in ((snap.site_edges, (None, None)), (snap.instance_edges, (14, 13))):
        for e in edges:
            if e.src == cache.key:
                e.gates, e.gate_instances = [gate.key], [5]
        edges.append(fx.edge(log, cache, "flusher", list(edges[-1].acquire_stack), list(edges[-1].held_stack),
                             *instances, gates=[gate.key], gate_instances=[5]))
    # one thread took every edge of the mail cycle: a single-thread inversion
    for e in snap.site_edges + snap.instance_edges:
        if e.src in (by_name[fx.NASTY].key, by_name["audit_lock"].key, by_name["report_lock"].key):
            e.thread_id = "4242:1"
    snap.violations = [Violation.from_dict(VIOLATION)]
    snap.internal_errors = ["watchdog: RuntimeError: a fixture's internal error"]
    rep = analyze(snap)
    for p in rep.potential_deadlocks:
        if p.locks[0].name.startswith("account_lock"):
            p.suppressed = fx.SUPPRESSED
        if {lk.name for lk in p.locks} == {fx.NASTY, "audit_lock", "report_lock"}:
            p.known = True
    apply_policy(rep, (), {GONE["fingerprint"]: BaselineEntry.from_dict(GONE)})
    rep.deadlocks = [Deadlock.from_dict(d) for d in (fx.watchdog_deadlock(), fx.CONTRACT_DEADLOCK)]
    rep.alerts = [Alert.from_dict(a) for a in fx.ALERTS]
    sources.embed(rep)  # as the recording process does when it writes the report
    return rep


def golden(fmt: str) -> Path:
    """The golden output of format ``fmt``, named with the format's extension."""
    return GOLDEN / f"report{renderers.get(fmt).EXTENSION}"


def test_every_format_has_a_golden_output() -> None:
    assert renderers.FORMATS == ("text", "json", "html", "dot", "graphml")
    assert sorted(p.name for p in GOLDEN.iterdir()) == sorted(golden(fmt).name for fmt in renderers.FORMATS)


@pytest.mark.parametrize("fmt", renderers.FORMATS)
def test_renderer_matches_its_golden_output(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(SHOP_ROOT)
    out = renderers.render(golden_report(), fmt).replace(str(SHOP_ROOT), PLACEHOLDER)
    path = golden(fmt)
    if REGEN:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(out, encoding="utf-8")
    assert PLACEHOLDER in out or fmt == "text"
    assert out == path.read_text(encoding="utf-8"), (
        f"{fmt} output differs from {path}; if the change is intended, regenerate with "
        "LOCKWATCH_REGEN_GOLDEN=1 and review the diff")


def test_golden_report_has_every_kind_of_finding() -> None:
    rep = golden_report()
    triages = {p.triage for p in rep.potential_deadlocks}
    assert {"deadlock", "single-thread", "timed", "guarded"} <= triages
    assert any(p.origin == "stdlib" for p in rep.potential_deadlocks)
    assert any(p.suppressed for p in rep.potential_deadlocks)
    assert any(p.known for p in rep.potential_deadlocks)
    assert {p.scope for p in rep.potential_deadlocks} == {"instance", "site"}
    assert rep.deadlocks and rep.alerts and rep.violations and rep.baseline_gone
    assert rep.snapshot.internal_errors


@pytest.mark.parametrize("fmt", renderers.FORMATS)
def test_saved_report_renders_as_the_report_it_was_saved_from(fmt: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from lockwatch.cli import report as reportcmd

    saved = tmp_path / "report.json"
    text = golden("json").read_text(encoding="utf-8")
    saved.write_text(text.replace(PLACEHOLDER, str(SHOP_ROOT)), encoding="utf-8")
    monkeypatch.chdir(SHOP_ROOT)
    out = renderers.render(reportcmd.combine([str(saved)]), fmt).replace(str(SHOP_ROOT), PLACEHOLDER)
    assert out == golden(fmt).read_text(encoding="utf-8")
