"""Declared lock order: lockwatch.order(a, b, ...) and lockwatch.order_key(lock, key). A lock
taken against the declared order is reported at that first acquisition, before the reverse order
has ever been seen. Real threads, in subprocesses (lockwatch.watching(), and the CLI)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import PROGRAMS, frame_of, line_of, lockwatch, python, report_of

pytestmark = pytest.mark.timeout(180)

PRECISION = PROGRAMS / "precision"
PROGRAM = PRECISION / "declared_order.py"


def scenario(name: str) -> dict[str, Any]:
    """Run declared_order.py SCENARIO with plain python (it records with lockwatch.watching())."""
    result = python(str(PROGRAM), name, cwd=PRECISION)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return json.loads(result.stdout)


def test_declared_order_violation_is_reported_at_the_first_acquisition() -> None:
    out = scenario("order")
    # Read inside the thread, right after its one acquisition against the order: no cycle yet
    # (orders -> payments was never taken), and the violation is already there.
    assert out["cycles_inside"] == 0
    [v] = out["violations_inside"]
    assert v["kind"] == "declared-order"
    assert v["declared"] == ["orders_lock", "payments_lock"]
    assert v["thread"] == "refunder"
    assert (v["held"]["name"], v["held"]["kind"]) == ("payments_lock", "Lock")
    assert (v["acquired"]["name"], v["acquired"]["kind"]) == ("orders_lock", "Lock")
    assert v["held"]["site"] == f"{PROGRAM}:{line_of(PROGRAM, 'payments_lock = threading.Lock()')}"
    assert v["acquired"]["site"] == f"{PROGRAM}:{line_of(PROGRAM, 'orders_lock = threading.Lock()')}"
    # both stacks: where payments_lock was taken, then where orders_lock was
    assert v["held_stack"] == [frame_of(PROGRAM, "with payments_lock:", "refund")]
    assert v["acquire_stack"] == [frame_of(PROGRAM, "with orders_lock:  # against", "refund")]
    assert out["violations"] == out["violations_inside"]  # reported once


def test_order_key_taken_against_increasing_keys_is_a_violation() -> None:
    out = scenario("key-wrong")
    [v] = out["violations_inside"]
    assert v["kind"] == "order-key"
    assert v["declared"] == ["key 2", "key 1"]
    assert v["thread"] == "transfer-2-1"
    site = f"{PROGRAM}:{line_of(PROGRAM, 'self.lock = lockwatch.order_key(')}"
    assert v["held"]["site"] == v["acquired"]["site"] == site
    # innermost last; the thread's callers (a lambda, a list comprehension) come before
    assert v["held_stack"][-1] == frame_of(PROGRAM, "with first.lock:", "transfer")
    assert v["acquire_stack"][-1] == frame_of(PROGRAM, "with second.lock:", "transfer")
    assert v["held_stack"][:-1] == v["acquire_stack"][:-1] != []
    # Reported once per site, however many transfers repeat it.
    assert out["violations"] == out["violations_inside"]
    assert out["balances"] == [-100, 100, 300]


def test_order_key_taken_in_increasing_order_is_fine() -> None:
    """Four threads transfer between three accounts concurrently, always locking the lower
    account number first: no violation and no potential deadlock."""
    out = scenario("key-right")
    assert out["violations_inside"] == [] and out["violations"] == []
    assert out["cycles"] == 0
    assert sum(out["balances"]) == 300


def test_order_with_two_locks_of_one_site_is_an_error() -> None:
    out = scenario("same-site")
    assert "same site" in out["error"] and "order_key" in out["error"]


def test_order_and_order_key_need_instrumented_locks() -> None:
    out = scenario("not-instrumented")
    assert "instrumented" in out["error"]
    assert "instrumented" in out["key_error"]


def test_order_needs_two_locks() -> None:
    code = ("import threading, lockwatch\n"
            "with lockwatch.watching():\n"
            "    a = threading.Lock()\n"
            "    try:\n"
            "        lockwatch.order(a)\n"
            "    except ValueError as exc:\n"
            "        print('ValueError', exc)\n")
    result = python("-c", code, cwd=PRECISION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ValueError ") and "two locks" in result.stdout


def test_violation_in_the_cli_report(tmp_path: Path) -> None:
    """order(orders, payments, audit): taking audit then orders is against it (transitively),
    though no cycle was ever closed."""
    program = PRECISION / "declared_order_cli.py"
    out = tmp_path / "r.json"
    result = lockwatch("--json", str(out), str(program), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
    assert "lockwatch: no potential deadlocks found" in result.stderr
    assert "also: 1 declared lock order violation" in result.stderr
    assert ("Lock order violation: thread 'audit' took orders_lock while holding audit_lock, against "
            "the declared order orders_lock -> payments_lock -> audit_lock") in result.stderr
    report = report_of(out)
    assert report["potential_deadlocks"] == []
    [v] = report["order_violations"]
    assert (v["kind"], v["thread"], v["held"]["name"], v["acquired"]["name"]) == (
        "declared-order", "audit", "audit_lock", "orders_lock")
    assert v["held_stack"] == [frame_of(program, "with audit_lock:", "audit")]
    assert v["acquire_stack"] == [frame_of(program, "with orders_lock:  # audit before", "audit")]
