"""Tests for `python -m lockwatch --confirm`: steered re-runs that force a potential deadlock."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from support import PROGRAMS, assert_follows_contract, lockwatch, report_of
from support import child_env as env

from lockwatch import confirm
from lockwatch.model import Confirmation, EdgeRecord, LockRef, PotentialDeadlock, ReportError, loads

pytestmark = pytest.mark.timeout(180)

CONFIRM = PROGRAMS / "confirm"


def _processes_under(folder: Path) -> list[str]:
    """Command lines of the processes still running that name ``folder`` (a run's programs)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if str(folder) in cmdline:
            out.append(f"{pid}: {cmdline}")
    return out


def run_confirm(tmp_path: Path, program: str, *options: str, args: tuple[str, ...] = (),
                module: bool = False) -> tuple[Any, dict[str, Any]]:
    """`python -m lockwatch --confirm --json R OPTIONS program ARGS` on a copy of the program in
    a folder of its own, which no process may still name afterwards."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(CONFIRM / program, work / program)
    report = tmp_path / "report.json"
    target = ["-m", program[:-3]] if module else [str(work / program)]
    # A long pause for a loaded machine: a thread is let go as soon as the cycle forms, so only a
    # cycle that is not reproduced waits that long.
    proc = lockwatch("--confirm", "--json", str(report), "--confirm-pause", "3", *options, *target, *args, cwd=work,
                     env=env(tmp_path / "tmp", CONFIRM_PROBE="probe-value"), timeout=150)
    assert _processes_under(work) == []
    data = report_of(report)
    assert_follows_contract(data)
    return proc, data


def the_finding(data: dict[str, Any]) -> dict[str, Any]:
    [found] = [p for p in data["potential_deadlocks"] if p["origin"] == "user"]
    return found


def assert_confirmed(found: dict[str, Any], threads: set[str]) -> dict[str, Any]:
    c = found["confirmation"]
    assert c["status"] == "confirmed", c
    assert 1 <= c["run"] == c["runs"] <= c["of"]
    deadlock = c["deadlock"]
    assert {t["name"] for t in deadlock["threads"]} == threads
    # the real deadlock is on exactly this cycle: each thread waits for a lock of it, held by the next
    assert sorted(t["waiting_for"]["site"] for t in deadlock["threads"]) == sorted(lk["site"] for lk in found["locks"])
    names = {t["name"] for t in deadlock["threads"]}
    assert all(t["blocked_by"] in names and t["blocked_by"] != t["name"] for t in deadlock["threads"])
    assert all(t["stack"] and t["holds"] for t in deadlock["threads"])
    assert len(c["schedule"]) == len(found["locks"]) + 1
    return c


def test_two_threads_started_together_are_confirmed_with_the_first_runs_status(tmp_path: Path) -> None:
    proc, data = run_confirm(tmp_path, "abba_together.py", args=("3", "an arg"))
    assert proc.returncode == 3, proc.stderr  # the program's own run's status
    c = assert_confirmed(the_finding(data), {"forward", "backward"})
    # The confirmation run had the same argv, cwd and environment; its output is kept.
    first_line = proc.stdout.splitlines()[0]
    assert first_line.startswith("argv: ['3', 'an arg'] cwd: ") and first_line.endswith("probe: probe-value")
    assert c["output"][0] == first_line
    assert "finished without hanging" in proc.stdout  # the program's own run never hangs
    assert "finished without hanging" not in "\n".join(c["output"])  # the steered one did
    assert f"CONFIRMED: this deadlock was reproduced in run {c['run']} of {c['of']}" in proc.stderr
    assert "the real deadlock:" in proc.stderr and "abba_together.py:" in proc.stderr


def test_a_module_is_confirmed_too(tmp_path: Path) -> None:
    proc, data = run_confirm(tmp_path, "abba_together.py", "--confirm-runs", "3", module=True)
    assert proc.returncode == 0, proc.stderr
    assert_confirmed(the_finding(data), {"forward", "backward"})


def test_fail_on_cycle_still_decides_the_status(tmp_path: Path) -> None:
    proc, data = run_confirm(tmp_path, "abba_together.py", "--fail-on-cycle")
    assert proc.returncode == 86, proc.stderr
    assert the_finding(data)["confirmation"]["status"] == "confirmed"


def test_a_three_lock_ring_over_three_threads_is_confirmed(tmp_path: Path) -> None:
    _proc, data = run_confirm(tmp_path, "ring3.py")
    assert_confirmed(the_finding(data), {"xy", "yz", "zx"})


def test_the_bank_transfer_instance_inversion_is_confirmed(tmp_path: Path) -> None:
    _proc, data = run_confirm(tmp_path, "bank.py")
    found = the_finding(data)
    assert found["scope"] == "instance" and len({lk["site"] for lk in found["locks"]}) == 1
    assert_confirmed(found, {"alice-pays", "bob-pays"})


def test_a_gate_lock_is_the_reason_and_nothing_runs(tmp_path: Path) -> None:
    proc, data = run_confirm(tmp_path, "gated.py")
    c = the_finding(data)["confirmation"]
    assert c["status"] == "not-reproduced" and c["runs"] == 0
    assert "the gate lock gate was held around every edge" in c["reason"]
    assert proc.stdout.count("finished without hanging") == 1  # the program ran once
    assert "not reproduced (not attempted: the gate lock gate" in proc.stderr


def test_a_single_thread_inversion_is_the_reason_and_nothing_runs(tmp_path: Path) -> None:
    _proc, data = run_confirm(tmp_path, "single.py")
    c = the_finding(data)["confirmation"]
    assert c["status"] == "not-reproduced" and c["runs"] == 0
    assert "the one thread 'MainThread'" in c["reason"]


def test_orders_that_never_overlap_are_reported_as_such(tmp_path: Path) -> None:
    proc, data = run_confirm(tmp_path, "sequential.py", "--confirm-runs", "2", "--confirm-pause", "0.2")
    found = the_finding(data)
    c = found["confirmation"]
    assert c["status"] == "not-reproduced" and c["runs"] == 2 == c["of"]
    assert ("in this program the orders never overlap: thread 'forward' ended before thread 'backward' "
            "started") in c["reason"]
    assert found["triage"] == "deadlock" and found["fails"]  # still a risk
    assert "not reproduced in 2 steered runs: in this program the orders never overlap" in proc.stderr


def test_without_confirm_nothing_is_re_run_and_no_key_is_added(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    for name in ("abba_together.py", "ring3.py", "bank.py", "sequential.py"):
        shutil.copy(CONFIRM / name, work / name)
        proc = lockwatch("--json", str(tmp_path / "r.json"), str(work / name), cwd=work, env=env(tmp_path / "tmp"))
        assert proc.returncode == 0 and "finished without hanging" in proc.stdout, proc.stderr
        assert "confirmation" not in the_finding(report_of(tmp_path / "r.json"))


def test_a_saved_confirmation_is_rendered_again(tmp_path: Path) -> None:
    _proc, data = run_confirm(tmp_path, "abba_together.py")
    again = lockwatch("report", str(tmp_path / "report.json"), cwd=tmp_path, env=env())
    assert again.returncode == 0, again.stderr
    assert "CONFIRMED: this deadlock was reproduced in run" in again.stdout
    html = lockwatch("report", str(tmp_path / "report.json"), "--format", "html", cwd=tmp_path, env=env())
    assert "CONFIRMED: this deadlock was reproduced in run" in html.stdout
    as_json = json.loads(lockwatch("report", str(tmp_path / "report.json"), "--format", "json",
                                   cwd=tmp_path, env=env()).stdout)
    assert the_finding(as_json)["confirmation"] == the_finding(data)["confirmation"]


def test_bad_confirm_options_are_one_line(tmp_path: Path) -> None:
    for option, value in (("--confirm-runs", "0"), ("--confirm-runs", "x"), ("--confirm-pause", "-1")):
        proc = lockwatch("--confirm", option, value, str(CONFIRM / "single.py"), cwd=tmp_path, env=env())
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and option in proc.stderr, proc.stderr


# -- without threads: the model, the reasons, the search for a cycle of held-back threads ---------

def _report_with(confirmation: Any) -> str:
    return json.dumps({"format": "lockwatch-report", "version": 1, "potential_deadlocks": [
        {"fingerprint": "abc", "locks": [{"key": "a.py:1:Lock"}], "confirmation": confirmation}]})


@pytest.mark.parametrize("damage, problem", [
    ({"status": "maybe", "runs": 1}, "confirmation.status is not one of confirmed, not-reproduced"),
    ({"status": "confirmed"}, "confirmation.runs is missing"),
    ({"status": "confirmed", "runs": -1}, "confirmation.runs is out of range"),
    ({"status": "confirmed", "runs": 1, "output": [1]}, "confirmation.output[0] is not a string"),
    ({"status": "confirmed", "runs": 1, "deadlock": {"threads": [{}]}}, "threads[0].name is missing"),
    ("yes", "confirmation is not an object"),
])
def test_a_damaged_confirmation_is_a_damaged_report(damage: Any, problem: str) -> None:
    with pytest.raises(ReportError, match="damaged lockwatch report") as info:
        loads(_report_with(damage), "r.json")
    assert problem in str(info.value)


def test_a_confirmation_round_trips() -> None:
    c = Confirmation("not-reproduced", 3, of=3, reason="because", schedule=["x"], output=["a", "b"])
    saved = loads(_report_with(c.to_dict()))
    assert saved.confirmations["abc"] == c


def _cycle(kinds: tuple[str, str] = ("Lock", "Lock")) -> PotentialDeadlock:
    locks = [LockRef("p.py:1:Lock", "a", kinds[0], "p.py", 1), LockRef("p.py:2:Lock", "b", kinds[1], "p.py", 2)]
    edges = [EdgeRecord("p.py:1:Lock", "p.py:2:Lock", "one", ["p.py:5 in f"], ["p.py:6 in f"]),
             EdgeRecord("p.py:2:Lock", "p.py:1:Lock", "two", ["p.py:9 in g"], ["p.py:10 in g"])]
    return PotentialDeadlock("site", locks, edges, "fp")


def _run(number: int, pauses: list[dict[str, Any]], lives: list[list[Any]]) -> confirm.RunResult:
    return confirm.RunResult(number, {"pauses": pauses, "lives": lives, "deadlock": None}, 0, "")


def test_edge_specs_name_the_acquisition_places() -> None:
    specs = confirm.edge_specs(_cycle())
    assert [(s.src, s.dst, s.acq_file, s.acq_line) for s in specs] == [
        ("p.py:1:Lock", "p.py:2:Lock", "p.py", 6), ("p.py:2:Lock", "p.py:1:Lock", "p.py", 10)]


def test_reasons_for_cycles_no_run_reproduced() -> None:
    p = _cycle()
    specs = confirm.edge_specs(p)
    lives = [["MainThread", 0, 9], ["one", 1, 3], ["two", 2, 4]]
    never = confirm.why_not(p, specs, [_run(1, [{"life": 1, "edges": [0], "start": 1, "end": 2}], lives)], 0.5, 30)
    assert "no thread reached taking a at p.py:10 while holding b" in never
    together = [{"life": 1, "edges": [0], "start": 1, "end": 2}, {"life": 2, "edges": [1], "start": 1.5, "end": 2.5}]
    assert "not on the same lock objects" in confirm.why_not(p, specs, [_run(1, together, lives)], 0.5, 30)
    apart = [{"life": 1, "edges": [0], "start": 1, "end": 1.5}, {"life": 2, "edges": [1], "start": 2.5, "end": 3}]
    lives_apart = [["MainThread", 0, 9], ["one", 1, 2], ["two", 2.2, 4]]
    assert "thread 'one' ended before thread 'two' started" in confirm.why_not(
        p, specs, [_run(1, apart, lives_apart)], 0.5, 30)
    assert "never at the same time" in confirm.why_not(p, specs, [_run(1, apart, lives)], 0.5, 30)
    # instances of one site (account locks): each pause matches both edges
    both = [{"life": 1, "edges": [0, 1], "start": 1, "end": 1.5}, {"life": 2, "edges": [0, 1], "start": 2.5, "end": 3}]
    assert "thread 'one' ended before thread 'two' started" in confirm.why_not(
        p, specs, [_run(1, both, lives_apart)], 0.5, 30)
    one_edge = [{"life": 1, "edges": [0], "start": 1, "end": 1.5}, {"life": 2, "edges": [0], "start": 2.5, "end": 3}]
    assert "no thread reached" in confirm.why_not(p, specs, [_run(1, one_edge, lives_apart)], 0.5, 30)
    stopped = confirm.RunResult(2, None, None, "")
    assert "run 2 did not end within 30 s and was stopped" in confirm.why_not(
        p, specs, [_run(1, apart, lives), stopped], 0.5, 30)


def test_cycles_through_other_primitives_are_not_attempted() -> None:
    p = _cycle(("Lock", "Condition"))
    assert "Lock and RLock acquisitions only" in (confirm.not_attempted(p) or "")
    assert confirm.not_attempted(_cycle()) is None


def test_the_held_back_threads_that_close_the_cycle_are_found() -> None:
    steer = confirm.Steer({"edges": [s.__dict__ for s in confirm.edge_specs(_cycle())], "pause": 0.1,
                           "result": "", "deadlock_timeout": 0.5, "timeout": 30})
    a, b, c = object(), object(), object()
    one = confirm._Waiter("one", 1, [(0, a)], b)  # holds a, wants b
    other = confirm._Waiter("two", 2, [(1, c)], a)  # holds another b-site lock c: not the cycle
    steer.paused = [one, other]
    assert steer._cycle() is None
    two = confirm._Waiter("two", 3, [(1, b)], a)  # holds b, wants a
    steer.paused.append(two)
    assert steer._cycle() == [(one, a), (two, b)]


def test_what_a_confirmation_shows_is_escaped_in_text_and_html() -> None:
    from support import load_report_fixture

    from lockwatch.model import Deadlock
    from lockwatch.renderers import html, text

    report = load_report_fixture().shop_report()
    p = report.potential_deadlocks[0]
    nasty = "\x1b[2J<script>alert(1)</script>\u202e"
    p.confirmation = Confirmation(
        "confirmed", 2, of=5, run=2, schedule=[f"thread {nasty!r} was held back"], output=[nasty, "second line"],
        deadlock=Deadlock.from_dict({"threads": [{"name": nasty, "stack": ["/srv/x.py:3 in f"]}]}))
    shown = text.render(report)
    assert "CONFIRMED: this deadlock was reproduced in run 2 of 5" in shown
    assert "\x1b" not in shown and "\u202e" not in shown and "\\x1b[2J" in shown
    assert "      | second line" in shown
    page = html.render(report)
    assert "CONFIRMED: this deadlock was reproduced in run 2 of 5" in page
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    p.confirmation = Confirmation("not-reproduced", 0, of=5, reason="not attempted: because")
    assert "not reproduced (not attempted: because)" in text.render(report)


def test_ctrl_c_while_confirming_keeps_the_report_and_leaves_no_process(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    from support import default_sigint

    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(CONFIRM / "sequential.py", work / "sequential.py")
    report = tmp_path / "report.json"
    proc = subprocess.Popen([sys.executable, "-m", "lockwatch", "--confirm", "--confirm-runs", "50",
                             "--confirm-pause", "5", "--json", str(report), str(work / "sequential.py")],
                            cwd=work, env=env(tmp_path / "tmp"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=default_sigint)
    try:
        deadline = time.monotonic() + 120
        while not any("child_main" in c for c in _processes_under(work)):  # a steered run is going
            assert time.monotonic() < deadline and proc.poll() is None, "no confirmation run started"
            time.sleep(0.1)
        proc.send_signal(2)  # SIGINT, as Ctrl-C
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err  # the program's own run's status
    assert _processes_under(work) == []
    c = the_finding(report_of(report))["confirmation"]
    assert c == {"status": "not-reproduced", "runs": 0, "of": 50,
                 "reason": "not attempted: confirming was interrupted"}
    assert "finished without hanging" in out


def test_ctrl_c_while_a_run_is_being_started_leaves_no_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C can come while Popen still waits for the child's exec: the run must be stopped all
    the same (the SIGINT arrives here at the end of Popen, before it returns the process)."""
    import signal
    import subprocess
    import sys

    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def popen_then_ctrl_c(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = real_popen(*args, **kwargs)
        started.append(proc)
        os.kill(os.getpid(), signal.SIGINT)
        return proc

    monkeypatch.setattr(confirm.subprocess, "Popen", popen_then_ctrl_c)
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    # Ctrl-C raises KeyboardInterrupt here, as in the CLI (a pytest-xdist worker ignores SIGINT)
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            confirm._run_once(1, argv, dict(os.environ), str(tmp_path), 60.0, str(tmp_path / "result.json"))
        handler = signal.getsignal(signal.SIGINT)
        left_running = [proc.pid for proc in started if proc.poll() is None]
    finally:
        signal.signal(signal.SIGINT, outer)
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert len(started) == 1
    assert left_running == []  # killed by _run_once, not left sleeping
    assert handler is signal.default_int_handler  # put back
