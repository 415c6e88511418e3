"""The watchdog: threads that really deadlock (each blocked on a lock the next one holds) are named
and, by policy, reported ("report"), broken by a DeadlockError in one of them ("raise") or ended
with status 87 ("exit"); long holds and long waits raise alerts while they happen.

Every scenario runs in a subprocess (a deadlock in the test process would hang the suite), with
real threads forced into the deadlock by a threading.Barrier: each thread takes its own lock, all
meet at the barrier, then each takes the next thread's lock. The watchdog runs with a short
timeout (0.5 s) so that the whole file stays fast.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest
from support import child_env, line_in

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parent.parent
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


# -- 1 and 2: the shapes of a cycle, under each policy ---------------------------------------------
@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_cycle_under_cli_exit_ends_the_process_with_the_report(tmp_path, shape_name):
    """`python -m lockwatch --deadlock-timeout 0.5 --on-deadlock exit`: status 87, the deadlock
    report and the potential-deadlock report on stderr, both in the JSON."""
    shape = SHAPES[shape_name]
    source = shape.source()
    r = run(tmp_path, source, "--deadlock-timeout", str(TIMEOUT), "--on-deadlock", "exit")
    assert r.returncode == EXIT_DEADLOCK, r.explain()
    assert "FINISHED" not in r.stdout and not r.lines("CAUGHT") and not r.lines("TOOK"), r.explain()
    err = r.stderr
    check_deadlock_text(err, shape, source)
    assert f"the process ends now with status {EXIT_DEADLOCK}" in err
    assert "1 real deadlock happened during the run:" in err
    # the lock-order inversion the deadlock is an instance of, reported as usual
    assert re.search(r"^lockwatch: \d+ potential deadlocks? \(lock-order inversion\)", err, re.M), err
    assert "Potential deadlock 1 of " in err
    assert r.report is not None, r.explain()
    [d] = r.report["deadlocks"]
    check_deadlock(d, shape, source, "exit")
    cycles = [{lk["name"] for lk in p["locks"]} for p in r.report["potential_deadlocks"]]
    assert set(shape.kinds) in cycles, cycles


@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_cycle_under_raise_breaks_in_exactly_one_thread(tmp_path, shape_name):
    """enable(on_deadlock="raise"): DeadlockError in exactly one thread of the cycle, soon after
    the timeout and not before; every other thread completes, every lock ends free, status 0."""
    shape = SHAPES[shape_name]
    source = shape.source(ENABLE_RAISE)
    r = run(tmp_path, source, cli=False)
    assert r.returncode == 0, r.explain()
    caught = r.lines("CAUGHT ")
    assert len(caught) == 1, r.explain()
    _, victim, elapsed = caught[0].split()
    assert victim in shape.cycle
    if shape.victim:
        assert victim == shape.victim
    # detection latency: not before the timeout, and within a few seconds of it
    assert TIMEOUT - 0.02 <= float(elapsed) < TIMEOUT + SLACK, caught
    took = sorted(ln.split()[1] for ln in r.lines("TOOK "))
    assert took == sorted(set(shape.cycle) - {victim}), r.explain()
    assert r.stdout.rstrip().endswith("FREE True\nFINISHED"), r.explain()
    [line] = r.lines("REPORT ")
    data = json.loads(line[len("REPORT "):])
    check_deadlock(data, shape, source, "raise")
    assert data["victim"] == victim
    # reported live, once, saying where the error goes
    check_deadlock_text(r.stderr, shape, source)
    assert f"lockwatch.DeadlockError is raised in thread '{victim}' to break the cycle" in r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    if shape is CONDITION:
        assert "WOKE sleeper" in r.stdout


def test_condition_hold_is_taken_at_the_with_line(tmp_path):
    """A Condition taken with `with cond:` was taken at that line, not inside threading.py."""
    source = CONDITION.source()
    r = run(tmp_path, source, "--deadlock-timeout", str(TIMEOUT))
    assert r.returncode == EXIT_DEADLOCK, r.explain()
    [d] = r.report["deadlocks"]
    [holder] = [t for t in d["threads"] if t["name"] == "holder"]
    [cond] = holder["holds"]
    assert cond["name"] == "cond"
    assert cond["taken_at"].endswith(f"prog.py:{line_in(source, '# holder takes cond')} in holder")


@pytest.mark.parametrize("make_cond", ["threading.Condition()", "threading.Condition(threading.Lock())"])
def test_raise_never_leaves_a_condition_without_its_lock(tmp_path, make_cond):
    """The main thread, woken in cond.wait(), blocks re-taking cond's lock (held by 'notifier')
    while holding `other`, which 'notifier' blocks on. Raising in the main thread (its usual
    preference) would leave wait() without cond's lock: `with cond:` would then fail ("cannot
    release un-acquired lock") or, for a plain Lock, release it from under 'notifier'. So the
    error goes to 'notifier', and wait() returns normally with cond's lock held again."""
    shape = Shape(
        body=f'''
        cond = {make_cond}
        other = threading.Lock()
        waiting = threading.Event()


        def notifier():
            waiting.wait()
            with cond:  # notifier takes cond
                cond.notify()
                time.sleep(0.2)  # the main thread wakes and blocks re-taking cond's lock
                attempt(other)


        t = threading.Thread(target=notifier, name="notifier")
        t.start()
        try:
            with other:  # main takes other
                with cond:
                    waiting.set()
                    cond.wait()  # main waits, then re-takes cond's lock
                    say(f"MAIN OWNS COND {{cond._is_owned()}}")
        except BaseException as exc:
            say(f"MAIN RAISED {{type(exc).__name__}} {{exc}}")
        t.join()
        finish(cond, other)
        ''',
        cycle={"MainThread": ("cond", ("other",)), "notifier": ("other", ("cond",))},
        kinds={"cond": "Condition" if make_cond == "threading.Condition()" else "Lock", "other": "Lock"},
        taken={("MainThread", "other"): "# main takes other", ("notifier", "cond"): "# notifier takes cond"},
    )
    source = shape.source(ENABLE_RAISE)
    r = run(tmp_path, source, cli=False)
    assert r.returncode == 0, r.explain()
    assert "MAIN RAISED" not in r.stdout and "Exception in thread" not in r.stderr, r.explain()
    [caught] = r.lines("CAUGHT ")
    assert caught.split()[1] == "notifier", r.explain()
    assert "MAIN OWNS COND True" in r.stdout, r.explain()
    assert r.stdout.rstrip().endswith("FREE True\nFINISHED"), r.explain()
    data = json.loads(r.lines("REPORT ")[0][len("REPORT "):])
    by_name = {t["name"]: t for t in data["threads"]}
    assert set(by_name) == {"MainThread", "notifier"}, data
    assert [h["name"] for h in by_name["MainThread"]["holds"]] == ["other"], data  # cond was released by wait()
    assert by_name["MainThread"]["waiting_for"]["name"] == "cond", data
    assert by_name["notifier"]["waiting_for"]["name"] == "other", data
    assert data["victim"] == "notifier"


