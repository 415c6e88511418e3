"""The watchdog's own thread: started only by a contended wait, awake again after going idle, and
timeouts that mean under it what they mean without it."""
from __future__ import annotations

import os
import textwrap

import pytest
from scenarios import EXIT_DEADLOCK, TIMEOUT, run
from support import python

pytestmark = pytest.mark.timeout(300)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_watchdog_thread_starts_at_the_first_contended_wait(tmp_path):
    """Under the CLI (watchdog on by default) a program that never waits for a lock has no thread
    but its own (the count os.fork() warns about on 3.12+); a wait longer than the watchdog's
    polling interval starts its thread, which is not a threading.Thread (not in
    threading.enumerate()), and which ends once no thread waits. `--warn-hold` (long holds need no
    waiter) starts it at once."""
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


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads the thread's signal mask in /proc")
def test_watchdog_thread_takes_no_signal_of_the_program(tmp_path):
    """The kernel hands a process-directed signal (SIGTERM, Ctrl-C's SIGINT) to any thread that
    does not block it: one handed to lockwatch's thread would not interrupt the main thread's
    sleep or wait. The watchdog's thread blocks them all, and the thread that started it keeps
    its own mask."""
    source = '''
    import signal, threading, time
    import lockwatch

    session = lockwatch.enable(deadlock_timeout=5, report_at_exit=False)
    lock = threading.Lock()
    lock.acquire()
    waiter = threading.Thread(target=lambda: (lock.acquire(), lock.release()), name="waiter")
    waiter.start()
    deadline = time.monotonic() + 60
    while session._watchdog.native_id is None and time.monotonic() < deadline:
        time.sleep(0.01)
    def blocked(tid):
        with open(f"/proc/self/task/{tid}/status") as f:
            mask = int(next(line for line in f if line.startswith("SigBlk:")).split()[1], 16)
        return [s.name for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1,
                                 signal.SIGALRM, signal.SIGCHLD) if mask >> (s - 1) & 1]
    print("watchdog", *blocked(session._watchdog.native_id))
    print("main", *blocked(threading.get_native_id()), "end")
    lock.release()
    waiter.join()
    '''
    (tmp_path / "prog.py").write_text(textwrap.dedent(source))
    r = python("prog.py", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["watchdog SIGINT SIGTERM SIGHUP SIGUSR1 SIGALRM SIGCHLD", "main end"]


def test_watchdog_thread_started_by_a_short_untimed_wait_ends_within_cpythons_cleanup_time(tmp_path):
    """A short untimed Event.wait() (test_threading's TimerTests) leaves no thread of lockwatch's
    behind within the second CPython 3.11+'s threading_cleanup() gives a test's threads (counting
    them with _thread._count(), which counts the watchdog's bare thread too): when the watchdog's
    thread ended a polling interval after such a wait, TimerTests failed 'env changed'."""
    source = '''
    import _thread
    import threading
    import time

    before = _thread._count()
    deadline = time.monotonic() + 1.0  # threading_cleanup()'s budget, from the test's start here
    ready = threading.Event()
    timer = threading.Timer(0.01, ready.set)
    timer.start()
    ready.wait()
    timer.join()
    while _thread._count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    print("left", _thread._count() - before)
    '''
    r = run(tmp_path, source)
    assert r.returncode == 0, r.explain()
    assert r.lines("left") == ["left 0"], r.explain()


def test_watchdog_thread_ends_soon_after_a_lock_waiter_leaves_right_after_another_wait(tmp_path):
    """The watchdog's thread, having seen a thread waiting for a lock, sleeps a whole polling
    interval (1 s here); when that waiter leaves it ends, also when another wait ended just
    before (a join), not left asleep for the rest of the interval (CPython's process-pool tests,
    whose shutdown joins threads while others wait for locks, failed 'env changed':
    threading_cleanup() gives threads 1 s)."""
    source = '''
    import _thread
    import threading
    import time

    before = _thread._count()
    deadline = time.monotonic() + 1.0  # threading_cleanup()'s budget, from the test's start here
    lock = threading.Lock()
    started = threading.Event()

    def holder():
        with lock:
            time.sleep(0.05)  # main blocks in started.wait() meanwhile
            started.set()
            time.sleep(0.3)  # main waits for the lock meanwhile; the watchdog looks and sees it
            t = threading.Thread(target=time.sleep, args=(0.01,))
            t.start()
            t.join()  # an untimed wait that ends just before the lock is released

    h = threading.Thread(target=holder)
    h.start()
    started.wait()  # an untimed wait: starts the watchdog's thread
    with lock:
        pass
    h.join()
    while _thread._count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    print("left", _thread._count() - before)
    '''
    r = run(tmp_path, source, "--deadlock-timeout", "8")
    assert r.returncode == 0, r.explain()
    assert r.lines("left") == ["left 0"], r.explain()


# Each: a setup line, the wait main makes (untimed), and what the helper thread does to end it.
_WAITS = {
    "Event.wait": ("e = threading.Event()", "e.wait()", "e.set()"),
    "Condition.wait": ("c = threading.Condition()", "with c:\n    c.wait()", "with c:\n        c.notify()"),
    "Queue.get": ("import queue\nq = queue.Queue()", "q.get()", "q.put(1)"),
    "Queue.join": ("import queue\nq = queue.Queue()\nq.put(1)", "q.join()", "q.get(); q.task_done()"),
    "Future.result": ("from concurrent.futures import Future\nf = Future()", "f.result()", "f.set_result(1)"),
    "futures.wait": ("from concurrent.futures import Future, wait\nf = Future()", "wait([f])", "f.set_result(1)"),
    "Lock.acquire": ("L = threading.Lock()\nL.acquire()", "L.acquire()", "L.release()"),
    "Barrier.wait": ("b = threading.Barrier(2)", "b.wait()", "b.wait()"),
}


@pytest.mark.parametrize("what", sorted(_WAITS))
def test_watchdog_thread_is_gone_when_the_wait_that_started_it_returns(tmp_path, what):
    """CPython 3.9 and 3.10's threading_cleanup() counts threads with _thread._count() right after
    a test and reports any extra one at once ('env changed'; 3.11+ gives a second). A wait long
    enough to start the watchdog's thread (one slice: 0.25 s here) must not leave it running
    once the wait has returned and the program's own threads are joined."""
    setup, wait, wake = _WAITS[what]
    source = f'''
    import _thread
    import threading
    import time

    before = _thread._count()
    {textwrap.indent(setup, "    ").lstrip()}

    def helper():
        deadline = time.monotonic() + 30
        while _thread._count() < before + 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # until the watchdog's thread runs (beside this one)
        print("during", _thread._count() - before, flush=True)
        {textwrap.indent(wake, "        ").lstrip()}

    t = threading.Thread(target=helper)
    t.start()
    {textwrap.indent(wait, "    ").lstrip()}
    t.join()
    print("after", _thread._count() - before)
    '''
    r = run(tmp_path, source, "--deadlock-timeout", "1")
    assert r.returncode == 0, r.explain()
    assert r.lines("during") == ["during 2"], r.explain()  # the helper and the watchdog's thread
    assert r.lines("after") == ["after 0"], r.explain()


def test_the_watchdogs_looks_keep_no_thread_alive(tmp_path):
    """The watchdog looks at every thread's stack while a wait is older than the timeout (here a
    join). What it looked at must not outlive the look: a reference cycle through its own frame
    kept the joined thread's Thread object alive until the garbage collector ran, and CPython
    3.9/3.10's threading_cleanup() reported it as a dangling thread (test_concurrent_futures
    'env changed'). The collector is off here, as it may not run before such a check."""
    source = '''
    import gc
    import threading
    import time

    gc.disable()
    before = len(threading._dangling)
    t = threading.Thread(target=time.sleep, args=(1.5,))
    t.start()
    t.join()
    del t
    print("dangling", len(threading._dangling) - before)
    '''
    r = run(tmp_path, source, "--deadlock-timeout", "0.5")
    assert r.returncode == 0, r.explain()
    assert r.lines("dangling") == ["dangling 0"], r.explain()
