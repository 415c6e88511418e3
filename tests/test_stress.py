"""Stress: 16 threads, 50 locks of every kind (Lock, RLock, Condition, Semaphore,
BoundedSemaphore), about 200,000 random lock operations (with, acquire/release, try-locks, timed
acquires, re-entry, Condition.wait(0), nested up to depth 4) under `python -m lockwatch`, each
thread counting what it did. Every count lockwatch reports must be exact, nothing may be left in
a thread's held list, lockwatch must report no internal error, and the heap must not grow from
one round to the next (same seed: the same operations each round).

The program is tests/programs/processes/stress.py; it compares lockwatch's snapshot with its own
counts after every round and prints one JSON line per round.
"""
from __future__ import annotations

import json
from typing import Any

import pytest
from support import PROGRAMS, child_env, lockwatch, report_of

pytestmark = pytest.mark.timeout(300)

PROGRAM = PROGRAMS / "processes" / "stress.py"
SEED, THREADS, OPS_PER_THREAD, ROUNDS = 20240611, 16, 4200, 3
TIMEOUT = 240
# From one round to the next (after the first, which warms every cache up): gc-tracked objects
# and allocated memory blocks may grow this much at most, besides what a later round may rightly
# add: histogram buckets filled for the first time (one counter object each; bounded: at most
# 32 per power of two of nanoseconds per lock) and edges found for the first time (bounded by the
# lock pairs; a new edge brings its record and its stacks). A leak of one object or block per
# operation would be ~67,000 per round. Measured on 3.9 (C core), from round 1 to 2: ~700 objects
# and ~2,000 blocks more, of which ~500 are new bucket counters, with ~125 new edges; from round
# 2 to 3 ~300 objects, ~250 counters and ~25 edges.
MAX_OBJECT_GROWTH = 1_000
MAX_BLOCK_GROWTH = 5_000
PER_NEW_EDGE_OBJECTS, PER_NEW_EDGE_BLOCKS = 5, 20


@pytest.fixture(scope="module")
def stress(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("stress")
    out = tmp / "report.json"
    result = lockwatch("-q", "--json", str(out), str(PROGRAM), str(SEED), str(THREADS),
                       str(OPS_PER_THREAD), str(ROUNDS), cwd=PROGRAM.parent, env=child_env(tmp),
                       timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    rounds = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["round"] for r in rounds] == list(range(1, ROUNDS + 1))
    return rounds, report_of(out)


def test_the_run_did_enough_work(stress: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    rounds, report = stress
    assert rounds[-1]["ops"] >= THREADS * OPS_PER_THREAD * ROUNDS >= 200_000
    mine = [lock for lock in report["locks"] if lock["site"].startswith(str(PROGRAM) + ":")]
    assert {lock["kind"] for lock in mine} == {"Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore"}
    assert sum(lock["instances"] for lock in mine) == 50
    # the threads really competed: waits and failed try-locks/timeouts happened
    assert sum(lock["contended"] for lock in mine) > 0
    assert sum(lock["failed"] for lock in mine) > 0


def test_every_count_is_exact_after_every_round(stress: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    rounds, _report = stress
    for r in rounds:
        assert r["alive"] == [], r["round"]  # every thread ended (no deadlock)
        # per creation site: acquisitions and failures as counted by the threads, one hold per
        # acquisition, wait.count == contended <= acquisitions (checked by the program)
        assert r["mismatches"] == [], (r["round"], r["mismatches"])
        assert r["internal_errors"] == [], r["round"]


def test_no_thread_is_left_holding_anything(stress: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    rounds, _report = stress
    for r in rounds:
        assert r["left_held"] == [], (r["round"], r["left_held"])


def test_the_report_at_exit_has_the_exact_totals(stress: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    rounds, report = stress
    assert report["internal_errors"] == []
    expected = rounds[-1]["expected"]  # site key "<file>:<line>:<kind>" -> [acquisitions, failed]
    got = {f"{lock['site']}:{lock['kind']}": lock for lock in report["locks"]
           if lock["site"].startswith(str(PROGRAM) + ":")}
    assert set(got) == set(expected)
    for key, (acquired, failed) in expected.items():
        lock = got[key]
        assert (lock["acquisitions"], lock["failed"], lock["hold"]["count"]) == (acquired, failed, acquired), key
        assert lock["wait"]["count"] == lock["contended"] <= acquired, key


def test_memory_does_not_grow_from_round_to_round(stress: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    rounds, _report = stress
    for before, after in zip(rounds[:-1], rounds[1:]):
        new_edges = after["edges"] - before["edges"]
        new_counters = after["counters"] - before["counters"]
        objects = after["objects"] - before["objects"] - new_counters - PER_NEW_EDGE_OBJECTS * new_edges
        blocks = after["blocks"] - before["blocks"] - new_counters - PER_NEW_EDGE_BLOCKS * new_edges
        assert objects < MAX_OBJECT_GROWTH, (before, after)
        assert blocks < MAX_BLOCK_GROWTH, (before, after)
