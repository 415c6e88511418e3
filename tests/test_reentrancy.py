"""Code that takes locks while its own thread is in the middle of lockwatch's bookkeeping:
finalizers run by the garbage collector, weakref callbacks, signal handlers, trace and profile
hooks. lockwatch must not deadlock on itself, raise, lose or double a count, or leave a lock in a
thread's held list.

Each scenario runs in its own process under `python -m lockwatch` (a deadlock there ends the
run with the watchdog's status 87, or is a timeout, never a hung test run): the program
(tests/programs/processes/reentrancy.py) counts every acquisition itself, and says how often the
hook ran while the thread was inside lockwatch's code (and inside the recording of a new
lock-order edge), so that a run that never got there fails instead of passing vacuously.
"""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from support import PROGRAMS, child_env, lockwatch, report_of

pytestmark = pytest.mark.timeout(300)

PROGRAM = PROGRAMS / "processes" / "reentrancy.py"
TIMEOUT = 240
SITE_GROUPS = {"fresh_a": "fresh", "fresh_b": "fresh"}  # as in the program
# The locks each scenario's hook takes (the main loop's are always taken).
HOOK_LOCKS = {
    "del": ["hook_lock", "hook_sem", "made", "own"],
    "weakref": ["hook_lock", "hook_sem"],
    "sigalrm": ["hook_rlock", "hook_lock", "hook_sem"],
    "sigusr1": ["hook_rlock", "hook_lock", "hook_sem"],
    "settrace": ["hook_lock", "hook_sem"],
    "setprofile": ["hook_lock", "hook_sem"],
}
LOOP_LOCKS = ["l_lock", "l_rlock", "l_timed", "l_sem", "l_bsem", "l_cond", "fresh"]


def run_scenario(mode: str, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    out = tmp_path / "report.json"
    result = lockwatch("-q", "--json", str(out), str(PROGRAM), mode, cwd=PROGRAM.parent,
                       env=child_env(tmp_path), timeout=TIMEOUT)
    assert result.returncode == 0, f"{mode}: status {result.returncode}\n{result.stderr}"
    assert result.stderr == "", result.stderr  # no exception, no "Exception ignored in"
    *_, last = result.stdout.splitlines()
    return json.loads(last), report_of(out)


@pytest.mark.parametrize("mode", [
    "del",
    "weakref",
    pytest.param("sigalrm", marks=pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="setitimer")),
    pytest.param("sigusr1", marks=pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="SIGUSR1")),
    "settrace",
    "setprofile",
])
def test_locks_taken_from_inside_lockwatchs_own_code(mode: str, tmp_path: Path) -> None:
    result, report = run_scenario(mode, tmp_path)
    expected, recorded = result["expected"], result["recorded"]

    # The scenario really happened: the hook took its locks, and did so while the thread was
    # inside lockwatch (and inside the recording of an edge, where lockwatch is re-entered).
    for name in HOOK_LOCKS[mode]:
        assert expected[name][0] > 0, (name, expected)
    assert expected["never_free"][1] == expected["hook_sem"][0]  # one failed try-lock per hook run
    assert result["inside"] > 0, result
    assert result["busy"] > 0, result
    assert result["mutex"] > 0, result  # lockwatch's mutex re-entered from the hook

    # Every count exact: acquisitions and failures as the program counted them, one hold per
    # acquisition (all were released).
    for name, (acquired, failed) in expected.items():
        got = recorded.get(name, [0, 0, 0])
        assert got == [acquired, failed, acquired], (name, got, expected[name])
    for name in LOOP_LOCKS:
        assert expected[name][0] > 0, (name, expected)
    assert expected["l_lock"][1] == expected["l_lock"][0]  # one failed try-lock per iteration

    assert result["internal_errors"] == []
    assert all(n == 0 for n in result["held"]), result["held"]  # every thread's held list empty

    # The report written at exit agrees (nothing was lost or added after the program looked).
    assert report["internal_errors"] == []
    at_exit: dict[str, int] = {}
    for lock in report["locks"]:
        if os.path.basename(lock["site"].rsplit(":", 1)[0]) == PROGRAM.name:
            key = SITE_GROUPS.get(lock["name"], lock["name"]).rsplit(".", 1)[-1]  # "Garbage.own" -> "own"
            at_exit[key] = at_exit.get(key, 0) + lock["acquisitions"]
    assert {k: v for k, v in at_exit.items() if v} == {k: v[0] for k, v in expected.items() if v[0]}


@pytest.mark.parametrize("mode", [
    "profile", "trace", "finalizer", "condition",
    pytest.param("signal", marks=pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="SIGUSR1")),
])
def test_program_code_inside_lockwatchs_bookkeeping_waiting_for_another_thread(tmp_path: Path,
                                                                               mode: str) -> None:
    """tests/programs/processes/mutex_hook_deadlock.py: thread B's program code (a profile or
    trace hook, a finalizer, a signal handler) runs while B holds lockwatch's mutex, and waits for
    a lock (or a Condition) thread A holds; A then fails a try-lock, which lockwatch counts under
    the mutex. B gives the mutex up while it waits, so both finish."""
    program = PROGRAM.parent / "mutex_hook_deadlock.py"
    out = tmp_path / "report.json"
    result = lockwatch("-q", "--json", str(out), str(program), mode, cwd=program.parent,
                       env=child_env(tmp_path), timeout=60)
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr
    report = report_of(out)
    assert report["internal_errors"] == []
    by_name = {lock["name"]: lock for lock in report["locks"]}
    assert by_name["never_free"]["failed"] == 1  # A's try-lock, counted once
    assert by_name["sem"]["acquisitions"] == 1