# A BoundedSemaphore(1) used as a mutex: its one holder is known, so a cycle through it is a
# deadlock like any other (lockwatch must not leave it hanging).
SEMAPHORE = Shape(
    body='''
    sem = threading.BoundedSemaphore(1)
    lock_b = threading.Lock()
    barrier = threading.Barrier(2)


    def first():
        with sem:  # first takes sem
            barrier.wait()
            attempt(lock_b)


    def second():
        with lock_b:  # second takes lock_b
            barrier.wait()
            attempt(sem)


    threads = [threading.Thread(target=first, name="first"),
               threading.Thread(target=second, name="second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    finish(sem, lock_b)
    ''',
    cycle={"first": ("lock_b", ("sem",)), "second": ("sem", ("lock_b",))},
    kinds={"sem": "BoundedSemaphore", "lock_b": "Lock"},
    taken={("first", "sem"): "# first takes sem", ("second", "lock_b"): "# second takes lock_b"},
)


@pytest.mark.parametrize("mode", ["cli-exit", "api-raise"])
def test_cycle_through_a_semaphore_used_as_a_mutex(tmp_path, mode):
    """A cycle through a BoundedSemaphore(1) held by one thread is detected and broken like a
    Lock's (it used to hang: a semaphore's holder was never known to the watchdog)."""
    if mode == "cli-exit":
        source = SEMAPHORE.source()
        r = run(tmp_path, source, "--deadlock-timeout", str(TIMEOUT), timeout=20)
        assert r.returncode == EXIT_DEADLOCK, r.explain()
        check_deadlock_text(r.stderr, SEMAPHORE, source)
        [d] = r.report["deadlocks"]
        check_deadlock(d, SEMAPHORE, source, "exit")
    else:
        source = SEMAPHORE.source(ENABLE_RAISE)
        r = run(tmp_path, source, cli=False, timeout=20)
        assert r.returncode == 0, r.explain()
        assert len(r.lines("CAUGHT ")) == 1 and len(r.lines("TOOK ")) == 1, r.explain()
        assert r.stdout.rstrip().endswith("FREE True\nFINISHED"), r.explain()
        check_deadlock(json.loads(r.lines("REPORT ")[0][len("REPORT "):]), SEMAPHORE, source, "raise")


def test_no_false_alarm_semaphore_with_several_holders(tmp_path):
    """A Semaphore(2) held by two threads, one of which waits for a lock held by a thread that
    waits for the semaphore: the other holder will release it (it is not blocked). No deadlock."""
    source = f'''
    import threading
    import time

    sem = threading.Semaphore(2)
    lock_b = threading.Lock()
    barrier = threading.Barrier(3)


    def first():
        with sem:
            barrier.wait()
            with lock_b:
                pass


    def second():
        with lock_b:
            barrier.wait()
            with sem:
                pass


    def third():
        with sem:
            barrier.wait()
            time.sleep({4 * TIMEOUT})


    threads = [threading.Thread(target=f, name=f.__name__) for f in (first, second, third)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("FINISHED")
    '''
    r = run(tmp_path, source, "--deadlock-timeout", str(TIMEOUT))
    assert_no_deadlock(r)


