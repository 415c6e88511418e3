"""Tests for `pytest --lockwatch --lockwatch-confirm`: the split inversion's tests run together."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from support import PROGRAMS, python, report_of
from support import child_env as env
from test_confirm import _processes_under

from lockwatch.confirm_pytest import SUMMARY

pytestmark = pytest.mark.timeout(180)

SPLIT = PROGRAMS / "confirm" / "pytest_split"


def run_suite(tmp_path: Path, *args: str) -> tuple[Any, dict[str, Any]]:
    work = tmp_path / "suite"
    shutil.copytree(SPLIT, work)
    (work / "pytest.ini").write_text("[pytest]\n")  # the rootdir: test ids as a user sees them
    report = tmp_path / "report.json"
    proc = python("-m", "pytest", "-p", "no:cacheprovider", "--lockwatch", "--lockwatch-json", str(report),
                  "--lockwatch-confirm-pause", "3", *args, cwd=work, env=env(tmp_path / "tmp"), timeout=150)
    assert _processes_under(work) == []
    return proc, report_of(report)


def by_locks(data: dict[str, Any], names: set[str]) -> dict[str, Any]:
    [found] = [p for p in data["potential_deadlocks"] if {lk["name"] for lk in p["locks"]} == names]
    return found


def test_the_split_inversion_is_confirmed_by_running_both_tests_together(tmp_path: Path) -> None:
    proc, data = run_suite(tmp_path, "--lockwatch-confirm", "test_cart.py", "test_stock.py")
    assert proc.returncode == 1, proc.stdout  # the inversion fails the run, as without confirming
    found = by_locks(data, {"cart_lock", "stock_lock"})
    assert found["triage"] == "single-thread"  # the suite ran both orders in its one thread
    c = found["confirmation"]
    assert c["status"] == "confirmed", c
    tests = ["test_cart.py::test_checkout", "test_stock.py::test_restock"]
    assert c["tests"] == tests
    # each body ran in a thread of its own (named after its test), and they deadlocked on the cycle
    threads = c["deadlock"]["threads"]
    assert sorted(t["name"] for t in threads) == tests
    assert sorted(t["waiting_for"]["name"] for t in threads) == ["cart_lock", "stock_lock"]
    assert any(frame.endswith("in test_checkout") for t in threads for frame in t["stack"])
    assert "run at the same time, one thread each" in c["reason"]
    text = " ".join(proc.stdout.split())
    assert " ".join(SUMMARY.split()) in text
    assert "CONFIRMED: this deadlock was reproduced in run" in text
    assert "lockwatch: 1 of 1 potential deadlock(s) confirmed" in text


def test_an_inversion_inside_one_test_is_not_attempted(tmp_path: Path) -> None:
    proc, data = run_suite(tmp_path, "--lockwatch-confirm", "--lockwatch-confirm-runs", "2", "test_both.py")
    c = by_locks(data, {"first", "second"})["confirmation"]
    assert c["status"] == "not-reproduced" and c["runs"] == 0
    assert "of the one test test_both.py::test_both_orders" in c["reason"]


def test_without_confirm_nothing_is_re_run(tmp_path: Path) -> None:
    proc, data = run_suite(tmp_path, "test_cart.py", "test_stock.py")
    assert "confirmation" not in by_locks(data, {"cart_lock", "stock_lock"})
    assert "lockwatch-confirm" not in proc.stdout


def test_a_bad_confirm_setting_is_a_usage_error(tmp_path: Path) -> None:
    proc = python("-m", "pytest", "-p", "no:cacheprovider", "--lockwatch", "--lockwatch-confirm-runs", "many",
                  cwd=tmp_path, env=env())
    assert proc.returncode == 4
    assert "--lockwatch-confirm-runs: 'many' is not a number of runs" in proc.stderr
