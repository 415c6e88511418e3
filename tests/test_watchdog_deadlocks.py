"""Real deadlocks the watchdog names: cycles of two and three threads, of RLocks, through a
Condition, a Semaphore and the main thread, and a lock taken again by its only thread."""
from __future__ import annotations

import json
import re

import pytest
from scenarios import (
    CONDITION,
    ENABLE_RAISE,
    EXIT_DEADLOCK,
    SHAPES,
    SLACK,
    TIMEOUT,
    Shape,
    assert_no_deadlock,
    check_deadlock,
    check_deadlock_text,
    run,
)
from support import line_in

pytestmark = pytest.mark.timeout(300)


# -- the shapes of a cycle, under each policy ---------------------------------------------
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


# -- a lock taken again by its own thread -----------------------------------------------------------
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
    says = "DEADLOCK DETECTED: thread 'MainThread' has waited more than 0.5 s for a lock it holds itself"
    assert says in r.stderr, r.explain()
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