# -- 2: each policy, its own way -------------------------------------------------------------------
def test_exit_policy_through_the_api(tmp_path):
    """enable(on_deadlock="exit", json=...): status 87, the full text report (deadlock and potential
    deadlock) on stderr, the JSON written: the program never hangs."""
    source = TWO_THREADS.source(f"lockwatch.enable(deadlock_timeout={TIMEOUT}, on_deadlock='exit', "
                                "json='report.json')")
    r = run(tmp_path, source, cli=False)
    assert r.returncode == EXIT_DEADLOCK, r.explain()
    assert "FINISHED" not in r.stdout
    check_deadlock_text(r.stderr, TWO_THREADS, source)
    assert f"the process ends now with status {EXIT_DEADLOCK}" in r.stderr
    assert "Potential deadlock 1 of 1: " in r.stderr
    assert r.report is not None, r.explain()
    [d] = r.report["deadlocks"]
    check_deadlock(d, TWO_THREADS, source, "exit")
    [p] = r.report["potential_deadlocks"]
    assert {lk["name"] for lk in p["locks"]} == {"lock_a", "lock_b"}


def test_raise_policy_uncaught_is_one_thread_traceback(tmp_path):
    """`--on-deadlock raise` with nobody catching: one DeadlockError traceback (in one thread),
    the other thread completes, the program ends normally with its final line and status 0."""
    source = '''
    import sys
    import threading

    lock_a = threading.Lock()
    lock_b = threading.Lock()
    barrier = threading.Barrier(2)


    def first():
        with lock_a:
            barrier.wait()
            with lock_b:
                sys.stdout.write("first took both\\n")


    def second():
        with lock_b:
            barrier.wait()
            with lock_a:
                sys.stdout.write("second took both\\n")


    threads = [threading.Thread(target=first, name="first"),
               threading.Thread(target=second, name="second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("all threads ended", flush=True)
    '''
    r = run(tmp_path, source, "--deadlock-timeout", str(TIMEOUT), "--on-deadlock", "raise")
    assert r.returncode == 0, r.explain()
    assert r.stdout.splitlines()[-1] == "all threads ended", r.explain()
    took = [ln for ln in r.stdout.splitlines() if ln.endswith("took both")]
    assert len(took) == 1, r.explain()
    errors = re.findall(r"^lockwatch\.errors\.DeadlockError: deadlock detected by lockwatch", r.stderr, re.M)
    assert len(errors) == 1, r.stderr
    died = re.findall(r"^Exception in thread (\w+):", r.stderr, re.M)
    survivor = took[0].split()[0]
    assert len(died) == 1 and died[0] != survivor and {died[0], survivor} == {"first", "second"}, r.explain()
    # live once, and once more in the final report
    assert live_part(r.stderr).count("DEADLOCK DETECTED") == 1, r.stderr
    assert r.stderr.count("DEADLOCK DETECTED") == 2, r.stderr
    [d] = r.report["deadlocks"]
    assert d["policy"] == "raise" and d["victim"] == died[0]


REPORT_POLICY_MONITOR = '''

def monitor():
    """Not in the cycle: once the deadlock is reported, watch a while longer (many more watchdog
    polls) and end the process, which would otherwise wait forever."""
    t0 = time.monotonic()
    session = lockwatch.current_session()
    while not session.deadlocks and time.monotonic() - t0 < 20:
        time.sleep(0.02)
    seen = time.monotonic() - t0
    time.sleep(8 * TIMEOUT)
    say(f"DEADLOCKS {len(session.deadlocks)} {seen:.3f}")
    say("REPORT " + json.dumps(session.deadlocks))
    sys.stderr.flush()
    os._exit(0)


TIMEOUT = TIMEOUT_VALUE
threading.Thread(target=monitor, name="monitor", daemon=True).start()
'''


def test_report_policy_reports_once_and_keeps_waiting(tmp_path):
    """enable(on_deadlock="report"): the deadlock is reported once, within a few seconds, not in a
    loop; the threads stay blocked (a thread outside the cycle ends the process)."""
    shape = TWO_THREADS
    source = shape.source(f"lockwatch.enable(deadlock_timeout={TIMEOUT}, on_deadlock='report')")
    # the monitor starts before the deadlocking threads
    head, body = source.split("lock_a = threading.Lock()", 1)
    source = (head + REPORT_POLICY_MONITOR.replace("TIMEOUT_VALUE", str(TIMEOUT)).lstrip("\n")
              + "\n\nlock_a = threading.Lock()" + body)
    r = run(tmp_path, source, cli=False)
    assert r.returncode == 0, r.explain()
    assert "FINISHED" not in r.stdout and not r.lines("TOOK") and not r.lines("CAUGHT"), r.explain()
    [summary] = r.lines("DEADLOCKS ")
    _, count, seen = summary.split()
    assert count == "1", r.explain()
    assert float(seen) < TIMEOUT + SLACK, summary
    assert r.stderr.count("DEADLOCK DETECTED") == 1, r.stderr
    assert "the threads keep waiting (policy: report)" in r.stderr
    check_deadlock_text(r.stderr, shape, source)
    [line] = r.lines("REPORT ")
    [d] = json.loads(line[len("REPORT "):])
    check_deadlock(d, shape, source, "report")


def test_report_policy_under_the_cli(tmp_path):
    """`--on-deadlock report`: one report on stderr, then the threads keep waiting; the program
    ends itself after ~4 s (no report repeated meanwhile)."""
    shape = TWO_THREADS
    source = shape.source("threading.Thread(target=lambda: (time.sleep(4), os._exit(0)), "
                          "daemon=True, name='ender').start()")
    r = run(tmp_path, source, "--deadlock-timeout", str(TIMEOUT), "--on-deadlock", "report")
    assert r.returncode == 0, r.explain()
    assert "FINISHED" not in r.stdout and not r.lines("TOOK"), r.explain()
    assert r.stderr.count("DEADLOCK DETECTED") == 1, r.stderr
    assert "the threads keep waiting (policy: report)" in r.stderr
    check_deadlock_text(r.stderr, shape, source)


