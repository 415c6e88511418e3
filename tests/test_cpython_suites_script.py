"""scripts/cpython_suites.py's known CPython deadlocks: which failures they excuse, and which not.

The script compares CPython's suites with and without lockwatch; a deadlock of CPython's own that
lockwatch's watchdog ended is not counted as lockwatch's only for the listed test, on a Python
without the fix, when the report shows that very deadlock."""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from typing import Any

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, os.pardir, "scripts", "cpython_suites.py")


@pytest.fixture(scope="module")
def suites() -> Any:
    spec = importlib.util.spec_from_file_location("cpython_suites_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import would: its classes name their module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def thread(name: str, waits_for: str, kind: str = "Lock") -> dict[str, Any]:
    return {"name": name, "waiting_for": {"name": waits_for, "kind": kind, "site": None},
            "holds": [], "stack": []}


# The shape of the report that a run of test_shutdown_deadlock_pickle under lockwatch wrote on
# 3.13.0 when the watchdog ended gh-125451 (names as the report gave them).
GH125451 = [thread("QueueFeederThread", "ProcessPoolExecutor._shutdown_lock"),
            thread("MainThread", "a future", "Future"),
            thread("Thread-16", "QueueFeederThread", "Thread")]
FILE_ENTRY = "test_concurrent_futures.test_deadlock [file]"
RUNNING = ("test_shutdown_deadlock (test.test_concurrent_futures.test_deadlock.X.test_shutdown_deadlock) ... ok\n"
           "test_shutdown_deadlock_pickle (test.test_concurrent_futures.test_deadlock.X."
           "test_shutdown_deadlock_pickle) ...")


def outcome(suites: Any, tmp_path: Any, threads: list[dict[str, Any]], entry: str = FILE_ENTRY,
            running: str = RUNNING) -> Any:
    path = tmp_path / "all.j0.lockwatch.lockwatch.json"
    path.write_text(json.dumps({"version": 1, "deadlocks": [{"threads": threads}]}))
    result = suites.Outcome()
    result.failing[entry] = "file failed"
    result.tracebacks[entry] = running
    result.deadlocks = suites.real_deadlocks(str(path))
    return result


@pytest.mark.parametrize("version, affected", [
    ((3, 9, 18), True), ((3, 11, 7), True), ((3, 12, 1), True), ((3, 12, 7), True),
    ((3, 12, 8), False), ((3, 13, 0), True), ((3, 13, 1), False), ((3, 14, 0), False),
])
def test_gh125451_affects_the_pythons_without_the_fix(suites: Any, version: tuple[int, ...],
                                                     affected: bool) -> None:
    (bug,) = [k for k in suites.KNOWN_DEADLOCKS if k.issue == "gh-125451"]
    assert bug.affects(version) is affected


def test_the_deadlock_itself_is_excused(suites: Any, tmp_path: Any) -> None:
    (bug,) = suites.KNOWN_DEADLOCKS
    watched = outcome(suites, tmp_path, GH125451)
    assert bug.explains(FILE_ENTRY, watched, (3, 13, 0))
    assert "gh-125451" in bug.describe() and "3.13.1" in bug.describe()


def test_not_on_a_python_with_the_fix(suites: Any, tmp_path: Any) -> None:
    (bug,) = suites.KNOWN_DEADLOCKS
    assert not bug.explains(FILE_ENTRY, outcome(suites, tmp_path, GH125451), (3, 13, 1))


def test_not_another_deadlock_in_the_same_test(suites: Any, tmp_path: Any) -> None:
    # A deadlock the watchdog ended that is not gh-125451's (lockwatch's own doing, say) counts.
    (bug,) = suites.KNOWN_DEADLOCKS
    other = [thread("QueueFeederThread", "Queue.mutex"), thread("Thread-16", "QueueFeederThread", "Thread")]
    assert not bug.explains(FILE_ENTRY, outcome(suites, tmp_path, other), (3, 13, 0))


def test_not_without_a_deadlock(suites: Any, tmp_path: Any) -> None:
    # The same test failing in another way (no deadlock ended) counts.
    (bug,) = suites.KNOWN_DEADLOCKS
    assert not bug.explains(FILE_ENTRY, outcome(suites, tmp_path, []), (3, 13, 0))


def test_not_another_test(suites: Any, tmp_path: Any) -> None:
    (bug,) = suites.KNOWN_DEADLOCKS
    elsewhere = outcome(suites, tmp_path, GH125451, running="test_shutdown_deadlock (x) ...")
    assert not bug.explains(FILE_ENTRY, elsewhere, (3, 13, 0))
    entry = "test_threading.ThreadTests.test_shutdown_deadlock_pickle"
    assert not bug.explains(entry, outcome(suites, tmp_path, GH125451, entry=entry), (3, 13, 0))
