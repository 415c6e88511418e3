"""Every example runs under `python -m lockwatch` and shows the finding its docstring promises."""
from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest
from support import PROJECT_ROOT, line_of, lockwatch, report_of

from lockwatch.model import SavedReport

pytestmark = pytest.mark.timeout(180)

EXAMPLES = PROJECT_ROOT / "examples"
ABBA = EXAMPLES / "abba_inversion.py"


def run_example(name: str, tmp_path: Path, *options: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "report.json"
    proc = lockwatch("--json", str(out), *options, str(EXAMPLES / name), cwd=PROJECT_ROOT, timeout=150)
    report = report_of(out) if out.exists() else {}
    return proc, report


def test_every_example_documents_its_command():
    for path in sorted(EXAMPLES.glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc, f"{path.name} has no docstring"
        assert "python -m lockwatch" in doc and f"examples/{path.name}" in doc, path.name
        assert "Finding:" in doc, path.name


def test_abba_inversion(tmp_path):
    proc, report = run_example("abba_inversion.py", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "finished without hanging" in proc.stdout
    [found] = report["potential_deadlocks"]
    assert found["scope"] == "instance"
    assert {lk["name"] for lk in found["locks"]} == {"cache_lock", "stats_lock"}
    sites = {lk["name"]: lk["site"] for lk in found["locks"]}
    assert sites["cache_lock"].endswith(f"abba_inversion.py:{line_of(ABBA, 'cache_lock = threading.Lock()')}")
    assert sites["stats_lock"].endswith(f"abba_inversion.py:{line_of(ABBA, 'stats_lock = threading.Lock()')}")
    by_thread = {e["thread"]: e for e in found["edges"]}
    assert set(by_thread) == {"writer", "reporter"}
    w = by_thread["writer"]
    # store's `with cache_lock:` is its first line (report_stats has the same text, indented)
    assert w["held_stack"][-1].endswith(f":{line_of(ABBA, 'def store(key, value):') + 1} in store")
    assert w["acquire_stack"][-1].endswith(f":{line_of(ABBA, 'with stats_lock:  # cache_lock -> stats_lock')} in store")
    # stderr names both locks with their creation lines and shows both stacks of each edge
    err = proc.stderr
    assert "potential deadlock" in err
    assert f"abba_inversion.py:{line_of(ABBA, 'cache_lock = threading.Lock()')}" in err
    assert err.count("was taken at:") == 4


def test_bank_transfer_is_a_per_instance_inversion(tmp_path):
    proc, report = run_example("bank_transfer.py", tmp_path, "--fail-on-cycle")
    assert proc.returncode == 86, proc.stderr
    [found] = report["potential_deadlocks"]
    assert found["scope"] == "instance"
    sites = {lk["site"] for lk in found["locks"]}
    assert len(sites) == 1 and next(iter(sites)).endswith(
        f"bank_transfer.py:{line_of(EXAMPLES / 'bank_transfer.py', 'self.lock = threading.Lock()')}")
    assert len({lk["instance"] for lk in found["locks"]}) == 2
    assert {e["thread"] for e in found["edges"]} == {"pay-bob", "refund-alice"}


def test_consistent_order_is_clean(tmp_path):
    proc, report = run_example("consistent_order.py", tmp_path, "--fail-on-cycle")
    assert proc.returncode == 0, proc.stderr
    assert report["potential_deadlocks"] == []
    account = [lk for lk in report["locks"] if lk["site"].endswith(
        f"consistent_order.py:{line_of(EXAMPLES / 'consistent_order.py', 'self.lock = threading.Lock()')}")]
    assert account and account[0]["instances"] == 8
    # nested same-site instances were really recorded, just in a consistent order
    edges = SavedReport.from_dict(report).snapshot.site_edges  # rows referring to tables: read them
    assert any(e.src == e.dst == account[0]["key"] for e in edges)
    assert "no potential deadlocks found" in proc.stderr


def test_condition_pipeline(tmp_path):
    proc, report = run_example("condition_pipeline.py", tmp_path, "--fail-on-cycle")
    assert proc.returncode == 0, proc.stderr
    assert "consumed 2000 items" in proc.stdout
    assert report["potential_deadlocks"] == []
    [cond] = [lk for lk in report["locks"] if lk["name"] == "buffer_ready"]
    assert cond["kind"] == "Condition"
    # every wait() re-take is an acquisition, so there are more than the 2002+ `with` blocks
    assert cond["acquisitions"] >= 2 * 2001
    assert cond["hold"]["count"] == cond["acquisitions"]


def test_contention_hotspot(tmp_path):
    proc, report = run_example("contention_hotspot.py", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert report["potential_deadlocks"] == []
    locks = {lk["name"]: lk for lk in report["locks"]}
    hot = locks["registry_lock"]
    assert hot["acquisitions"] == 800
    assert hot["contended"] > 0 and hot["wait"]["count"] == hot["contended"]
    assert "Most contended locks" in proc.stderr
    table = proc.stderr.split("Most contended locks", 1)[1].splitlines()
    assert "registry_lock" in table[2]  # first row of the table