# -- 3: detection time -----------------------------------------------------------------------------
@pytest.mark.parametrize("timeout", [TIMEOUT, 1.5])
def test_detection_comes_after_the_timeout_and_within_a_few_seconds(tmp_path, timeout):
    """From the barrier to the DeadlockError: at least the timeout (the watchdog honours it), at
    most a few seconds more (a bound on detection latency, not a benchmark)."""
    source = TWO_THREADS.source(f"lockwatch.enable(deadlock_timeout={timeout}, on_deadlock='raise', "
                                "report_at_exit=False)")
    r = run(tmp_path, source, cli=False)
    assert r.returncode == 0, r.explain()
    [caught] = r.lines("CAUGHT ")
    elapsed = float(caught.split()[2])
    assert timeout - 0.02 <= elapsed < timeout + SLACK, caught
    data = json.loads(r.lines("REPORT ")[0][len("REPORT "):])
    assert data["timeout_s"] == timeout
    assert all(t["waiting_s"] >= timeout - 0.02 for t in data["threads"]), data


# -- 4: no false alarms ----------------------------------------------------------------------------
def assert_no_deadlock(r: Result) -> None:
    assert r.returncode == 0, r.explain()
    assert "DEADLOCK" not in r.stderr and "DeadlockError" not in r.stderr, r.stderr
    assert r.report is not None and r.report["deadlocks"] == [], r.explain()
    assert r.stdout.rstrip().endswith("FINISHED"), r.explain()


def test_no_false_alarm_long_hold_that_makes_progress(tmp_path):
    """A thread holds a lock for 4x the timeout (sleeping in small steps) while another waits for
    it, and a third waits for a lock the waiter holds: a chain, not a cycle. No deadlock."""
    source = f'''
    import threading
    import time

    busy = threading.Lock()
    mine = threading.Lock()
    started = threading.Event()
    has_mine = threading.Event()
    steps = []


    def slow():
        with busy:
            started.set()
            end = time.monotonic() + {4 * TIMEOUT}
            while time.monotonic() < end:
                time.sleep(0.02)
                steps.append(1)


    def waiter():
        with mine:
            has_mine.set()
            started.wait()
            time.sleep(0.1)  # waiter_of_waiter queues first: the chain is seen from its far end
            with busy:
                pass


    def waiter_of_waiter():
        has_mine.wait()
        with mine:
            pass


    threads = [threading.Thread(target=f, name=f.__name__) for f in (slow, waiter, waiter_of_waiter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("steps", len(steps) > 10)
    print("FINISHED")
    '''
    r = run(tmp_path, source, "--deadlock-timeout", str(TIMEOUT))  # --on-deadlock exit: 87 on a false alarm
    assert_no_deadlock(r)
    assert "steps True" in r.stdout
    assert r.seconds >= 4 * TIMEOUT


def test_no_false_alarm_hot_lock_with_a_queue(tmp_path):
    """8 threads queue on one hot lock held for ~3x the timeout, each holding a lock of its own
    meanwhile, then take it in turn (several times each). Long waits, no cycle: no deadlock."""
    source = f'''
    import threading
    import time

    hot = threading.Lock()
    own = [threading.Lock() for _ in range(8)]
    queued = threading.Barrier(9)
    count = [0]


    def worker(i):
        with own[i]:
            queued.wait()
            for _ in range(3):
                with hot:
                    count[0] += 1
                    time.sleep(0.005)


    threads = [threading.Thread(target=worker, args=(i,), name=f"worker-{{i}}") for i in range(8)]
    with hot:
        for t in threads:
            t.start()
        queued.wait()
        end = time.monotonic() + {3 * TIMEOUT}
        while time.monotonic() < end:
            time.sleep(0.02)
    for t in threads:
        t.join()
    print("count", count[0])
    print("FINISHED")
    '''
    r = run(tmp_path, source, "--deadlock-timeout", str(TIMEOUT))
    assert_no_deadlock(r)
    assert "count 24" in r.stdout
    [hot] = [lk for lk in r.report["locks"] if lk["name"] == "hot"]
    assert hot["wait"]["max"] >= 2 * TIMEOUT, hot  # the queue really waited past the timeout


def test_no_false_alarm_timed_acquire_in_a_would_be_cycle(tmp_path):
    """first holds A and waits for B with acquire(timeout=2); second holds B and waits for A
    without a timeout. A cycle of waits, but the timed one ends by itself: not a deadlock."""
    source = '''
    import sys
    import threading

    lock_a = threading.Lock()
    lock_b = threading.Lock()
    barrier = threading.Barrier(2)


    def first():
        with lock_a:
            barrier.wait()
            got = lock_b.acquire(timeout=2)
            sys.stdout.write(f"first got lock_b: {got}\\n")
            if got:
                lock_b.release()


    def second():
        with lock_b:
            barrier.wait()
            with lock_a:
                sys.stdout.write("second got lock_a\\n")


    threads = [threading.Thread(target=first, name="first"),
               threading.Thread(target=second, name="second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("FINISHED")
    '''
    r = run(tmp_path, source, "--deadlock-timeout", str(TIMEOUT))
    assert_no_deadlock(r)
    assert "first got lock_b: False" in r.stdout and "second got lock_a" in r.stdout
    assert r.seconds >= 2


