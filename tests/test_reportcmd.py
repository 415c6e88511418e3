"""Tests for `lockwatch report`: re-rendering a saved report, merging several, and one-line errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from support import child_env as env
from support import load_report_fixture as load_fixture
from support import lockwatch

from lockwatch import cli
from lockwatch.analysis import Report, analyze
from lockwatch.cli import report as reportcmd
from lockwatch.model import VERSION, load
from lockwatch.renderers import jsonreport, text

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
MERGE = FIXTURES / "report_merge"
PROG = "lockwatch report"


fx = load_fixture()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`lockwatch report ARGV...` in this process, as lockwatch.cli.main dispatches it."""
    status = cli.main(["report", *argv], prog_name="lockwatch")
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def shop_json(tmp_path: Path) -> Path:
    path = tmp_path / "shop.json"
    path.write_text(jsonreport.render(fx.shop_report()), encoding="utf-8")
    return path


# -- merging reports of separate runs ---------------------------------------------------------------


def test_merging_two_runs_finds_the_cycle_that_neither_shows(tmp_path: Path) -> None:
    for script, out in (("a_then_b.py", "a.json"), ("b_then_a.py", "b.json")):
        proc = lockwatch("-q", "--json", str(tmp_path / out), str(MERGE / script), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        alone = json.loads((tmp_path / out).read_text())
        assert alone["potential_deadlocks"] == []
        assert any(src.startswith(str(MERGE / "shared_locks.py")) for src in alone["sites"])

    proc = lockwatch("report", "a.json", "b.json", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    data = json.loads(proc.stdout)
    [found] = data["potential_deadlocks"]
    assert found["scope"] == "site"  # two processes: the objects never met, their sites did
    assert sorted(lk["name"] for lk in found["locks"]) == ["lock_a", "lock_b"]
    assert {lk["site"].rpartition(":")[0] for lk in found["locks"]} == {str(MERGE / "shared_locks.py")}
    assert sorted(e["thread"] for e in found["edges"]) == ["backward", "forward"]
    assert data["meta"]["merged"] == 2

    # The same, in the default text format, and through the console script.
    script = Path(sys.executable).parent / ("lockwatch.exe" if os.name == "nt" else "lockwatch")
    if script.exists():
        proc = subprocess.run([str(script), "report", "a.json", "b.json"], cwd=tmp_path, env=env(),
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "lock_a -> lock_b -> lock_a" in proc.stdout or "lock_b -> lock_a -> lock_b" in proc.stdout
        assert "scope: site" in proc.stdout


def test_merging_concatenates_real_deadlocks_and_alerts(capsys: Any, shop_json: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text(jsonreport.render(fx.empty_report()))
    status, out, err = run(capsys, str(shop_json), str(empty), str(shop_json), "--format", "json")
    assert (status, err) == (0, "")
    data = json.loads(out)
    assert len(data["deadlocks"]) == 4 and len(data["alerts"]) == 4
    assert data["deadlocks"][0]["threads"][0]["name"] == "worker-1"
    assert len(data["potential_deadlocks"]) == 4  # the same cycles, once each
    cart = next(lk for lk in data["locks"] if lk["name"] == "_cart_lock")
    assert cart["acquisitions"] == 2_000  # counters add up


# -- re-rendering one report ---------------------------------------------------------------------------


def test_one_file_is_rerendered_with_the_same_findings(capsys: Any, shop_json: Path) -> None:
    status, out, err = run(capsys, str(shop_json), "--format", "json")
    assert (status, err) == (0, "")
    again, before = json.loads(out), json.loads(shop_json.read_text())
    for key in ("potential_deadlocks", "deadlocks", "alerts", "locks", "lock_order"):
        assert again[key] == before[key], key
    assert any(p["suppressed"] == fx.SUPPRESSED for p in again["potential_deadlocks"])  # kept


def test_default_format_is_the_text_report(capsys: Any, shop_json: Path) -> None:
    status, out, err = run(capsys, str(shop_json))
    assert (status, err) == (0, "")
    expected = reportcmd.combine([str(shop_json)])
    assert out == text.render(expected)
    assert "_cart_lock -> stock_lock -> _cart_lock" in out


def test_every_format(capsys: Any, shop_json: Path) -> None:
    status, out, _ = run(capsys, str(shop_json), "--format", "html")
    assert status == 0 and out.startswith("<!DOCTYPE html>") and 'id="cycle-4"' in out
    status, out, _ = run(capsys, str(shop_json), "--format", "dot")
    assert status == 0 and out.startswith("//") and "digraph lockwatch {" in out
    assert out.count(f'color="{"#c6372c"}", fontcolor') == 8
    status, out, _ = run(capsys, str(shop_json), "-f", "graphml")
    assert status == 0
    g = nx.parse_graphml(out)
    assert (g.number_of_nodes(), g.number_of_edges()) == (10, 10)


def test_output_file(capsys: Any, shop_json: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.html"
    target.parent.mkdir()
    status, out, err = run(capsys, str(shop_json), "--format", "html", "-o", str(target))
    assert (status, out) == (0, "")
    assert err.count("\n") == 1 and str(target) in err
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("where", ["missing-dir", "directory"])
def test_output_that_cannot_be_written(capsys: Any, shop_json: Path, tmp_path: Path, where: str) -> None:
    target = tmp_path / "nope" / "x.html" if where == "missing-dir" else tmp_path
    status, out, err = run(capsys, str(shop_json), "-o", str(target))
    assert (status, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith(f"{PROG}: error: ")
    assert ("does not exist" if where == "missing-dir" else "is a directory") in err


# -- bad input: one line, exit 2 --------------------------------------------------------------------------


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Files that `lockwatch report` must refuse, with a word of the message each gets."""
    report = json.loads(jsonreport.render(fx.shop_report()))
    newer = dict(report, version=VERSION + 1)
    damaged = json.loads(json.dumps(report))
    del damaged["locks"][0]["site"]
    files: dict[str, tuple[Path, Any, str]] = {
        "missing": (tmp_path / "missing.json", None, "cannot read"),
        "not-json": (tmp_path / "notes.txt", "lockwatch: 1 potential deadlock\n{", "not JSON"),
        "binary": (tmp_path / "blob.json", b"\x89PNG\r\n\x1a\n\x00\xff", "not JSON"),
        "other-json": (tmp_path / "coverage.json", json.dumps({"format": "coverage", "version": 1}),
                       "not a lockwatch report"),
        "list": (tmp_path / "list.json", "[1, 2]", "not a lockwatch report"),
        "newer": (tmp_path / "future.json", json.dumps(newer), f"version {VERSION + 1}"),
        "damaged": (tmp_path / "damaged.json", json.dumps(damaged), "damaged"),
    }
    out = {}
    for key, (path, content, message) in files.items():
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            path.write_text(content)
        out[key] = (path, message)
    return out


@pytest.mark.parametrize("kind", ["missing", "not-json", "binary", "other-json", "list", "newer", "damaged"])
def test_a_bad_file_is_one_line_and_exit_2(capsys: Any, shop_json: Path, tmp_path: Path, kind: str) -> None:
    path, message = bad_files(tmp_path)[kind]
    for argv in ([str(path)], [str(shop_json), str(path), "--format", "json"]):  # alone, or among good ones
        status, out, err = run(capsys, *argv)
        assert (status, out) == (2, ""), err
        assert err.count("\n") == 1 and err.startswith(f"{PROG}: error: "), err
        assert message in err and str(path) in err
        assert "Traceback" not in err


def test_bad_files_through_the_command_line(tmp_path: Path) -> None:
    proc = lockwatch("report", "missing.json", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "python -m lockwatch report: error: cannot read missing.json: No such file or directory\n"


@pytest.mark.parametrize("argv, message", [
    ([], "Missing argument"),
    (["x.json", "--format", "pdf"], "'pdf' is not one of"),
    (["x.json", "--no-such-option"], "No such option"),
])
def test_usage_errors(capsys: Any, argv: list[str], message: str) -> None:
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith(f"{PROG}: error: ") and message in err


def test_help_explains_with_examples(capsys: Any) -> None:
    status, out, err = run(capsys, "--help")
    assert (status, err) == (0, "")
    assert f"Usage: {PROG} [OPTIONS] FILE.json [FILE.json ...]" in out
    for fmt in ("text", "json", "html", "dot", "graphml"):
        assert fmt in out
    assert "lockwatch report run.json --format html -o lockwatch.html" in out
    assert "merged" in out


def test_combine_of_one_file_equals_analysis_of_its_snapshot(shop_json: Path) -> None:
    saved = load(str(shop_json))
    ours: Report = reportcmd.combine([str(shop_json)])
    fresh = analyze(saved.snapshot)
    assert sorted(p.fingerprint for p in ours.potential_deadlocks) == sorted(
        p.fingerprint for p in fresh.potential_deadlocks)
    assert ours.deadlocks == saved.deadlocks
