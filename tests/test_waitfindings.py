"""Findings through waits from hand-built snapshots (no threads): cycles through an Event or a
joined Thread, thread-pool starvation, their JSON both ways, and the words of a real deadlock
through waits."""
from __future__ import annotations

import json

import pytest
from support import edge_record, lock_stats

from lockwatch.analysis import analyze
from lockwatch.model import (
    Deadlock,
    DeadlockThread,
    HeldLock,
    LockInfo,
    PoolStarvation,
    PoolWaitRecord,
    Report,
    ReportError,
    SavedReport,
    Snapshot,
    loads,
)
from lockwatch.renderers.incidents import render_deadlock, summarize


def _wait_cycle(kind: str, wait: str, wake: str, timed: bool = False) -> Snapshot:
    lock = lock_stats("L", "Lock", "app.py", 2, acquisitions=2)
    res = lock_stats("ready", kind, "app.py", 3)
    waits = edge_record(lock, res, "MainThread", ["app.py:9 in main"], ["app.py:10 in main"], 1, 2,
                        wait=wait, timed=timed, thread_id="1:1")
    wakes = edge_record(res, lock, "setter", ["app.py:5 in setter"], ["app.py:6 in setter"], 2, 1,
                        wake=wake, thread_id="1:2")
    site_edges = [edge_record(lock, res, "MainThread", [], [], wait=wait, timed=timed, thread_id="1:1"),
                  edge_record(res, lock, "setter", [], [], wake=wake, thread_id="1:2")]
    return Snapshot(locks=[lock, res], instance_edges=[waits, wakes], site_edges=site_edges)


@pytest.mark.parametrize("kind,wait,wake", [("Event", "wait", "set"), ("Thread", "join", "end"),
                                            ("Queue", "get", "put"), ("Future", "result", "result")])
def test_a_cycle_through_a_wait_is_a_potential_deadlock(kind, wait, wake):
    report = analyze(_wait_cycle(kind, wait, wake))
    [p] = report.potential_deadlocks
    assert p.scope == "instance" and p.triage == "deadlock" and p.fails
    assert sorted(lk.kind for lk in p.locks) == sorted(["Lock", kind])
    data = json.loads(json.dumps(p.to_dict()))
    assert {e.get("wait") for e in data["edges"]} == {wait, None}
    assert {e.get("wake") for e in data["edges"]} == {wake, None}


def test_a_timed_wait_makes_the_cycle_timed():
    [p] = analyze(_wait_cycle("Event", "wait", "set", timed=True)).potential_deadlocks
    assert p.triage == "timed" and not p.fails


def _pool(depth: int, timed: bool = False) -> PoolWaitRecord:
    return PoolWaitRecord(site="app.py:4", name="pool", max_workers=4, depth=depth, thread="ThreadPoolExecutor-0_0",
                          stack=["app.py:9 in task"], submit_stack=["app.py:9 in task"], count=3, timed=timed,
                          function="<module>", stable_file="app.py")


def test_tasks_waiting_on_their_own_pool_are_starvation():
    [p] = analyze(Snapshot(pool_waits=[_pool(2)])).potential_deadlocks
    assert p.triage == "starvation" and p.fails
    assert [lk.kind for lk in p.locks] == ["Future"] and p.locks[0].site == "app.py:4"
    assert "thread pool pool (4 workers)" in p.reasons[0] and "2 of them waited so at once" in p.reasons[0]
    [q] = analyze(Snapshot(pool_waits=[_pool(4)])).potential_deadlocks
    assert "all 4 waited so at once" in q.reasons[0]


def test_timed_waits_on_the_own_pool_are_timed():
    [p] = analyze(Snapshot(pool_waits=[_pool(1, timed=True)])).potential_deadlocks
    assert p.triage == "timed" and not p.fails


def test_pool_waits_survive_a_saved_report_and_are_found_again():
    snap = Snapshot(pool_waits=[_pool(2)])
    first = analyze(snap)
    saved = loads(json.dumps(Report(snap, first.potential_deadlocks).to_dict()))
    [again] = analyze(saved.snapshot).potential_deadlocks
    assert again.fingerprint == first.potential_deadlocks[0].fingerprint
    assert saved.snapshot.pool_waits == snap.pool_waits


@pytest.mark.parametrize("damage", [{"site": "app.py"}, {"depth": -1}, {"stack": [1]}, {"name": None}])
def test_a_damaged_pool_wait_is_one_line(damage):
    data = Report(Snapshot(pool_waits=[_pool(2)])).to_dict()
    data["pool_waits"][0].update(damage)
    with pytest.raises(ReportError, match="damaged lockwatch report .*pool_waits\\[0\\]"):
        SavedReport.from_dict(data, "r.json")


def _deadlock() -> Deadlock:
    return Deadlock(threads=[
        DeadlockThread("MainThread", ["app.py:10 in <module>"], 1, LockInfo("worker", "Thread", "app.py:7"), 5.2,
                       "worker", [HeldLock("L", "Lock", "app.py:2", taken_at="app.py:9 in <module>")],
                       "join", ["worker"]),
        DeadlockThread("worker", ["app.py:5 in worker"], 2, LockInfo("L", "Lock", "app.py:2"), 5.0, "MainThread")],
        timeout_s=5.0, policy="exit",
        starvation=PoolStarvation("pool", "app.py:2", 1, 1, 1))


def test_a_deadlock_through_waits_both_ways_and_in_words():
    d = _deadlock()
    back = Deadlock.from_dict(json.loads(json.dumps(d.to_dict())))
    assert back.threads[0].wait == "join" and back.threads[0].wakers == ["worker"]
    assert back.starvation == d.starvation and back.through_waits
    text = render_deadlock(back)
    assert "thread 'MainThread' waits for thread 'worker' to finish (join)" in text
    assert "which only thread 'worker' can end" in text
    assert "thread pool pool, created at app.py:2 is starved: all 1 of its 1 workers" in text
    assert "thread 'worker' waits for L (Lock" in text
    assert "while holding L" in summarize(back)


def test_a_lock_only_deadlock_is_written_as_before():
    d = Deadlock(threads=[DeadlockThread("a", [], waiting_for=LockInfo("x", "Lock", "f:1"), blocked_by="b")])
    assert set(d.to_dict()) == {"threads", "timeout_s", "policy", "victim", "detected_at"}
    assert "wait" not in d.to_dict()["threads"][0]