# -- 5: defaults except the timeout ------------------------------------------------------------
def test_deadlocked_program_ends_by_itself_under_the_cli_defaults(tmp_path):
    """Only --deadlock-timeout given (policy exit is the CLI's default): a deadlocked program
    ends by itself with the report and status 87, instead of hanging."""
    source = '''
    import threading

    class Account:
        def __init__(self, name, balance):
            self.name = name
            self.balance = balance
            self.lock = threading.Lock()

    def transfer(src, dst, amount, barrier):
        with src.lock:
            barrier.wait()
            with dst.lock:
                src.balance -= amount
                dst.balance += amount

    alice, bob = Account("alice", 100), Account("bob", 100)
    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=transfer, args=(alice, bob, 10, barrier), name="alice-to-bob"),
               threading.Thread(target=transfer, args=(bob, alice, 20, barrier), name="bob-to-alice")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("FINISHED")
    '''
    (tmp_path / "prog.py").write_text(textwrap.dedent(source))
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "lockwatch", "--deadlock-timeout", str(TIMEOUT), "prog.py"],
                          cwd=tmp_path, env=child_env(PYTHONUNBUFFERED="1"), capture_output=True, text=True, timeout=60)
    seconds = time.monotonic() - t0
    assert proc.returncode == EXIT_DEADLOCK, (proc.stdout, proc.stderr)
    assert "FINISHED" not in proc.stdout
    assert proc.stderr.count("DEADLOCK DETECTED") == 1, proc.stderr
    assert "thread 'alice-to-bob' waits for" in proc.stderr and "thread 'bob-to-alice' waits for" in proc.stderr
    assert "blocked by thread 'bob-to-alice'" in proc.stderr and "blocked by thread 'alice-to-bob'" in proc.stderr
    assert "Potential deadlock 1 of " in proc.stderr
    assert seconds < 30, seconds


