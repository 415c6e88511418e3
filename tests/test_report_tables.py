"""The JSON report's version 2: edges as rows referring to tables (each stack and frame stored
once), written streamed, read back exactly; version 1 reports still read."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import FIXTURES, lockwatch

from lockwatch import analysis, files, model
from lockwatch.model import EDGE_FIELDS, EdgeRecord, LockStats, Snapshot

pytestmark = pytest.mark.timeout(300)

V1 = FIXTURES / "report_v1" / "report.json"


def lock(i: int) -> LockStats:
    return LockStats(key=f"/srv/app/m.py:{i + 1}:Lock", name=f"l{i}", kind="Lock", filename="/srv/app/m.py",
                     line=i + 1, function="f", instances=1, acquisitions=3)


def edges_snapshot() -> Snapshot:
    """Edges that share stacks (and frames), and every optional field set somewhere."""
    locks = [lock(i) for i in range(6)]
    common = ["/srv/app/main.py:10 in main", "/srv/app/work.py:20 in run"]
    site, inst = [], []
    for i in range(5):
        held = common + [f"/srv/app/m.py:{30 + i} in take"]
        acquire = common + [f"/srv/app/m.py:{40 + i % 2} in take"]  # two distinct acquire stacks
        e = EdgeRecord(locks[i].key, locks[i + 1].key, f"worker-{i % 2}", held, list(acquire),
                       count=1 + i, timed=i == 1, context="tests/t.py::test_x" if i == 2 else None,
                       thread_id=f"7:{i % 2}", multi=i == 3)
        site.append(e)
        inst.append(EdgeRecord(**{**e.__dict__, "src_instance": i + 1, "dst_instance": i + 2,
                                  "src_name": "named" if i == 4 else None}))
    site.append(EdgeRecord(locks[5].key, locks[0].key, "back", common, common[:1], gates=[locks[2].key],
                           gate_instances=[3], thread_id="7:9"))
    inst.append(EdgeRecord(**{**site[-1].__dict__, "src_instance": 6, "dst_instance": 1, "dst_name": "first"}))
    return Snapshot(locks=locks, site_edges=site, instance_edges=inst, meta={"test": 1})


def test_stacks_and_frames_are_stored_once_and_round_trip() -> None:
    snap = edges_snapshot()
    report = analysis.build_report([snap])
    text = model.dumps(report)
    data = json.loads(text)
    assert data["version"] == model.VERSION == 2
    assert data["edge_fields"] == list(EDGE_FIELDS)
    every = [tuple(s) for e in snap.site_edges + snap.instance_edges for s in (e.held_stack, e.acquire_stack)]
    assert len(data["stacks"]) == len(set(every)) < len(every)
    assert len(data["frames"]) == len({f for s in every for f in s})
    assert sorted(data["frames"]) == sorted({f for s in every for f in s})
    rows = data["lock_order"] + data["instance_edges"]
    assert min(len(r) for r in rows) == 5  # trailing defaults left out
    back = model.loads(text, "r.json").snapshot
    assert back.site_edges == snap.site_edges
    assert back.instance_edges == snap.instance_edges
    assert back.locks == snap.locks
    # the findings keep the contract's inline stacks
    (p,) = data["potential_deadlocks"]
    assert all(isinstance(e["held_stack"], list) and all(isinstance(f, str) for f in e["held_stack"])
               for e in p["edges"])
    assert json.loads(text) == report.to_dict()


def test_rows_written_by_the_template_are_the_rows_of_each_edge() -> None:
    """The writer makes the common rows through a template (model._Tables.encoded_rows) and the
    others through ``row``: over edges of every shape of row (instances or none,
    counts, timed, multi, one instance serial missing, gates) the text is the rows ``row`` makes,
    the tables filled in the same order, and it reads back as the edges."""
    locks = [lock(i) for i in range(40)]
    frames = [f"/srv/app/f{k}.py:{k} in f{k}" for k in range(30)]
    site, inst = [], []
    n = 660
    for k in range(n):
        i, j = k % 39, k % 39 + 1
        held, acquire = [frames[k % 7], frames[k % 11]], [frames[k % 7], frames[k % 13], frames[k % 30]]
        e = EdgeRecord(locks[i].key, locks[j].key, f"t{k % 3}", held, acquire, count=1 + k % 4,
                       timed=k % 5 == 0, multi=k % 6 == 0, thread_id=f"1:{k % 3}",
                       gates=[locks[0].key] if 100 <= k < 103 else [],
                       gate_instances=[1] if 100 <= k < 103 else [])
        (site if k % 2 else inst).append(e)
        if not k % 2:
            e.src_instance, e.dst_instance = k + 1, (None if k % 22 == 0 else k + 2)
    snap = Snapshot(locks=locks, site_edges=site, instance_edges=inst)
    report = model.Report(snap)
    text = model.dumps(report)
    assert json.loads(text) == report.to_dict()  # to_dict: model._Tables.row, edge by edge
    back = model.loads(text, "r.json").snapshot
    assert back.site_edges == site and back.instance_edges == inst


def test_a_written_report_is_streamed_and_the_same_as_dumps(tmp_path: Path) -> None:
    report = analysis.build_report([edges_snapshot()])
    chunks = list(model.iter_dumps(report))
    assert len(chunks) > len(report.snapshot.site_edges) + len(report.snapshot.instance_edges)
    path = tmp_path / "r.json"
    files.write_report_file(report, "json", str(path))
    assert path.read_text(encoding="utf-8") == "".join(chunks) == model.dumps(report)
    model.save(str(tmp_path / "s.json"), report)
    assert (tmp_path / "s.json").read_text(encoding="utf-8") == "".join(chunks)


def test_a_lock_row_is_written_as_json_dumps_writes_its_dict() -> None:
    """The locks are written through a template (and an idle timing's text made once): the same
    text as json.dumps of to_dict, for awkward strings, timings of both scales, idle or not, and a
    field of another type than the usual (written by json.dumps, not the template)."""
    from lockwatch.histogram import SQRT2, bucket_of
    from lockwatch.model import Timing

    odd = 'q"\\\n\x1b\u202e\ud800 é 中'
    busy = Timing(count=3, total_ns=3_500, max_ns=2_000, buckets={bucket_of(500): 1, bucket_of(1_000): 1,
                                                                   bucket_of(2_000): 1})
    made = [
        lock(0),
        LockStats(key=f"/srv/{odd}.py:7:RLock", name=odd, kind="RLock", filename=f"/srv/{odd}.py", line=7,
                  function=odd, named=True, signal=True, value=3, stdlib=True, stable_file=odd, instances=2,
                  acquisitions=10**12, contended=1, failed=2, hold=busy, wait=Timing(scale=SQRT2)),
        LockStats(key="k", name="n", kind="Semaphore", filename="f.py", line=1, function="f",
                  value=True, hold=Timing(scale=SQRT2), wait=Timing(count=1, total_ns=5, max_ns=5,
                                                                     buckets={5: 1}, scale=SQRT2)),
    ]
    for stats in made:
        assert stats.encoded() == json.dumps(stats.to_dict(), separators=(",", ":"))
    assert json.loads(made[1].encoded())["name"] == odd


def test_cycles_not_listed_are_in_the_json() -> None:
    n = 12
    locks = [lock(i) for i in range(n)]
    edges = [EdgeRecord(locks[i].key, locks[j].key, "T", [], []) for i in range(n) for j in range(n) if i != j]
    report = analysis.build_report([Snapshot(locks=locks, site_edges=edges)])
    data = json.loads(model.dumps(report))
    assert data["cycles_not_listed"] == report.cycles_not_listed > 0
    assert data["cycles_not_listed_at_least"] is report.cycles_not_listed_at_least


def test_a_version_1_report_still_loads() -> None:
    raw = json.loads(V1.read_text(encoding="utf-8"))
    assert raw["version"] == 1
    saved = model.load(str(V1))
    assert len(saved.snapshot.site_edges) == len(raw["lock_order"]) > 0
    assert len(saved.snapshot.instance_edges) == len(raw["instance_edges"]) > 0
    for e, d in zip(saved.snapshot.site_edges, raw["lock_order"]):
        assert (e.src, e.dst, e.thread, e.held_stack, e.acquire_stack, e.count) == (
            d["src"], d["dst"], d["thread"], d["held_stack"], d["acquire_stack"], d["count"])
    # written again as version 2, it reads back the same
    again = model.loads(model.dumps(analysis.build_report([saved.snapshot])), "again.json").snapshot
    assert again.site_edges == saved.snapshot.site_edges
    assert again.instance_edges == saved.snapshot.instance_edges


def test_lockwatch_report_reads_and_merges_both_versions(tmp_path: Path) -> None:
    v2 = tmp_path / "v2.json"
    model.save(str(v2), analysis.build_report([edges_snapshot()]))
    out = tmp_path / "merged.json"
    proc = lockwatch("report", str(V1), str(v2), "--format", "json", "-o", str(out), cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr  # 1: a finding that fails the run
    assert "Traceback" not in proc.stderr
    merged = model.load(str(out))
    keys = {e.src for e in merged.snapshot.site_edges}
    assert "/srv/app/m.py:1:Lock" in keys  # from the version 2 report
    assert keys - {lk.key for lk in edges_snapshot().locks}  # and the version 1 one's


@pytest.mark.parametrize(("where", "value"), [
    (("lock_order", 0, 3), 10**6),  # held_stack: an index past the stacks
    (("stacks", 0, 0), -1),  # a frame index that is negative
    (("instance_edges", 0, 4), "x"),  # acquire_stack: not an index
])
def test_a_bad_stack_index_is_one_line_from_lockwatch_report(tmp_path: Path, where: tuple, value: object) -> None:
    data = json.loads(model.dumps(analysis.build_report([edges_snapshot()])))
    target = data
    for k in where[:-1]:
        target = target[k]
    target[where[-1]] = value
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    proc = lockwatch("report", str(path), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"lockwatch report: error: {path} is a damaged lockwatch report (" in proc.stderr, proc.stderr
    assert "index into" in proc.stderr


def test_lockwatch_report_merges_an_older_reports_histograms_in_their_scale(tmp_path: Path) -> None:
    """A report of a lockwatch before the log-linear scale (no histogram_scale: buckets sqrt(2)
    wide) merged with one of today: a lock in both is counted in the older, coarser scale (each
    log-linear bucket in the sqrt(2) bucket of its middle); a lock only in today's keeps its scale."""
    old_path = FIXTURES / "report_sqrt2" / "report.json"
    old = json.loads(old_path.read_text(encoding="utf-8"))
    new = json.loads((FIXTURES / "report_golden" / "report.json").read_text(encoding="utf-8"))
    new["locks"].append({**new["locks"][0], "name": "only_new", "site": "/srv/app/new.py:3",
                         "key": "/srv/app/new.py:3:Lock"})
    new_path = tmp_path / "new.json"
    new_path.write_text(json.dumps(new))
    out = tmp_path / "merged.json"
    proc = lockwatch("report", str(old_path), str(new_path), "--format", "json", "-o", str(out), cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr  # 1: a finding that fails the run
    merged = {lk["name"]: lk for lk in json.loads(out.read_text(encoding="utf-8"))["locks"]}
    for lk in old["locks"]:
        for kind in ("hold", "wait"):
            t = merged[lk["name"]][kind]
            if not lk[kind]["count"]:  # idle in both: written as such
                assert t == {"count": 0}
                continue
            assert t["histogram_scale"] == "sqrt2" and t["count"] == 2 * lk[kind]["count"]
            # the shop's durations sit well inside their sqrt(2) buckets: the same ones, twice the counts
            assert t["histogram"] == [[i, 2 * n] for i, n in lk[kind]["histogram"]]
            assert t["p50"] == pytest.approx(lk[kind]["p50"]) and t["p99"] == pytest.approx(lk[kind]["p99"])
    assert merged["only_new"]["hold"]["histogram_scale"] == "log-linear-32"
    assert merged["only_new"]["hold"]["histogram"] == new["locks"][0]["hold"]["histogram"]
