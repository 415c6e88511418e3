"""Triage of potential deadlocks, from real threaded programs run under `python -m lockwatch`:
deadlock, single-thread, timed, semaphore, guarded (and when guarded must not be claimed), and
cycles made only of the standard library's locks."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import support
from support import line_of

from lockwatch import stacks
from lockwatch.analysis import analyze
from lockwatch.model import EdgeRecord, LockStats, Snapshot
from lockwatch.renderers import text
from lockwatch.snapshot import is_stdlib

pytestmark = pytest.mark.timeout(180)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = Path(__file__).resolve().parent / "programs" / "precision"
EXIT_POTENTIAL_DEADLOCK = 86


def lockwatch(*argv: str, cwd: Path = PROGRAMS) -> subprocess.CompletedProcess[str]:
    """`python -m lockwatch ARGV...` in a subprocess, in tests/programs/precision by default."""
    return support.lockwatch(*argv, cwd=cwd)


def run_program(tmp_path: Path, program: str, *args: str,
                fail: bool = True) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run a program of tests/programs/precision under lockwatch; the result and its JSON report."""
    out = tmp_path / f"{program}-{'-'.join(args) or 'plain'}.json"
    result = lockwatch("--json", str(out), *(["--fail-on-cycle"] if fail else []), program, *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result, json.loads(out.read_text())


def only_cycle(report: dict[str, Any]) -> dict[str, Any]:
    found = report["potential_deadlocks"]
    assert len(found) == 1, [(p["triage"], [lk["name"] for lk in p["locks"]]) for p in found]
    return found[0]


def lock_names(p: dict[str, Any]) -> set[str]:
    return {lk["name"] for lk in p["locks"]}


def edge_threads(p: dict[str, Any]) -> set[str]:
    return {e["thread"] for e in p["edges"]}


# -- one test per label --------------------------------------------------------------------------


def test_two_threads_in_opposite_orders_are_a_deadlock(tmp_path: Path) -> None:
    result, report = run_program(tmp_path, "deadlock_abba.py")
    assert result.returncode == EXIT_POTENTIAL_DEADLOCK, result.stderr
    assert result.stdout == "report {'writes': 1, 'size': 1}\n"
    p = only_cycle(report)
    assert (p["triage"], p["scope"], p["origin"], p["fails"]) == ("deadlock", "instance", "user", True)
    assert lock_names(p) == {"cache_lock", "stats_lock"}
    assert edge_threads(p) == {"writer", "reporter"}
    assert p["gate"] is None and p["suppressed"] is None and p["known"] is False
    assert [r.split(":")[0] for r in p["reasons"]] == ["deadlock"]
    assert "[deadlock risk]" in result.stderr


def test_threads_that_never_overlapped_are_not_downgraded(tmp_path: Path) -> None:
    """The writer thread is joined before the reporter starts. Never ran together, still a
    deadlock: and the system often hands the second thread the first one's identifier, which
    must not make the two look like one thread."""
    reused = False
    for attempt in range(8):
        result, report = run_program(tmp_path, "deadlock_disjoint.py")
        assert result.returncode == EXIT_POTENTIAL_DEADLOCK, result.stderr
        p = only_cycle(report)
        assert p["triage"] == "deadlock", (attempt, result.stdout, p["reasons"])
        assert not any(r.startswith("single-thread") for r in p["reasons"]), p["reasons"]
        assert edge_threads(p) == {"writer", "reporter"}
        assert len({e["thread_id"] for e in p["edges"]}) == 2
        assert p["fails"] is True
        reused = result.stdout == "same ident True\n"
        if reused:  # the case that once read as single-thread has been seen: enough
            break
        assert result.stdout == "same ident False\n"


def test_one_thread_in_both_orders_is_single_thread_and_still_fails(tmp_path: Path) -> None:
    result, report = run_program(tmp_path, "single_thread.py")
    assert result.returncode == EXIT_POTENTIAL_DEADLOCK, result.stderr
    assert result.stdout == "done {'debug': True}\n"
    p = only_cycle(report)
    assert (p["triage"], p["fails"]) == ("single-thread", True)
    assert lock_names(p) == {"config_lock", "registry_lock"}
    assert edge_threads(p) == {"MainThread"}
    [reason] = p["reasons"]
    assert reason.startswith("single-thread:") and "'MainThread'" in reason
    assert "[single-thread inversion]" in result.stderr
    assert "1 single-thread inversion" in result.stderr


def test_cycle_closed_only_by_a_timed_acquire_is_timed(tmp_path: Path) -> None:
    result, report = run_program(tmp_path, "timed.py")
    assert result.returncode == 0, result.stderr  # a stall, not a hang: does not fail
    assert result.stdout == "done\n"
    p = only_cycle(report)
    assert (p["triage"], p["fails"]) == ("timed", False)
    timed = {(e["thread"], e["timed"]) for e in p["edges"]}
    assert timed == {("producer", False), ("flusher", True)}
    assert [r.split(":")[0] for r in p["reasons"]] == ["timed"]
    assert "queue_lock" in p["reasons"][0]
    assert "[timed (stall, not hang)]" in result.stderr


def test_cycle_through_a_semaphore_is_semaphore(tmp_path: Path) -> None:
    result, report = run_program(tmp_path, "semaphore.py")
    assert result.returncode == EXIT_POTENTIAL_DEADLOCK, result.stderr
    p = only_cycle(report)
    assert (p["triage"], p["fails"]) == ("semaphore", True)
    assert {(lk["name"], lk["kind"]) for lk in p["locks"]} == {("pool", "Semaphore"), ("table_lock", "Lock")}
    assert edge_threads(p) == {"query", "migrate"}
    assert [r.split(":")[0] for r in p["reasons"]] == ["semaphore"]
    assert "pool (value 2)" in p["reasons"][0]
    [pool] = [s for s in report["locks"] if s["name"] == "pool"]
    assert pool["value"] == 2 and pool["signal"] is False


def test_cycle_always_taken_under_one_gate_lock_is_guarded(tmp_path: Path) -> None:
    result, report = run_program(tmp_path, "guarded.py")
    assert result.returncode == 0, result.stderr
    p = only_cycle(report)
    assert (p["triage"], p["gate"], p["fails"]) == ("guarded", "G", False)
    assert lock_names(p) == {"A", "B"}
    assert edge_threads(p) == {"first", "second"}
    [reason] = p["reasons"]
    assert reason.startswith("guarded:") and "holding G" in reason
    g_site = f"{PROGRAMS / 'guarded.py'}:{line_of(PROGRAMS / 'guarded.py', 'G = threading.Lock()')}"
    g_key = next(s["key"] for s in report["locks"] if s["site"] == g_site)
    for e in p["edges"]:
        assert e["gates"] == [g_key], e


@pytest.mark.parametrize("mode", ["leak-first", "leak-later"])
def test_one_occurrence_without_the_gate_withdraws_guarded(tmp_path: Path, mode: str) -> None:
    result, report = run_program(tmp_path, "guarded.py", mode)
    assert result.returncode == EXIT_POTENTIAL_DEADLOCK, result.stderr
    assert result.stdout == f"done {mode}\n"
    p = only_cycle(report)
    assert (p["triage"], p["gate"], p["fails"]) == ("deadlock", None, True)
    assert not any("guarded" in r for r in p["reasons"])
    [ab] = [e for e in p["edges"] if e["thread"] == "first"]
    assert ab["gates"] == [] and ab["count"] == (2 if mode == "leak-first" else 3)


def test_site_scope_cycle_under_a_gate_is_guarded(tmp_path: Path) -> None:
    result, report = run_program(tmp_path, "guarded_sites.py")
    assert result.returncode == 0, result.stderr
    p = only_cycle(report)
    assert (p["scope"], p["triage"], p["gate"], p["fails"]) == ("site", "guarded", "rebalance_lock", False)
    assert lock_names(p) == {"Shard.data_lock", "Shard.index_lock"}  # attributes of Shard


def test_site_scope_guarded_is_withdrawn_by_other_objects_taken_without_the_gate(tmp_path: Path) -> None:
    """Another shard takes data -> index without the rebalance lock: an occurrence of the same
    site edge (other objects), so the site cycle is no longer guarded."""
    result, report = run_program(tmp_path, "guarded_sites.py", "leak")
    assert result.returncode == EXIT_POTENTIAL_DEADLOCK, result.stderr
    p = only_cycle(report)
    assert (p["scope"], p["triage"], p["gate"], p["fails"]) == ("site", "deadlock", None, True)


def test_guarded_program_exits_0_under_the_fail_option_and_says_why() -> None:
    """A program whose only cycle is guarded by a gate lock exits 0 under the fail option, and
    says why."""
    result = lockwatch("--fail-on-cycle", "guarded.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done \n"
    assert "lockwatch: 1 potential deadlock (lock-order inversion): 1 guarded by a gate lock" in result.stderr
    assert "Potential deadlock 1 of 1: A -> B -> A   [guarded by a gate lock]" in result.stderr
    assert "guarded: every edge was taken while holding G," in result.stderr


def test_the_same_cycle_without_the_gate_fails_the_run() -> None:
    result = lockwatch("--fail-on-cycle", "-q", "guarded.py", "leak-later")
    assert result.returncode == EXIT_POTENTIAL_DEADLOCK
    # -q: no report, only the closing line that says why the status is 86.
    assert result.stderr.startswith("lockwatch: exit status 86 (--fail-on-cycle)"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


# -- the standard library's own cycles ------------------------------------------------------------


def test_stdlib_classification() -> None:
    assert is_stdlib(logging.__file__)
    assert is_stdlib(threading.__file__)
    assert is_stdlib("<frozen importlib._bootstrap>")
    assert not is_stdlib(__file__)
    assert not is_stdlib(str(PROGRAMS / "stdlib_logging.py"))
    import wrapt  # site-packages is not the standard library

    assert not is_stdlib(wrapt.__file__)


def test_stdlib_folders_are_sysconfigs_for_every_module_loaded() -> None:
    """lockwatch finds the standard library's folders without sysconfig (stacks.STDLIB_DIRS):
    every loaded module's file is classified as with sysconfig's "stdlib" and "platstdlib"."""
    import sysconfig

    paths = sysconfig.get_paths()
    std = tuple({os.path.abspath(paths[k]) + os.sep for k in ("stdlib", "platstdlib") if k in paths})

    def by_sysconfig(path: str) -> bool:
        path = os.path.abspath(path)
        return path.startswith(std) and "site-packages" not in path and "dist-packages" not in path

    files = [m.__file__ for m in list(sys.modules.values()) if isinstance(getattr(m, "__file__", None), str)]
    assert sum(map(by_sysconfig, files)) > 20  # the standard library's modules are among them
    assert [f for f in files if is_stdlib(f) != by_sysconfig(f)] == []
    assert set(stacks.STDLIB_DIRS) <= set(std)  # a virtual environment's own lib/pythonX.Y aside


def _lock(name: str, filename: str, stdlib: bool, line: int = 10) -> LockStats:
    return LockStats(key=f"{filename}:{line}:RLock", name=name, kind="RLock", filename=filename,
                     line=line, function="<module>", stdlib=stdlib, instances=1)


def _edge(a: LockStats, b: LockStats, thread: str, tid: str) -> EdgeRecord:
    return EdgeRecord(src=a.key, dst=b.key, thread=thread, held_stack=[f"{a.filename}:20 in f"],
                      acquire_stack=[f"{b.filename}:21 in f"], thread_id=tid)


def _two_lock_snapshot(a_stdlib: bool, b_stdlib: bool) -> Snapshot:
    a = _lock("_lock", os.path.join(os.path.dirname(logging.__file__), "__init__.py"), a_stdlib)
    b = _lock("other", os.path.join(os.path.dirname(logging.__file__), "handlers.py"), b_stdlib, 20)
    edges = [_edge(a, b, "T1", "1:1"), _edge(b, a, "T2", "1:2")]
    return Snapshot(locks=[a, b], site_edges=edges)


def test_hand_built_cycle_of_stdlib_locks_is_reported_apart_and_does_not_fail() -> None:
    report = analyze(_two_lock_snapshot(True, True))
    [p] = report.potential_deadlocks
    assert (p.origin, p.triage, p.fails) == ("stdlib", "deadlock", False)
    assert report.failing == []
    out = text.render(report)
    assert "lockwatch: no potential deadlocks found" in out
    assert "also: 1 in the standard library" in out
    section = out.index("Potential deadlocks inside the standard library")
    assert out.index("Potential deadlock 1 of 1: _lock -> other -> _lock") > section


def test_a_cycle_with_one_user_lock_is_the_users() -> None:
    report = analyze(_two_lock_snapshot(True, False))
    [p] = report.potential_deadlocks
    assert (p.origin, p.fails) == ("user", True)
    assert report.failing == [p]
    out = text.render(report)
    assert "Potential deadlocks inside the standard library" not in out
    assert "lockwatch: 1 potential deadlock (lock-order inversion): 1 deadlock risk" in out


def test_real_cycle_between_two_logging_handlers_is_the_standard_librarys(tmp_path: Path) -> None:
    """A MemoryHandler flushing into a StreamHandler, and that StreamHandler's formatter logging
    through the MemoryHandler: both locks are created by logging.Handler.createLock."""
    result, report = run_program(tmp_path, "stdlib_logging.py")
    assert result.returncode == 0, result.stderr  # does not fail the run
    assert result.stdout == "['batch job failed', 'web request done']\n"
    p = only_cycle(report)
    assert (p["origin"], p["triage"], p["fails"]) == ("stdlib", "deadlock", False)
    assert p["scope"] == "instance" and {lk["kind"] for lk in p["locks"]} == {"RLock"}
    logging_dir = os.path.dirname(logging.__file__)
    for lk in p["locks"]:
        assert lk["site"].startswith(logging_dir + os.sep), lk
    assert edge_threads(p) == {"batch", "web"}
    for s in report["locks"]:
        if s["key"] in {lk["key"] for lk in p["locks"]}:
            assert s["stdlib"] is True
    assert "lockwatch: no potential deadlocks found" in result.stderr
    assert "also: 1 in the standard library" in result.stderr
    assert "Potential deadlocks inside the standard library" in result.stderr