def test_deadlock_timeout_zero_switches_the_watchdog_off(tmp_path):
    """--deadlock-timeout 0: no watchdog, so the deadlocked program just hangs (we kill it)."""
    (tmp_path / "prog.py").write_text(TWO_THREADS.source())
    proc = subprocess.Popen([sys.executable, "-m", "lockwatch", "--deadlock-timeout", "0", "prog.py"],
                            cwd=tmp_path, env=child_env(PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        out, err = proc.communicate(timeout=3)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        hung = True
    else:
        hung = False
    assert hung, (proc.returncode, out, err)
    assert "DEADLOCK" not in err and "CAUGHT" not in out


# -- 6: the pytest plugin --------------------------------------------------------------------------
DEADLOCKING_TEST = """
    import threading

    lock_a = threading.Lock()
    lock_b = threading.Lock()


    def test_abba():
        barrier = threading.Barrier(2)

        def helper():
            with lock_b:
                barrier.wait()
                with lock_a:
                    pass

        t = threading.Thread(target=helper, name="helper")
        t.start()
        try:
            with lock_a:
                barrier.wait()
                with lock_b:
                    pass
        finally:
            t.join()


    def test_after_the_deadlock():
        assert lock_a.acquire(blocking=False) and lock_b.acquire(blocking=False)
        lock_a.release()
        lock_b.release()
"""


def test_pytest_deadlocking_test_fails_and_the_suite_goes_on(pytester):
    """`pytest --lockwatch --lockwatch-deadlock-timeout 0.5` (policy raise): the deadlocking test
    fails with DeadlockError (raised in its main thread), its locks end free, and the tests after
    it, in its module and in another, run and pass."""
    pytester.makepyfile(test_deadlock=DEADLOCKING_TEST,
                        test_later="def test_later():\n    assert True\n")
    t0 = time.monotonic()
    result = pytester.runpytest_subprocess("--lockwatch", "--lockwatch-deadlock-timeout", str(TIMEOUT),
                                           "-p", "no:cacheprovider", timeout=120)
    seconds = time.monotonic() - t0
    out = result.stdout.str()
    result.assert_outcomes(passed=2, failed=1)
    assert re.search(r"^FAILED test_deadlock\.py::test_abba - lockwatch\.errors\.DeadlockError", out, re.M), out
    assert "lockwatch.errors.DeadlockError: deadlock detected by lockwatch" in out, out
    assert "thread 'MainThread' waits for lock_b held by 'helper'" in out, out
    assert "DEADLOCK DETECTED" in result.stderr.str() + out
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert seconds < 60, seconds


def test_pytest_exit_policy_ends_the_run(pytester):
    """`--lockwatch-on-deadlock exit`: the run ends with status 87 and the deadlock report reaches
    the terminal (not the test's captured output, which os._exit would lose)."""
    pytester.makepyfile(test_deadlock=DEADLOCKING_TEST)
    result = pytester.runpytest_subprocess("--lockwatch", "--lockwatch-deadlock-timeout", str(TIMEOUT),
                                           "--lockwatch-on-deadlock", "exit", "-p", "no:cacheprovider",
                                           timeout=120)
    assert result.ret == EXIT_DEADLOCK, result.stdout.str() + result.stderr.str()
    err = result.stderr.str()
    assert err.count("DEADLOCK DETECTED") == 1, err
    assert "thread 'MainThread' waits for lock_b" in err and "thread 'helper' waits for lock_a" in err


@pytest.mark.parametrize("option, value", [("--lockwatch-deadlock-timeout", "abc"),
                                           ("--lockwatch-deadlock-timeout", "-1"),
                                           ("--lockwatch-on-deadlock", "bogus")])
def test_pytest_bad_watchdog_option_is_a_usage_error(pytester, option, value):
    """A bad --lockwatch-deadlock-timeout / --lockwatch-on-deadlock: pytest's usage error (4)."""
    pytester.makepyfile(test_ok="def test_ok():\n    assert True\n")
    result = pytester.runpytest_subprocess("--lockwatch", option, value, "-p", "no:cacheprovider", timeout=120)
    assert result.ret == pytest.ExitCode.USAGE_ERROR == 4
    err = result.stderr.str()
    assert option in err and repr(value) in err, err
    assert "Traceback" not in err, err


# -- 7: alerts -------------------------------------------------------------------------------------
def test_warn_hold_alerts_once_with_the_holders_stack(tmp_path):
    """--warn-hold 0.3, a lock held 1 s: one long-hold alert while it is held, naming the lock,
    the holder and its stack (in the JSON too). A Condition waited on for 1 s is not held."""
    source = '''
    import sys
    import threading
    import time

    big_lock = threading.Lock()
    quick_lock = threading.Lock()
    cond = threading.Condition()


    def hold_it():
        with big_lock:  # holder takes big_lock
            for _ in range(20):
                time.sleep(0.05)  # holder still holds big_lock
        sys.stderr.write("HOLDER RELEASED\\n")


    def quick():
        for _ in range(40):
            with quick_lock:
                time.sleep(0.001)


    def waits_on_cond():
        with cond:
            cond.wait(1.0)  # releases cond while waiting: not a hold


    threads = [threading.Thread(target=hold_it, name="holder"),
               threading.Thread(target=quick, name="quick"),
               threading.Thread(target=waits_on_cond, name="condwaiter")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("FINISHED")
    '''
    r = run(tmp_path, source, "--warn-hold", "0.3")
    assert r.returncode == 0, r.explain()
    src = r.source
    [alert] = r.report["alerts"]
    assert alert["kind"] == "long-hold"
    assert alert["lock"]["name"] == "big_lock" and alert["lock"]["kind"] == "Lock"
    assert alert["lock"]["site"].endswith(f"prog.py:{line_in(src, 'big_lock = threading.Lock()')}")
    assert 0.3 <= alert["seconds"] < 1.0, alert
    assert alert["thread"] == "holder"
    assert alert["taken_at"].endswith(f"prog.py:{line_in(src, '# holder takes big_lock')} in hold_it")
    assert alert["stack"][-1].endswith(f"prog.py:{line_in(src, '# holder still holds big_lock')} in hold_it"), alert
    live = live_part(r.stderr)
    assert live.count("has been held for") == 1, r.stderr
    assert re.search(r"^lockwatch: big_lock \(Lock, created at prog\.py:\d+\) has been held for "
                     r"\d+\.\d s by thread 'holder' \(still held; taken at prog\.py:\d+ in hold_it\)$",
                     live, re.M), live
    assert f"    prog.py:{line_in(src, '# holder still holds big_lock')} in hold_it" in live
    assert live.index("has been held for") < live.index("HOLDER RELEASED"), live  # while it happened
    assert "waited" not in live and "DEADLOCK" not in r.stderr


def test_warn_wait_alerts_once_naming_the_holder(tmp_path):
    """--warn-wait 0.3, a thread waiting 1 s for a lock: one long-wait alert while it waits,
    naming the lock, the waiter, the holder and both stacks (in the JSON too)."""
    source = '''
    import sys
    import threading
    import time

    busy_lock = threading.Lock()
    cond = threading.Condition()
    started = threading.Event()


    def holder():
        with busy_lock:
            started.set()
            time.sleep(1.0)  # holder sleeps with busy_lock
        sys.stderr.write("HOLDER RELEASED\\n")


    def waiter():
        started.wait()
        with busy_lock:  # waiter waits here
            pass


    def waits_on_cond():
        with cond:
            cond.wait(1.0)  # waiting for a notify, not for a lock


    threads = [threading.Thread(target=holder, name="holder"),
               threading.Thread(target=waiter, name="waiter"),
               threading.Thread(target=waits_on_cond, name="condwaiter")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("FINISHED")
    '''
    r = run(tmp_path, source, "--warn-wait", "0.3")
    assert r.returncode == 0, r.explain()
    src = r.source
    [alert] = r.report["alerts"]
    assert alert["kind"] == "long-wait"
    assert alert["lock"]["name"] == "busy_lock"
    assert alert["lock"]["site"].endswith(f"prog.py:{line_in(src, 'busy_lock = threading.Lock()')}")
    assert alert["thread"] == "waiter" and alert["holder"] == "holder", alert
    assert 0.3 <= alert["seconds"] < 1.0, alert
    assert alert["stack"][-1].endswith(f"prog.py:{line_in(src, '# waiter waits here')} in waiter"), alert
    assert alert["holder_stack"][-1].endswith(f"prog.py:{line_in(src, '# holder sleeps with busy_lock')} in holder"), alert
    live = live_part(r.stderr)
    assert live.count("has waited") == 1, r.stderr
    assert re.search(r"^lockwatch: thread 'waiter' has waited \d+\.\d s for busy_lock \(Lock, created at "
                     r"prog\.py:\d+\), held by thread 'holder'$", live, re.M), live
    assert "  holder's stack:" in live
    assert live.index("has waited") < live.index("HOLDER RELEASED"), live
    assert "has been held for" not in live and "DEADLOCK" not in r.stderr


# -- 8: bad policies -------------------------------------------------------------------------------
def test_enable_rejects_a_bad_policy_and_patches_nothing(tmp_path):
    """enable(on_deadlock="bogus") (and a bad timeout or threshold) raises ValueError before it
    patches anything or makes a session."""
    source = '''
    import threading
    import lockwatch

    original = threading.Lock
    for kwargs in ({"on_deadlock": "bogus"}, {"deadlock_timeout": -1}, {"warn_hold": "x"}, {"warn_wait": -0.5}):
        try:
            lockwatch.enable(**kwargs)
        except ValueError as exc:
            print("ValueError", sorted(kwargs)[0], "|", exc)
        else:
            print("accepted", kwargs)
    print("unpatched", threading.Lock is original, lockwatch.current_session() is None)
    '''
    r = run(tmp_path, source, cli=False)
    assert r.returncode == 0, r.explain()
    lines = r.stdout.splitlines()
    assert [ln.split(" |")[0] for ln in lines[:4]] == [
        "ValueError on_deadlock", "ValueError deadlock_timeout", "ValueError warn_hold", "ValueError warn_wait"], r.stdout
    assert "'bogus'" in lines[0] and "exit" in lines[0] and "raise" in lines[0] and "report" in lines[0]
    assert lines[4] == "unpatched True True"


@pytest.mark.parametrize("option, value", [("--on-deadlock", "bogus"), ("--deadlock-timeout", "abc"),
                                           ("--deadlock-timeout", "-1"), ("--warn-hold", "0"),
                                           ("--warn-wait", "soon")])
def test_cli_bad_watchdog_option_is_one_line_exit_2(tmp_path, option, value):
    """`--on-deadlock bogus` (and bad watchdog numbers): one line on stderr, status 2, the program
    never runs."""
    (tmp_path / "prog.py").write_text("print('RAN')\n")
    proc = subprocess.run([sys.executable, "-m", "lockwatch", option, value, "prog.py"], cwd=tmp_path,
                          env=child_env(PYTHONUNBUFFERED="1"), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == "", proc.stdout  # the program did not run
    err = proc.stderr.splitlines()
    assert len(err) == 1, proc.stderr
    assert option in err[0] and value in err[0], err


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_watchdog_thread_starts_at_the_first_contended_wait(tmp_path):
    """Under the CLI (watchdog on by default) a program that never waits for a lock has no thread
    but its own (the count os.fork() warns about on 3.12+); a wait longer than the watchdog's
    polling interval starts its thread, which is not a threading.Thread (not in
    threading.enumerate()), and which ends once no thread waits. `--warn-hold` (long holds need no waiter) starts it at once."""
    source = '''
    import os
    import threading

    def count():
        return len(os.listdir("/proc/self/task")), threading.active_count()

    lock = threading.Lock()
    with lock:
        pass
    print("uncontended", *count())
    lock.acquire()
    t = threading.Thread(target=lambda: (lock.acquire(), lock.release()), name="waiter")
    t.start()
    while count()[0] < 3:  # main, waiter, watchdog
        threading.Event().wait(0.01)
    print("contended", *count())
    lock.release()
    t.join()
    for _ in range(1000):  # the watchdog's thread ends within one interval of the last wait
        if count()[0] == 1:
            break
        threading.Event().wait(0.01)
    print("after", *count())
    '''
    r = run(tmp_path, source)
    assert r.returncode == 0, r.explain()
    assert r.lines("uncontended") == ["uncontended 1 1"], r.explain()
    assert r.lines("contended") == ["contended 3 2"], r.explain()
    assert r.lines("after") == ["after 1 1"], r.explain()  # no waiter left: the watchdog ended
    r = run(tmp_path, "import os\nprint('threads', len(os.listdir('/proc/self/task')))\n", "--warn-hold", "5")
    assert r.returncode == 0, r.explain()
    assert r.lines("threads") == ["threads 2"], r.explain()


def test_a_deadlock_after_the_watchdog_went_idle_is_still_detected(tmp_path):
    """The watchdog's thread ends when no thread waits; a later deadlock starts it again."""
    source = '''
    import os
    import threading

    a, b = threading.Lock(), threading.Lock()
    a.acquire()
    t = threading.Thread(target=lambda: (a.acquire(), a.release()))
    t.start()
    while len(os.listdir("/proc/self/task")) < 3:
        threading.Event().wait(0.01)
    a.release()
    t.join()
    while len(os.listdir("/proc/self/task")) > 1:
        threading.Event().wait(0.01)
    print("idle", flush=True)
    barrier = threading.Barrier(2)

    def one(first, second):
        with first:
            barrier.wait()
            with second:
                pass

    threading.Thread(target=one, args=(a, b), name="one", daemon=True).start()
    one(b, a)
    '''
    if not os.path.isdir("/proc/self/task"):
        pytest.skip("counts threads in /proc")
    r = run(tmp_path, source, "--deadlock-timeout", str(TIMEOUT), timeout=120)
    assert r.returncode == EXIT_DEADLOCK, r.explain()
    assert r.lines("idle") == ["idle"], r.explain()
    assert "DEADLOCK DETECTED: 2 threads" in r.stderr, r.explain()
    assert r.report is not None and len(r.report["deadlocks"]) == 1, r.explain()


def test_timeouts_under_the_watchdog_mean_what_they_mean_without_it(tmp_path):
    """With the watchdog on, a contended wait goes through it: a Semaphore's timeout=-1 is a
    timeout already over (False at once, as threading's own), a Lock's is no timeout, and a
    timed wait longer than the watchdog's polling interval still ends at its timeout."""
    source = '''
    import threading
    import time

    sem = threading.Semaphore(0)
    print("sem -1", sem.acquire(timeout=-1))
    lock = threading.Lock()
    lock.acquire()
    threading.Timer(1.0, lock.release).start()
    print("lock -1", lock.acquire(timeout=-1))
    t0 = time.monotonic()
    print("sem 0.8", sem.acquire(timeout=0.8), time.monotonic() - t0 >= 0.8)
    t0 = time.monotonic()
    print("lock 0.8", lock.acquire(timeout=0.8), time.monotonic() - t0 >= 0.8)
    '''
    r = run(tmp_path, source, "--deadlock-timeout", "0.4", timeout=120)  # polls every 0.1 s
    assert r.returncode == 0, r.explain()
    assert r.stdout.splitlines() == ["sem -1 False", "lock -1 True", "sem 0.8 False True",
                                     "lock 0.8 False True"], r.explain()


SELF_DEADLOCK = '''
import threading

import lockwatch

ENABLE
lock = threading.Lock()


def handler():
    with lock:  # the outer hold
        helper()


def helper():
    try:
        with lock:  # taken again by its holder
            print("never", flush=True)
    except lockwatch.DeadlockError as exc:
        print("DeadlockError:", exc, flush=True)


OTHERS
handler()
print("locked after:", lock.locked(), flush=True)
'''


def self_deadlock(others: str = "", enable: str = "") -> str:
    return SELF_DEADLOCK.replace("ENABLE", enable).replace("OTHERS", others)


def test_a_lock_taken_again_by_its_only_thread_is_a_deadlock(tmp_path):
    """The commonest Python deadlock: a method holding a Lock calls another that takes it again.
    With no other thread to release it, that is reported once the timeout passes (exit: 87)."""
    r = run(tmp_path, self_deadlock(), "--deadlock-timeout", str(TIMEOUT), timeout=120)
    assert r.returncode == EXIT_DEADLOCK, r.explain()
    assert "DEADLOCK DETECTED: thread 'MainThread' has waited more than 0.5 s for a lock it holds itself" in r.stderr, r.explain()
    [d] = r.report["deadlocks"]
    [t] = d["threads"]
    assert (t["name"], t["blocked_by"], t["waiting_for"]["name"]) == ("MainThread", "MainThread", "lock")
    assert [h["name"] for h in t["holds"]] == ["lock"]
    assert t["stack"][-1].endswith(f":{line_in(r.source, '# taken again by its holder')} in helper")


def test_under_raise_the_thread_gets_the_error_and_the_program_goes_on(tmp_path):
    r = run(tmp_path, self_deadlock(enable=f'lockwatch.enable(deadlock_timeout={TIMEOUT}, on_deadlock="raise")'),
            cli=False, timeout=120)
    assert r.returncode == 0, r.explain()
    [err] = r.lines("DeadlockError:")
    assert "thread 'MainThread' waits for lock, which it holds itself" in err, err
    assert r.lines("locked after:") == ["locked after: False"], r.explain()


def test_a_lock_handed_to_another_thread_to_release_is_not_a_deadlock(tmp_path):
    """A Lock may be released by another thread: waiting for it while holding it is a hand-off
    while another thread can still run, even for much longer than the timeout."""
    source = f'''
    import threading
    import time

    lock = threading.Lock()
    lock.acquire()
    threading.Thread(target=lambda: (time.sleep(8 * {TIMEOUT}), lock.release()), name="releaser").start()
    lock.acquire()  # taken again: the releaser hands it over
    print("handed over", flush=True)
    lock.release()
    '''
    r = run(tmp_path, source, "--deadlock-timeout", str(TIMEOUT), timeout=120)
    assert r.returncode == 0, r.explain()
    assert r.lines("handed over") == ["handed over"], r.explain()
    assert "DEADLOCK" not in r.stderr and r.report["deadlocks"] == [], r.explain()


def test_a_self_deadlock_with_every_other_thread_stuck_behind_it_is_reported(tmp_path):
    """Another thread that waits for the same lock cannot release it either."""
    others = '''
import time
def other():
    time.sleep(0.1)
    with lock:
        pass
threading.Thread(target=other, name="other", daemon=True).start()
'''
    r = run(tmp_path, self_deadlock(others=others), "--deadlock-timeout", str(TIMEOUT), timeout=120)
    assert r.returncode == EXIT_DEADLOCK, r.explain()
    [d] = r.report["deadlocks"]
    assert [t["name"] for t in d["threads"]] == ["MainThread"]
