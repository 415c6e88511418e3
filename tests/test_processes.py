"""Everywhere a program goes: lockwatch switched on by the environment alone (the start-up hook
of pylockwatch.pth), in child processes of `python -m lockwatch` (subprocess, multiprocessing with
every start method, a bare os.fork), and across fork() itself. Real interpreters, real processes.

The programs are in tests/programs/processes/; the parent's and the child's halves of an
inversion take the locks of one shared module (shared_locks.py), so their creation sites match.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Optional

import pytest
from support import PROGRAMS, child_env, line_of, python, report_of

pytestmark = pytest.mark.timeout(300)

PROCESSES = PROGRAMS / "processes"
SHARED = PROCESSES / "shared_locks.py"
TIMEOUT = 240  # seconds for one program run: a hang fails the test, it never waits forever


LOCK_A = f"{SHARED}:{line_of(SHARED, 'lock_a = threading.Lock()')}"
LOCK_B = f"{SHARED}:{line_of(SHARED, 'lock_b = threading.Lock()')}"


def run(argv: list[str], env: dict[str, str], cwd: Optional[Path] = None) -> subprocess.CompletedProcess[str]:
    return python(*argv, cwd=cwd or PROCESSES, env=env, timeout=TIMEOUT)


def hook(*argv: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """`LOCKWATCH=1 python ARGV...`, nothing else changed."""
    return run(list(argv), child_env(LOCKWATCH="1", **extra))


def stdout_value(result: subprocess.CompletedProcess[str], key: str) -> str:
    found = [line[len(key) + 2:] for line in result.stdout.splitlines() if line.startswith(key + ": ")]
    assert len(found) == 1, (key, result.stdout)
    return found[0]


def edge_pairs(data: dict[str, Any]) -> set[tuple[str, str]]:
    """The site-level lock-order edges of a JSON report, as (src site, dst site)."""
    from lockwatch.model import SavedReport

    edges = SavedReport.from_dict(data).snapshot.site_edges  # rows referring to tables: read them
    return {(e.src.rsplit(":", 1)[0], e.dst.rsplit(":", 1)[0]) for e in edges}


def lock_stats(data: dict[str, Any], site: str) -> dict[str, Any]:
    found = [lock for lock in data["locks"] if lock["site"] == site]
    assert len(found) == 1, (site, [lock["site"] for lock in data["locks"]])
    return found[0]


def reports_in(stderr: str) -> int:
    """How many text reports (header lines) stderr holds."""
    return len(re.findall(r"^lockwatch: (no potential deadlocks|\d+ potential deadlock)", stderr, re.M))


# -- 1. no code change: LOCKWATCH=1 python prog.py ----------------------------------------------------


def test_the_environment_variable_alone_reports_an_inversion_at_exit() -> None:
    result = hook("abba.py")
    assert result.returncode == 0, result.stderr
    assert stdout_value(result, "lock type") == "lockwatch.proxies.Lock"
    assert reports_in(result.stderr) == 1
    assert "lockwatch: 1 potential deadlock" in result.stderr
    assert "lock_a -> lock_b -> lock_a" in result.stderr
    for site in (LOCK_A, LOCK_B):  # the text report may show paths relative to the cwd
        line = site.rsplit(":", 1)[1]
        assert re.search(rf"created at \S*shared_locks\.py:{line}\b", result.stderr), result.stderr
    # both edges, each with the thread that took it
    assert "thread 'a_then_b' held lock_a and waited for lock_b" in result.stderr
    assert "thread 'b_then_a' held lock_b and waited for lock_a" in result.stderr
    assert "Traceback" not in result.stderr


def test_lockwatch_json_writes_one_report_per_process_named_with_its_pid(tmp_path: Path) -> None:
    """The parent takes lock_a -> lock_b and runs a child (a new interpreter, same environment)
    that takes lock_b -> lock_a: each process writes its own report, named with its own pid;
    neither alone has the cycle, `lockwatch report` of both has it (site scope)."""
    reports = tmp_path / "reports"
    reports.mkdir()
    result = hook("parent_subprocess.py", LOCKWATCH_JSON=str(reports / "r-%p.json"))
    assert result.returncode == 0, result.stderr
    parent, child = int(stdout_value(result, "parent pid")), int(stdout_value(result, "child pid"))
    assert parent != child
    assert sorted(p.name for p in reports.iterdir()) == sorted([f"r-{parent}.json", f"r-{child}.json"])
    parent_data = report_of(reports / f"r-{parent}.json")
    child_data = report_of(reports / f"r-{child}.json")
    assert parent_data["meta"]["pid"] == parent and child_data["meta"]["pid"] == child
    assert (LOCK_A, LOCK_B) in edge_pairs(parent_data) and (LOCK_B, LOCK_A) not in edge_pairs(parent_data)
    assert (LOCK_B, LOCK_A) in edge_pairs(child_data) and (LOCK_A, LOCK_B) not in edge_pairs(child_data)
    assert parent_data["potential_deadlocks"] == [] and child_data["potential_deadlocks"] == []
    for data in (parent_data, child_data):
        assert data["internal_errors"] == []
        assert lock_stats(data, LOCK_A)["acquisitions"] == 1
        assert lock_stats(data, LOCK_B)["acquisitions"] == 1
    # LOCKWATCH_TEXT is not 0: both processes printed their text report
    assert reports_in(result.stderr) == 2

    merged = run(["-m", "lockwatch", "report", str(reports / f"r-{parent}.json"),
                  str(reports / f"r-{child}.json"), "--format", "json"], child_env())
    assert merged.returncode == 0, merged.stderr
    [found] = json.loads(merged.stdout)["potential_deadlocks"]
    assert found["scope"] == "site"
    assert {lock["site"] for lock in found["locks"]} == {LOCK_A, LOCK_B}


@pytest.mark.parametrize("setting", [None, "0", "", "off", "false"])
def test_without_lockwatch_nothing_happens(setting: Optional[str]) -> None:
    extra = {} if setting is None else {"LOCKWATCH": setting}
    result = run(["abba.py"], child_env(**extra))
    assert result.returncode == 0, result.stderr
    assert stdout_value(result, "lockwatch imported") == "False"  # not even imported
    assert stdout_value(result, "lockwatch modules") == "[]"
    assert stdout_value(result, "lock type") == "_thread.lock"
    assert result.stderr == ""


def test_a_process_that_never_imports_threading_is_not_made_to() -> None:
    result = hook("no_threads.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "threading imported: False\n"
    assert result.stderr == ""  # never switched on: no report either


def test_the_hook_switches_on_when_threading_is_imported_late() -> None:
    result = hook("no_threads.py", "late")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["threading imported: False", "lock type: lockwatch.proxies.Lock"]
    assert "lockwatch: 1 potential deadlock" in result.stderr


@pytest.mark.parametrize("first", [
    "logging", "subprocess", "concurrent.futures", "concurrent.futures.thread", "asyncio",
    "multiprocessing.pool", "logging.handlers", "queue", "wrapt", "enable",
])
def test_the_hook_switches_on_whichever_module_first_imports_threading(first: str) -> None:
    """Switching on imports wrapt, which imports asyncio, logging, subprocess...: when one of those
    was the module importing threading (half-initialized then), switching on at that moment
    failed with a circular import. `enable`: the program calls lockwatch.enable() itself."""
    result = hook("first_import.py", first)
    assert result.returncode == 0, result.stderr
    assert "not switched on" not in result.stderr, result.stderr
    assert stdout_value(result, "lock type") == "lockwatch.proxies.Lock"
    assert reports_in(result.stderr) == 1, result.stderr
    assert "lockwatch: 1 potential deadlock" in result.stderr
    assert "Traceback" not in result.stderr


def test_isolated_mode_is_left_alone() -> None:
    result = run(["-I", str(PROCESSES / "abba.py")], child_env(LOCKWATCH="1"))
    assert result.returncode == 0, result.stderr
    assert stdout_value(result, "lock type") == "_thread.lock"
    modules = stdout_value(result, "lockwatch modules")
    assert "lockwatch.proxies" not in modules and "lockwatch.control" not in modules, modules
    assert result.stderr == ""


@pytest.mark.parametrize("name, value", [
    ("LOCKWATCH_DEADLOCK_TIMEOUT", "abc"),
    ("LOCKWATCH_DEADLOCK_TIMEOUT", "-1"),
    ("LOCKWATCH_WARN_HOLD", "soon"),
    ("LOCKWATCH_ON_DEADLOCK", "panic"),
])
def test_a_bad_setting_is_one_warning_line_and_the_program_runs(name: str, value: str) -> None:
    result = hook("abba.py", **{name: value})
    assert result.returncode == 0, result.stderr
    assert stdout_value(result, "lock type") == "_thread.lock"  # not switched on
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and result.stderr.endswith("\n"), result.stderr
    assert lines[0].startswith("lockwatch: ") and value in lines[0], lines[0]
    assert "Traceback" not in result.stderr


# -- 2. children of `python -m lockwatch` ---------------------------------------------------------------

CHILD_RUNS = [
    pytest.param(["parent_subprocess.py"], "child_b_then_a.py", id="subprocess.run"),
    *[pytest.param(["parent_multiprocessing.py", method, how], "in child_part", id=f"{method}-{how}")
      for method in ("fork", "spawn", "forkserver") for how in ("pool", "process")],
    pytest.param(["parent_fork.py", "return"], "parent_fork.py", id="os.fork-return"),
]


@pytest.fixture
def short_tmp() -> Any:
    """A TMPDIR with a short path: multiprocessing's forkserver puts a Unix socket there, whose
    path must stay under ~100 characters (pytest's tmp_path under xdist can be longer)."""
    path = Path(tempfile.mkdtemp(prefix="lw-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def children_folders(tmp: Path) -> list[str]:
    return [p.name for p in tmp.iterdir() if p.name.startswith("lockwatch-children-")]


@pytest.mark.parametrize("argv, child_frame", CHILD_RUNS)
def test_an_inversion_split_between_parent_and_child_is_found(tmp_path: Path, short_tmp: Path,
                                                            argv: list[str], child_frame: str) -> None:
    if "forkserver" in argv and "forkserver" not in __import__("multiprocessing").get_all_start_methods():
        pytest.skip("no forkserver start method here")
    out = tmp_path / "report.json"
    tmp = short_tmp
    result = run(["-m", "lockwatch", "--json", str(out), str(PROCESSES / argv[0]), *argv[1:]], child_env(tmp))
    assert result.returncode == 0, result.stderr
    parent, child = int(stdout_value(result, "parent pid")), int(stdout_value(result, "child pid"))
    # One report, the parent's, with the children's merged in; nothing else on stderr (children
    # that outlive the report, like multiprocessing's resource tracker, say nothing).
    assert reports_in(result.stderr) == 1, result.stderr
    assert result.stderr.startswith("=" * 78 + "\nlockwatch: 1 potential deadlock"), result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    data = report_of(out)
    [found] = data["potential_deadlocks"]
    assert found["scope"] == "site"  # instances are per process: the sites match
    assert {lock["site"] for lock in found["locks"]} == {LOCK_A, LOCK_B}
    by_pid = {int(e["thread_id"].split(":")[0]): e for e in found["edges"]}
    assert set(by_pid) == {parent, child}, found["edges"]
    assert by_pid[parent]["held_stack"][-1] == f"{SHARED}:{line_of(SHARED, 'a_then_b: first')} in a_then_b"
    assert by_pid[child]["held_stack"][-1] == f"{SHARED}:{line_of(SHARED, 'b_then_a: first')} in b_then_a"
    assert any(child_frame in frame for frame in by_pid[child]["acquire_stack"]), by_pid[child]
    assert parent in [s["pid"] for s in data["meta"]["sources"]]
    assert child in [s["pid"] for s in data["meta"]["sources"]]
    assert data["internal_errors"] == []
    # each half counted once: the parent's lock_a and lock_b acquisitions plus the child's
    assert lock_stats(data, LOCK_A)["acquisitions"] == 2
    assert lock_stats(data, LOCK_B)["acquisitions"] == 2
    assert children_folders(tmp) == []  # the children's reports are cleaned up


def test_a_child_ending_with_os_exit_loses_its_report_and_the_run_still_completes(tmp_path: Path) -> None:
    """Documented limit: a forked child that ends with os._exit() runs no exit handler, so its
    report is never written. The parent's part is still reported, the run ends normally."""
    out = tmp_path / "report.json"
    tmp = tmp_path / "tmp"
    result = run(["-m", "lockwatch", "--json", str(out), str(PROCESSES / "parent_fork.py"), "_exit"],
                 child_env(tmp))
    assert result.returncode == 0, result.stderr
    stdout_value(result, "child pid")  # the child ran its half ...
    parent = int(stdout_value(result, "parent pid"))
    assert reports_in(result.stderr) == 1
    assert "lockwatch: no potential deadlocks found" in result.stderr
    data = report_of(out)
    assert data["potential_deadlocks"] == []
    assert (LOCK_A, LOCK_B) in edge_pairs(data)  # ... but only the parent's part is reported
    assert (LOCK_B, LOCK_A) not in edge_pairs(data)
    assert lock_stats(data, LOCK_A)["acquisitions"] == 1
    assert data["meta"]["pid"] == parent
    assert children_folders(tmp) == []


def test_a_usage_error_leaves_no_children_folder(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    result = run(["-m", "lockwatch", "-m", "no_such_module_for_lockwatch"], child_env(tmp))
    assert result.returncode == 2
    assert children_folders(tmp) == []


# -- 3. fork ---------------------------------------------------------------------------------------


def test_a_forked_child_starts_clean_and_reports_only_what_it_did(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    result = hook("fork_state.py", LOCKWATCH_TEXT="0", LOCKWATCH_JSON=str(reports / "r-%p.json"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    child_state = json.loads(stdout_value(result, "child"))
    parent_state = json.loads(stdout_value(result, "parent"))
    parent, child = parent_state["pid"], parent_state["child"]
    assert parent_state["child_status"] == 0

    # The child's own thread state: only the forking thread, which still holds what it held.
    assert child_state["threads"] is True
    assert child_state["held_at_start"] == ["forking_lock", "forking_rlock"]
    assert child_state["forking_lock_locked"] is True  # held by the forking thread: as CPython
    assert child_state["rlock_released"] is True  # the forking thread releases both levels
    assert child_state["held_after_release"] == []
    # A lock held by another thread of the parent stays locked in the child, as in CPython.
    assert child_state["helper_lock_locked"] is True
    assert child_state["helper_lock_timed_acquire"] is False

    assert sorted(p.name for p in reports.iterdir()) == sorted([f"r-{parent}.json", f"r-{child}.json"])
    parent_data = report_of(reports / f"r-{parent}.json")
    child_data = report_of(reports / f"r-{child}.json")
    prog = PROCESSES / "fork_state.py"

    def stats(data: dict[str, Any], name: str) -> tuple[int, int]:
        site = f"{prog}:{line_of(prog, f'{name} = threading.')}" if name.startswith(("helper", "forking")) \
            else {"lock_a": LOCK_A, "lock_b": LOCK_B}[name]
        found = [lock for lock in data["locks"] if lock["site"] == site]
        return (found[0]["acquisitions"], found[0]["failed"]) if found else (0, 0)

    # The parent: 7 + 1 (nested) + 1 (after the fork) of lock_a, 3 + 1 of lock_b; none of the child's.
    assert stats(parent_data, "lock_a") == (9, 0)
    assert stats(parent_data, "lock_b") == (4, 0)
    assert stats(parent_data, "helper_lock") == (1, 0)
    assert stats(parent_data, "forking_lock") == (1, 0)
    assert stats(parent_data, "forking_rlock") == (1, 0)  # re-entry is no new acquisition
    # The child: only its own (1 nested + 2 of lock_a, 1 of lock_b, the failed timed acquire
    # of helper_lock and one after _at_fork_reinit), nothing of the parent's before the fork.
    assert stats(child_data, "lock_a") == (3, 0)
    assert stats(child_data, "lock_b") == (1, 0)
    assert stats(child_data, "helper_lock") == (1, 1)
    assert stats(child_data, "forking_lock") == (0, 0)  # taken in the parent, released here
    # Each process's lock-order edges are its own: neither sees both halves of the inversion.
    assert (LOCK_A, LOCK_B) in edge_pairs(parent_data) and (LOCK_B, LOCK_A) not in edge_pairs(parent_data)
    assert (LOCK_B, LOCK_A) in edge_pairs(child_data) and (LOCK_A, LOCK_B) not in edge_pairs(child_data)
    for data in (parent_data, child_data):
        assert data["potential_deadlocks"] == []
        assert data["internal_errors"] == []


def test_forking_while_other_threads_are_inside_lockwatch(tmp_path: Path) -> None:
    """Four threads keep lockwatch's own mutex busy (semaphores, failed try-locks, locks made and
    dropped, new edges) and a fifth takes snapshots, while the main thread forks over and over:
    children forked while another thread held the mutex (that thread does not exist in the
    child) must still record, report and exit. A deadlocked child would die of SIGALRM."""
    reports = tmp_path / "reports"
    reports.mkdir()
    result = hook("fork_stress.py", "200", "2", LOCKWATCH_TEXT="0",
                  LOCKWATCH_JSON=str(reports / "r-%p.json"))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    parent = json.loads(stdout_value(result, "parent"))
    statuses = {int(pid): status for pid, status in parent["children"].items()}
    assert statuses and all(status == 0 for status in statuses.values()), statuses
    # The scenario happened: the last fork caught another thread holding lockwatch's mutex, and
    # so (on a loaded machine, in fewer of the 200 tries) did some of the others.
    assert parent["hits"] == parent["random_hits"] + 1, parent
    assert parent["random_hits"] >= 1, parent
    children = [json.loads(line[len("child: "):]) for line in result.stdout.splitlines()
                if line.startswith("child: ")]
    assert sorted(c["pid"] for c in children) == sorted(statuses)
    assert sum(c["mutex_held_at_fork"] for c in children) == parent["hits"]
    for c in children:
        assert c["mutex_renewed"] is True
        assert c["held"] == 0 and c["only_this_thread"] is True
        assert c["trylock"] is False
        assert c["internal_errors"] == []
        # 3 nested rounds + 1 outer hold of `first` (and its failed try-lock), exact
        assert c["counts"] == {"first": [4, 1, 4], "second": [3, 0, 3], "sem": [3, 0, 3]}, c
    written = sorted(p.name for p in reports.iterdir())
    assert written == sorted(f"r-{pid}.json" for pid in [*statuses, parent["pid"]])
    for path in reports.iterdir():
        data = report_of(path)
        assert data["internal_errors"] == [], path


def test_a_snapshot_imports_nothing(tmp_path: Path) -> None:
    """A thread taking lockwatch's first snapshot while another thread forks: had the snapshot
    imported a module then (it imported sysconfig), the child inherited the half-imported module
    and waited forever for its import lock when it took its own snapshot. Snapshots happen at any
    time (a watchdog, a report from a signal handler): they must import nothing."""
    code = (
        "import sys, threading, lockwatch\n"
        "session = lockwatch.current_session()\n"
        "before = set(sys.modules)\n"
        "session.snapshot()\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    result = run(["-c", code], child_env(LOCKWATCH="1", LOCKWATCH_TEXT="0"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n", result.stdout
