"""Programs whose threads really deadlock, run in a subprocess, and what the watchdog must say
about them (shared by the test_watchdog_* modules).

Every scenario runs in a subprocess (a deadlock in the test process would hang the suite), with
real threads forced into the deadlock by a threading.Barrier: each thread takes its own lock, all
meet at the barrier, then each takes the next thread's lock. The watchdog runs with a short
timeout (0.5 s) so that the tests stay fast.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from support import child_env, line_in

TIMEOUT = 0.5  # --deadlock-timeout / deadlock_timeout of every scenario
SLACK = 3.0  # generous bound on how long after the timeout detection may come (not a benchmark)
EXIT_DEADLOCK = 87
RULE = "=" * 78


# -- running a program ----------------------------------------------------------------------------
@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    report: Optional[dict]  # the --json / enable(json=) report, if one was written
    seconds: float
    source: str

    def lines(self, prefix: str) -> list[str]:
        return [ln for ln in self.stdout.splitlines() if ln.startswith(prefix)]

    def explain(self) -> str:
        return f"exit status {self.returncode}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"


def run(tmp_path: Path, source: str, *options: str, cli: bool = True, timeout: float = 60) -> Result:
    """Run ``source`` as prog.py in tmp_path: under `python -m lockwatch --json report.json
    OPTIONS prog.py` (cli) or as `python prog.py` (the program enables lockwatch itself)."""
    source = textwrap.dedent(source).lstrip("\n")
    (tmp_path / "prog.py").write_text(source)
    out = tmp_path / "report.json"
    if out.exists():
        out.unlink()
    if cli:
        cmd = [sys.executable, "-m", "lockwatch", "--json", str(out), *options, "prog.py"]
    else:
        cmd = [sys.executable, "prog.py", *options]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=tmp_path, env=child_env(PYTHONUNBUFFERED="1"), capture_output=True, text=True,
                          timeout=timeout)
    seconds = time.monotonic() - t0
    report = json.loads(out.read_text()) if out.exists() else None
    return Result(proc.returncode, proc.stdout, proc.stderr, report, seconds, source)


def live_part(stderr: str) -> str:
    """What was written to stderr while the program ran: everything before the final report
    (which starts with a rule line and repeats the deadlocks and alerts)."""
    final = re.search(rf"^{RULE}\nlockwatch: (no potential deadlocks|\d+ potential deadlock)", stderr, re.M)
    return stderr[:final.start()] if final else stderr


# -- the deadlocking programs ---------------------------------------------------------------------
# A shared head: `attempt(lock)` takes the next thread's lock; under on_deadlock="raise" it catches
# DeadlockError and prints when and what (the error's .report); `finish()` checks that every lock
# of the broken cycle is free again. ENABLE is replaced by nothing (under `python -m lockwatch`)
# or by a lockwatch.enable(...) call.
HEAD = '''
import json
import os
import sys
import threading
import time

import lockwatch

ENABLE


def say(line):
    sys.stdout.write(line + "\\n")  # one write: lines of threads printing at once stay whole
    sys.stdout.flush()


def attempt(lock):
    name = threading.current_thread().name
    t0 = time.monotonic()  # just after the barrier: the cycle is closing now
    try:
        with lock:  # blocks here
            say(f"TOOK {name}")
    except lockwatch.DeadlockError as exc:
        say(f"CAUGHT {name} {time.monotonic() - t0:.3f}")
        say("REPORT " + json.dumps(exc.report))


def finish(*locks):
    say(f"FREE {all(lock.acquire(blocking=False) for lock in locks)}")
    say("FINISHED")

'''

ENABLE_RAISE = (f"lockwatch.enable(deadlock_timeout={TIMEOUT}, on_deadlock='raise', "
                "report_at_exit=False)")


@dataclass
class Shape:
    """A program whose threads deadlock, and what the watchdog must say about it."""

    body: str
    cycle: dict[str, tuple[str, tuple[str, ...]]]  # thread -> (lock it waits for, locks it holds)
    kinds: dict[str, str]  # lock name -> kind
    taken: dict[tuple[str, str], str] = field(default_factory=dict)  # (thread, lock) -> text on the taking line
    victim: Optional[str] = None  # who must get the DeadlockError, if the policy says

    def source(self, enable: str = "pass") -> str:
        return textwrap.dedent(HEAD).lstrip("\n").replace("ENABLE", enable) + textwrap.dedent(self.body)

    def holder_of(self, lock: str) -> str:
        [holder] = [t for t, (_w, holds) in self.cycle.items() if lock in holds]
        return holder


TWO_THREADS = Shape(
    body='''
    lock_a = threading.Lock()
    lock_b = threading.Lock()
    barrier = threading.Barrier(2)


    def first():
        with lock_a:  # first takes lock_a
            barrier.wait()
            attempt(lock_b)


    def second():
        with lock_b:  # second takes lock_b
            barrier.wait()
            attempt(lock_a)


    threads = [threading.Thread(target=first, name="first"),
               threading.Thread(target=second, name="second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    finish(lock_a, lock_b)
    ''',
    cycle={"first": ("lock_b", ("lock_a",)), "second": ("lock_a", ("lock_b",))},
    kinds={"lock_a": "Lock", "lock_b": "Lock"},
    taken={("first", "lock_a"): "# first takes lock_a", ("second", "lock_b"): "# second takes lock_b"},
)

THREE_THREADS = Shape(
    body='''
    lock_a = threading.Lock()
    lock_b = threading.Lock()
    lock_c = threading.Lock()
    barrier = threading.Barrier(3)


    def worker(mine, theirs):
        with mine:  # each takes its own lock
            barrier.wait()
            attempt(theirs)


    threads = [threading.Thread(target=worker, args=(lock_a, lock_b), name="t1"),
               threading.Thread(target=worker, args=(lock_b, lock_c), name="t2"),
               threading.Thread(target=worker, args=(lock_c, lock_a), name="t3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    finish(lock_a, lock_b, lock_c)
    ''',
    cycle={"t1": ("lock_b", ("lock_a",)), "t2": ("lock_c", ("lock_b",)), "t3": ("lock_a", ("lock_c",))},
    kinds={"lock_a": "Lock", "lock_b": "Lock", "lock_c": "Lock"},
    taken={("t1", "lock_a"): "# each takes its own lock", ("t2", "lock_b"): "# each takes its own lock",
           ("t3", "lock_c"): "# each takes its own lock"},
)

# Each RLock is taken twice (re-entrantly) before the barrier: one hold each, taken at the outer
# acquisition, and both levels released when the cycle is broken.
RLOCKS = Shape(
    body='''
    ra = threading.RLock()
    rb = threading.RLock()
    barrier = threading.Barrier(2)


    def first():
        with ra:  # first takes ra
            with ra:  # first re-enters ra
                barrier.wait()
                attempt(rb)


    def second():
        rb.acquire()  # second takes rb
        rb.acquire()  # second re-enters rb
        try:
            barrier.wait()
            attempt(ra)
        finally:
            rb.release()
            rb.release()


    threads = [threading.Thread(target=first, name="first"),
               threading.Thread(target=second, name="second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    finish(ra, rb)
    ''',
    cycle={"first": ("rb", ("ra",)), "second": ("ra", ("rb",))},
    kinds={"ra": "RLock", "rb": "RLock"},
    taken={("first", "ra"): "# first takes ra", ("second", "rb"): "# second takes rb"},
)

# 'sleeper' waits in cond.wait() the whole time: that is not a deadlock (it waits for a notify,
# not a lock). 'holder' holds cond's lock and blocks on `other`, held by 'blocker', which blocks
# on `with cond:`: that is one.
CONDITION = Shape(
    body='''
    cond = threading.Condition()
    other = threading.Lock()
    barrier = threading.Barrier(2)
    sleeping = threading.Event()
    state = {"ready": False}


    def sleeper():
        with cond:
            sleeping.set()
            while not state["ready"]:
                cond.wait()  # sleeper waits for a notify
        say("WOKE sleeper")


    def holder():
        with cond:  # holder takes cond
            barrier.wait()
            attempt(other)
            state["ready"] = True
            cond.notify_all()


    def blocker():
        with other:  # blocker takes other
            barrier.wait()
            attempt(cond)


    s = threading.Thread(target=sleeper, name="sleeper")
    s.start()
    sleeping.wait()
    threads = [s, threading.Thread(target=holder, name="holder"),
               threading.Thread(target=blocker, name="blocker")]
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join()
    finish(cond, other)
    ''',
    cycle={"holder": ("other", ("cond",)), "blocker": ("cond", ("other",))},
    kinds={"cond": "Condition", "other": "Lock"},
    # Where holder took cond (`with cond:`) is checked in test_condition_hold_is_taken_at_the_with_line.
    taken={("blocker", "other"): "# blocker takes other"},
)

# The main thread is one member of the cycle; under "raise" it is the one that gets the error
# (the most visible place: a pytest test fails with it).
MAIN_THREAD = Shape(
    body='''
    lock_a = threading.Lock()
    lock_b = threading.Lock()
    barrier = threading.Barrier(2)


    def helper():
        with lock_b:  # helper takes lock_b
            barrier.wait()
            attempt(lock_a)


    t = threading.Thread(target=helper, name="helper")
    t.start()
    with lock_a:  # main takes lock_a
        barrier.wait()
        attempt(lock_b)
    t.join()
    finish(lock_a, lock_b)
    ''',
    cycle={"MainThread": ("lock_b", ("lock_a",)), "helper": ("lock_a", ("lock_b",))},
    kinds={"lock_a": "Lock", "lock_b": "Lock"},
    taken={("MainThread", "lock_a"): "# main takes lock_a", ("helper", "lock_b"): "# helper takes lock_b"},
    victim="MainThread",
)

SHAPES = {"two-threads": TWO_THREADS, "three-threads": THREE_THREADS, "rlocks": RLOCKS,
          "condition": CONDITION, "main-thread": MAIN_THREAD}


def check_deadlock(d: dict[str, Any], shape: Shape, source: str, policy: str) -> None:
    """One deadlock as reported (JSON, or DeadlockError.report): exactly the threads of the cycle,
    what each waits for and holds (with creation lines and where it was taken), who blocks it,
    and where it waits."""
    assert d["policy"] == policy
    assert d["timeout_s"] == TIMEOUT
    by_name = {t["name"]: t for t in d["threads"]}
    assert len(by_name) == len(d["threads"]), d["threads"]
    assert set(by_name) == set(shape.cycle), d["threads"]
    wait_line = line_in(source, "with lock:  # blocks here")
    for name, (waits, holds) in shape.cycle.items():
        t = by_name[name]
        w = t["waiting_for"]
        assert (w["name"], w["kind"]) == (waits, shape.kinds[waits]), t
        assert w["site"].endswith(f"prog.py:{line_in(source, f'{waits} = threading.')}"), t
        assert t["blocked_by"] == shape.holder_of(waits), t
        assert t["waiting_s"] >= TIMEOUT - 0.02, t
        assert [h["name"] for h in t["holds"]] == list(holds), t  # re-entry is one hold
        for h in t["holds"]:
            assert h["kind"] == shape.kinds[h["name"]], h
            assert h["site"].endswith(f"prog.py:{line_in(source, h['name'] + ' = threading.')}"), h
            marker = shape.taken.get((name, h["name"]))
            if marker is not None:
                function = "<module>" if name == "MainThread" else r"\w+"
                assert h["taken_at"] is not None and re.search(
                    rf"prog\.py:{line_in(source, marker)} in {function}$", h["taken_at"]), h
        assert t["stack"], t
        assert t["stack"][-1].endswith(f"prog.py:{wait_line} in attempt"), t["stack"]
    if policy == "raise":
        assert d["victim"] in shape.cycle
        if shape.victim:
            assert d["victim"] == shape.victim
    else:
        assert d["victim"] is None


def check_deadlock_text(text: str, shape: Shape, source: str) -> None:
    """The text report: for each thread, what it waits for (with the creation line), who blocks
    it, and what it holds (creation line, where taken)."""
    lines = text.splitlines()
    assert sum("DEADLOCK DETECTED" in ln for ln in lines) == 1, text
    head = [ln for ln in lines if "DEADLOCK DETECTED" in ln][0]
    assert f"{len(shape.cycle)} threads have waited more than {TIMEOUT:g} s" in head
    for name, (waits, holds) in shape.cycle.items():
        pattern = (rf"^  thread '{name}' waits for {waits} \({shape.kinds[waits]}, created at "
                   rf"prog\.py:{line_in(source, waits + ' = threading.')}\) since \d+\.\d s, "
                   rf"blocked by thread '{shape.holder_of(waits)}'$")
        starts = [i for i, ln in enumerate(lines) if re.match(pattern, ln)]
        assert len(starts) == 1, f"no line matching {pattern!r} in:\n{text}"
        block = []
        for ln in lines[starts[0] + 1:]:
            if not ln.startswith("    "):
                break
            block.append(ln)
        held_lines = [ln for ln in block if ln.startswith("    holds ")]
        assert len(held_lines) == len(holds), block
        for h, ln in zip(holds, held_lines):
            assert ln.startswith(f"    holds {h} ({shape.kinds[h]}, created at "
                                 f"prog.py:{line_in(source, h + ' = threading.')}"), ln
            marker = shape.taken.get((name, h))
            if marker is not None:
                assert f", taken at prog.py:{line_in(source, marker)} in " in ln, ln
        wait_line = line_in(source, "with lock:  # blocks here")
        assert f"      prog.py:{wait_line} in attempt" in block, block


def assert_no_deadlock(r: Result) -> None:
    assert r.returncode == 0, r.explain()
    assert "DEADLOCK" not in r.stderr and "DeadlockError" not in r.stderr, r.stderr
    assert r.report is not None and r.report["deadlocks"] == [], r.explain()
    assert r.stdout.rstrip().endswith("FINISHED"), r.explain()
