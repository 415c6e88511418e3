"""Tests for lockwatch.model: the records of a run, the JSON contract both ways, and bad input."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import pytest
from support import load_report_fixture as load_fixture

from lockwatch import renderers
from lockwatch.analysis import build_report
from lockwatch.histogram import LOG_LINEAR, SQRT2, bucket_of
from lockwatch.model import (
    Alert,
    Deadlock,
    EdgeRecord,
    LockStats,
    ReportError,
    SavedReport,
    Snapshot,
    Timing,
    Violation,
    load,
    loads,
    merge,
    save,
)

fx = load_fixture()


@pytest.fixture(scope="module")
def saved_dict() -> dict[str, Any]:
    rep = fx.shop_report()
    rep.snapshot.violations = [Violation.from_dict(VIOLATION)]
    return rep.to_dict()


VIOLATION = {"kind": "order-key", "declared": ["key 2", "key 1"],
             "held": {"name": "a", "kind": "Lock", "site": "/srv/x.py:3"},
             "acquired": {"name": "b", "kind": "Lock", "site": "/srv/x.py:3"},
             "thread": "t", "held_stack": ["/srv/x.py:9 in f"], "acquire_stack": ["/srv/x.py:10 in f"],
             "context": None}


@pytest.mark.parametrize("record, data", [
    (Deadlock, "watchdog"), (Deadlock, "contract"), (Alert, 0), (Alert, 1), (Violation, VIOLATION),
])
def test_records_are_written_back_as_they_were_read(record: Any, data: Any) -> None:
    if data == "watchdog":
        data = fx.watchdog_deadlock()
    elif data == "contract":
        data = fx.CONTRACT_DEADLOCK
    elif isinstance(data, int):
        data = fx.ALERTS[data]
    again = record.from_dict(data).to_dict()
    assert again == data
    assert json.dumps(again) == json.dumps(data)  # the same keys in the same order


def test_a_deadlock_made_by_lockwatch_writes_every_key() -> None:
    read = Deadlock.from_dict(fx.CONTRACT_DEADLOCK)
    made = Deadlock(threads=read.threads)
    assert made == read  # the keys a record was read with do not make it another deadlock
    assert set(made.to_dict()) == {"threads", "timeout_s", "policy", "victim", "detected_at"}


def test_saved_report_round_trip(saved_dict: dict[str, Any], tmp_path: Path) -> None:
    rep = fx.shop_report()
    path = tmp_path / "r.json"
    save(str(path), rep)
    saved = load(str(path))
    assert saved.snapshot == rep.snapshot
    assert saved.deadlocks == rep.deadlocks and saved.alerts == rep.alerts
    assert saved.suppressed and set(saved.suppressed.values()) == {fx.SUPPRESSED}
    assert loads(path.read_text(), str(path)).snapshot == rep.snapshot


def test_merge_of_one_snapshot_keeps_its_locks_and_edges() -> None:
    snap = fx.shop_snapshot()
    merged = merge([snap, Snapshot()])
    assert [s.key for s in merged.locks] == [s.key for s in snap.locks]
    assert len(merged.site_edges) == len(snap.site_edges)
    assert merged.meta["merged"] == 2


def _del(*path: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return edit


def _set(value: Any, *path: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return edit


# Each damage, and the field the one-line message must name.
DAMAGES = {
    "lock without site": (_del("locks", 0, "site"), "locks[0].site is missing"),
    "lock site without line": (_set("cart.py", "locks", 0, "site"), "locks[0].site"),
    "lock name a number": (_set(7, "locks", 0, "name"), "locks[0].name is not a string"),
    "locks an object": (_set({}, "locks"), "locks is not a list"),
    "lock a list": (_set([1], "locks", 0), "locks[0] is not an object"),
    "hold a string": (_set("1 s", "locks", 0, "hold"), "locks[0].hold is not an object"),
    "histogram bad pair": (_set([[1]], "locks", 0, "hold", "histogram"), "locks[0].hold.histogram[0]"),
    "idle wait count negative": (_set({"count": -1}, "locks", 0, "wait"), "locks[0].wait.count is out of range"),
    "idle wait count text": (_set({"count": "0"}, "locks", 0, "wait"), "locks[0].wait.count is not an integer"),
    "idle wait a list": (_set([], "locks", 0, "wait"), "locks[0].wait is not an object"),
    "count a bool": (_set(True, "locks", 0, "acquisitions"), "locks[0].acquisitions is not an integer"),
    "edge row without dst": (_set([0], "lock_order", 0), "lock_order[0] is not a row of 5 to 17 values"),
    "stack of strings": (_set(["main.py:1 in f"], "stacks", 0),
                         "stacks[0] has a value that is not an index into frames"),
    "gate instance text": (_set([0, 1, 0, 0, 0, 1, 2, 1, False, False, None, [0], ["x"]], "instance_edges", 0),
                           "instance_edges[0] (gate_instances) is not a list of integers"),
    "deadlocks an object": (_set({}, "deadlocks"), "deadlocks is not a list"),
    "deadlock thread a string": (_set(["t"], "deadlocks", 0, "threads"), "deadlocks[0].threads[0] is not an object"),
    "thread without stack": (_del("deadlocks", 0, "threads", 0, "stack"), "deadlocks[0].threads[0].stack is missing"),
    "holds a dict": (_set({}, "deadlocks", 0, "threads", 0, "holds"), "deadlocks[0].threads[0].holds is not a list"),
    "waiting_s text": (_set("5", "deadlocks", 0, "threads", 0, "waiting_s"),
                       "deadlocks[0].threads[0].waiting_s is not a number"),
    "alert lock a list": (_set([], "alerts", 0, "lock"), "alerts[0].lock is not an object"),
    "alert without seconds": (_del("alerts", 0, "seconds"), "alerts[0].seconds is missing"),
    "violation without held": (_del("order_violations", 0, "held"), "order_violations[0].held is missing"),
    "meta a list": (_set([], "meta"), "meta is not an object"),
    "internal errors of numbers": (_set([1], "internal_errors"), "internal_errors[0] is not a string"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_report_is_one_line_naming_the_file_and_the_field(
        damage: str, saved_dict: dict[str, Any], tmp_path: Path) -> None:
    edit, field = DAMAGES[damage]
    data = copy.deepcopy(saved_dict)
    edit(data)
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ReportError) as info:
        load(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path} is a damaged lockwatch report (") and field in message, message


def test_the_undamaged_fixture_loads(saved_dict: dict[str, Any]) -> None:
    saved = SavedReport.from_dict(copy.deepcopy(saved_dict), "fixture")
    assert saved.snapshot.violations and saved.deadlocks and saved.alerts
    assert all(isinstance(e, EdgeRecord) for e in saved.snapshot.site_edges)
    assert all(isinstance(s, LockStats) for s in saved.snapshot.locks)


def test_a_locks_key_and_flags_round_trip() -> None:
    plain = LockStats(key="/srv/x.py:3:Lock", name="a", kind="Lock", filename="/srv/x.py", line=3,
                      function="f", acquisitions=1)
    odd = LockStats(key="/srv/x.py:3:Semaphore#b", name="b", kind="Semaphore", filename="/srv/x.py",
                    line=3, function="f", named=True, signal=True, value=3, stdlib=True, acquisitions=2)
    for stats in (plain, odd):
        data = json.loads(json.dumps(stats.to_dict()))
        assert {"key", "named", "signal", "value", "stdlib"} <= set(data)  # tools read them
        assert LockStats.from_dict(data, "locks[0]", "r.json") == stats


# An idle timing as lockwatch wrote it before {"count": 0} (every field, all zero).
IDLE_IN_FULL = {"count": 0, "total": 0.0, "mean": 0.0, "max": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0,
                "histogram": [], "histogram_scale": "log-linear-32"}
IDLE_FORMS: dict[str, Any] = {
    "as written before": IDLE_IN_FULL,
    "before the log-linear scale": {k: v for k, v in IDLE_IN_FULL.items() if k != "histogram_scale"},
    "count only": {"count": 0}, "empty": {}, "null": None,
}


@pytest.mark.parametrize("form", [*IDLE_FORMS, "absent"])
def test_an_idle_timing_reads_and_renders_the_same_in_every_form(form: str, saved_dict: dict[str, Any]) -> None:
    """A timing that counted nothing is written {"count": 0}; every other form a report may have
    (every field zero, as before; without histogram_scale, as before the log-linear scale; {};
    null; no key) reads as the same timing, is written back as {"count": 0} and renders alike."""
    data = copy.deepcopy(saved_dict)
    idle = 0
    for lk in data["locks"]:
        for kind in ("hold", "wait"):
            if lk[kind] == {"count": 0}:
                idle += 1
                if form == "absent":
                    del lk[kind]
                else:
                    lk[kind] = copy.deepcopy(IDLE_FORMS[form])
    assert idle >= 5  # the shop fixture's never contended locks
    theirs = SavedReport.from_dict(data, "theirs.json").snapshot
    ours = SavedReport.from_dict(copy.deepcopy(saved_dict), "ours.json").snapshot
    for a, b in zip(theirs.locks, ours.locks):
        for kind in ("hold", "wait"):
            ta, tb = getattr(a, kind), getattr(b, kind)
            assert (ta.count, ta.total_ns, ta.max_ns, ta.buckets) == (tb.count, tb.total_ns, tb.max_ns, tb.buckets)
            assert ta.to_dict() == tb.to_dict()
    for fmt in ("json", "text", "html"):
        render = renderers.get(fmt).render
        assert render(build_report([theirs])) == render(build_report([ours])), fmt


def test_an_idle_timing_merges_into_the_scale_of_the_other() -> None:
    """An empty histogram is the same in every scale: merged with one that counted something, in
    either order, the result is that one, in its scale (an idle lock of an older report does not
    put a busy lock of today's into the coarser sqrt(2) scale)."""
    busy = Timing(3, 7_000, 4_000, {bucket_of(1_000): 1, bucket_of(2_000): 1, bucket_of(4_000): 1})
    for idle in (Timing(), Timing(scale=SQRT2)):
        for first, second in ((idle, busy), (busy, idle)):
            merged = Timing(**{**first.__dict__, "buckets": dict(first.buckets)})
            merged.merge(second)
            assert merged == busy and merged.scale == LOG_LINEAR
