"""The watchdog's policies: "exit" ends the process with status 87, "raise" breaks the cycle with
a DeadlockError, "report" reports once and keeps waiting; when detection comes, no false alarms, the
defaults, the pytest plugin, and bad policies rejected."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time

import pytest
from scenarios import (
    EXIT_DEADLOCK,
    SLACK,
    TIMEOUT,
    TWO_THREADS,
    assert_no_deadlock,
    check_deadlock,
    check_deadlock_text,
    live_part,
    run,
)
from support import child_env, lockwatch

pytestmark = pytest.mark.timeout(300)


# -- each policy, its own way -------------------------------------------------------------------
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


# -- detection time -----------------------------------------------------------------------------
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


# -- no false alarms ----------------------------------------------------------------------------

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


# -- defaults except the timeout ------------------------------------------------------------
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
    proc = lockwatch("--deadlock-timeout", str(TIMEOUT), "prog.py", cwd=tmp_path,
                     env=child_env(PYTHONUNBUFFERED="1"), timeout=60)
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
                            cwd=tmp_path, env=child_env(PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
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


# -- the pytest plugin --------------------------------------------------------------------------
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


# -- bad policies -------------------------------------------------------------------------------
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
    assert [ln.split(" |")[0] for ln in lines[:4]] == ["ValueError on_deadlock", "ValueError deadlock_timeout",
                                                       "ValueError warn_hold", "ValueError warn_wait"], r.stdout
    assert "'bogus'" in lines[0] and "exit" in lines[0] and "raise" in lines[0] and "report" in lines[0]
    assert lines[4] == "unpatched True True"


@pytest.mark.parametrize("option, value", [("--on-deadlock", "bogus"), ("--deadlock-timeout", "abc"),
                                           ("--deadlock-timeout", "-1"), ("--warn-hold", "0"),
                                           ("--warn-wait", "soon")])
def test_cli_bad_watchdog_option_is_one_line_exit_2(tmp_path, option, value):
    """`--on-deadlock bogus` (and bad watchdog numbers): one line on stderr, status 2, the program
    never runs."""
    (tmp_path / "prog.py").write_text("print('RAN')\n")
    proc = lockwatch(option, value, "prog.py", cwd=tmp_path, env=child_env(PYTHONUNBUFFERED="1"), timeout=60)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == "", proc.stdout  # the program did not run
    err = proc.stderr.splitlines()
    assert len(err) == 1, proc.stderr
    assert option in err[0] and value in err[0], err
