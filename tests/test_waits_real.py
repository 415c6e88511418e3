"""Real deadlocks through waits (join, Event, Condition, Barrier, Queue, Future, a starved thread
pool): found by the watchdog, reported with what each thread waits for, the process ended with
status 87 under the CLI; and no false alarm for waits that some running thread can end."""
from __future__ import annotations

import pytest
from scenarios import EXIT_DEADLOCK, SLACK, TIMEOUT, run

pytestmark = pytest.mark.timeout(300)

JOIN = """
import threading, time
L = threading.Lock()
def worker():
    time.sleep(0.3)
    with L:  # never: main holds L until the worker has ended
        pass
t = threading.Thread(target=worker, name="worker")
t.start()
with L:
    t.join()
print("FINISHED")
"""

POOL_1 = """
from concurrent.futures import ThreadPoolExecutor
pool = ThreadPoolExecutor(max_workers=1)
def sub():
    return 1
def task():
    return pool.submit(sub).result()  # the only worker waits for work queued behind it
print(pool.submit(task).result())
print("FINISHED")
"""

EVENT = """
import threading, time
L = threading.Lock()
ready = threading.Event()
def setter():
    time.sleep(0.3)
    with L:
        ready.set()
t = threading.Thread(target=setter, name="setter", daemon=True)
t.start()
with L:
    ready.wait()
print("FINISHED")
"""

QUEUE = """
import threading, queue, time
L = threading.Lock()
items = queue.Queue()
def producer():
    time.sleep(0.3)
    with L:
        items.put(1)
t = threading.Thread(target=producer, name="producer", daemon=True)
t.start()
with L:
    items.get()
print("FINISHED")
"""

CONDITION = """
import threading, time
L = threading.Lock()
cond = threading.Condition()
done = []
def notifier():
    time.sleep(0.3)
    with L:
        with cond:
            done.append(1)
            cond.notify_all()
t = threading.Thread(target=notifier, name="notifier", daemon=True)
t.start()
with L:
    with cond:
        while not done:
            cond.wait()
print("FINISHED")
"""

BARRIER = """
import threading, time
L = threading.Lock()
gate = threading.Barrier(2)
def other():
    time.sleep(0.3)
    with L:
        gate.wait()
t = threading.Thread(target=other, name="other", daemon=True)
t.start()
with L:
    gate.wait()
print("FINISHED")
"""

QUEUE_JOIN = """
import threading, queue, time
L = threading.Lock()
jobs = queue.Queue()
def consumer():
    jobs.get()
    time.sleep(0.3)
    with L:
        jobs.task_done()
t = threading.Thread(target=consumer, name="consumer", daemon=True)
t.start()
jobs.put(1)
with L:
    jobs.join()
print("FINISHED")
"""

FUTURES_WAIT = """
import threading, time
from concurrent.futures import ThreadPoolExecutor, wait
L = threading.Lock()
def task():
    time.sleep(0.3)
    with L:
        return 1
pool = ThreadPoolExecutor(max_workers=2)
with L:
    fs = [pool.submit(task) for _ in range(2)]
    wait(fs)
print("FINISHED")
"""

# name: (source, {thread: (kind waited for, wait or None for a lock)}, words the text must say)
CASES = {
    "join": (JOIN, {"MainThread": ("Thread", "join"), "worker": ("Lock", None)},
             ["thread 'MainThread' waits for thread 'worker' to finish (join)", "holds L (Lock"]),
    "pool-of-1": (POOL_1, {"MainThread": ("Future", "result"), "ThreadPoolExecutor-0_0": ("Future", "result")},
                  ["is starved: all 1 of its 1 workers wait on work queued behind them",
                   "waits for the result of future of sub()"]),
    "event": (EVENT, {"MainThread": ("Event", "wait"), "setter": ("Lock", None)},
              ["thread 'MainThread' waits for Event ready to be set", "which only thread 'setter' can end"]),
    "queue": (QUEUE, {"MainThread": ("Queue", "get"), "producer": ("Lock", None)},
              ["waits to get an item from Queue items, which is empty"]),
    "condition": (CONDITION, {"MainThread": ("Condition", "wait"), "notifier": ("Lock", None)},
                  ["waits for Condition cond to be notified"]),
    "barrier": (BARRIER, {"MainThread": ("Barrier", "wait"), "other": ("Lock", None)},
                ["waits at Barrier gate for the other threads to arrive"]),
    "queue-join": (QUEUE_JOIN, {"MainThread": ("Queue", "task-join"), "consumer": ("Lock", None)},
                   ["waits for every task of Queue jobs to be done (Queue.join)"]),
    "futures-wait": (FUTURES_WAIT, {"MainThread": ("Future", "wait-all"), "ThreadPoolExecutor-0_0": ("Lock", None),
                                    "ThreadPoolExecutor-0_1": ("Lock", None)},
                     ["waits for all of 2 futures (concurrent.futures.wait)"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_real_deadlock_through_a_wait_ends_the_cli_run_with_87(tmp_path, case):
    source, threads, words = CASES[case]
    r = run(tmp_path, source, "--deadlock-timeout", str(TIMEOUT))
    assert r.returncode == EXIT_DEADLOCK, r.explain()
    assert "FINISHED" not in r.stdout, r.explain()
    assert r.report is not None, r.explain()
    [d] = r.report["deadlocks"]
    got = {t["name"]: (t["waiting_for"]["kind"], t.get("wait")) for t in d["threads"]}
    if case == "futures-wait":
        # wait(ALL_COMPLETED) cannot end as soon as one of its futures cannot: the deadlock is
        # whole with the first worker blocked on L (the second may block later)
        assert got["MainThread"] == threads["MainThread"] and len(got) >= 2, r.explain()
        assert all(got[k] == threads[k] for k in got), r.explain()
    else:
        assert got == threads, r.explain()
    for t in d["threads"]:
        assert t["stack"], t
        # found within a few seconds of the timeout (the time each thread had waited then)
        assert TIMEOUT <= t["waiting_s"] <= TIMEOUT + SLACK + 0.3, t
    for w in words:
        assert w in r.stderr, r.explain()
    assert f"the process ends now with status {EXIT_DEADLOCK}" in r.stderr


def test_a_starved_pool_names_its_size_and_queue(tmp_path):
    r = run(tmp_path, POOL_1, "--deadlock-timeout", str(TIMEOUT))
    assert r.returncode == EXIT_DEADLOCK, r.explain()
    [d] = r.report["deadlocks"]
    assert d["starvation"]["workers"] == 1 and d["starvation"]["max_workers"] == 1, d
    assert d["starvation"]["queued"] == 1 and d["starvation"]["site"].endswith("prog.py:2"), d


def test_raise_policy_breaks_a_join_in_the_main_thread(tmp_path):
    source = f"""
    import sys, threading, time, lockwatch
    lockwatch.enable(deadlock_timeout={TIMEOUT}, on_deadlock="raise", report_at_exit=False)
    L = threading.Lock()
    def worker():
        time.sleep(0.3)
        with L:
            sys.stdout.write("WORKER TOOK L\\n")
    t = threading.Thread(target=worker, name="worker")
    t.start()
    try:
        with L:
            t.join()
    except lockwatch.DeadlockError as exc:
        sys.stdout.write("CAUGHT " + exc.report["threads"][0]["wait"] + "\\n")
    t.join()
    print("FINISHED")
    """
    r = run(tmp_path, source, cli=False)
    assert r.returncode == 0, r.explain()
    assert r.lines("CAUGHT") == ["CAUGHT join"], r.explain()
    assert r.lines("WORKER TOOK L") and r.lines("FINISHED"), r.explain()


# -- no false alarm ------------------------------------------------------------------------------
# Each waits longer than the timeout, while some thread that can end the wait is running.
NO_ALARM = {
    "join while holding a lock the worker never takes": """
        import threading, time
        L = threading.Lock()
        t = threading.Thread(target=time.sleep, args=(1.5,), name="sleeper")
        t.start()
        with L:
            t.join()
        print("FINISHED")
    """,
    "producer/consumer holding no lock across get/put": """
        import threading, queue, time
        L = threading.Lock()
        items = queue.Queue(maxsize=1)
        def producer():
            for i in range(3):
                time.sleep(0.6)
                with L:
                    pass
                items.put(i)
            items.put(None)
        threading.Thread(target=producer, name="producer").start()
        while True:
            with L:
                pass
            if items.get() is None:
                break
        print("FINISHED")
    """,
    "a pool that never waits on its own futures": """
        import time
        from concurrent.futures import ThreadPoolExecutor, as_completed, wait
        with ThreadPoolExecutor(max_workers=1) as pool:
            fs = [pool.submit(time.sleep, 0.4) for _ in range(3)]
            fs[-1].result()
            wait(fs)
            list(as_completed(fs))
        print("FINISHED")
    """,
    "timed waits while the other thread waits for the lock held": """
        import threading, queue, time
        L = threading.Lock()
        ev = threading.Event()
        items = queue.Queue()
        def worker():
            with L:
                ev.set()
                items.put(1)
        t = threading.Thread(target=worker, name="worker")
        t.start()
        with L:
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                t.join(0.1)
                ev.wait(0.1)
                try:
                    items.get(timeout=0.1)
                except queue.Empty:
                    pass
        t.join()
        print("FINISHED")
    """,
    "an Event set by a signal handler, no other thread": """
        import signal, threading
        stop = threading.Event()
        signal.signal(signal.SIGALRM, lambda *a: stop.set())
        signal.setitimer(signal.ITIMER_REAL, 1.5)
        stop.wait()
        print("FINISHED")
    """,
    "a Condition notified by a thread that is busy, not blocked": """
        import threading, time
        cond = threading.Condition()
        box = []
        def busy():
            end = time.monotonic() + 1.5
            while time.monotonic() < end:
                time.sleep(0.01)
            with cond:
                box.append(1)
                cond.notify()
        threading.Thread(target=busy, name="busy").start()
        with cond:
            while not box:
                cond.wait()
        print("FINISHED")
    """,
}


@pytest.mark.parametrize("case", list(NO_ALARM))
def test_no_false_alarm(tmp_path, case):
    r = run(tmp_path, NO_ALARM[case], "--deadlock-timeout", str(TIMEOUT))
    assert r.returncode == 0, r.explain()
    assert r.lines("FINISHED"), r.explain()
    assert r.report is not None and r.report["deadlocks"] == [], r.explain()
    assert "DEADLOCK DETECTED" not in r.stderr, r.explain()


def test_report_policy_reports_once_and_lets_the_threads_wait(tmp_path):
    """enable()'s default policy: the deadlock (two daemon threads: one joins the other while
    holding the lock it needs) is reported once, in the session, and nothing is raised."""
    source = f"""
    import sys, threading, time, lockwatch
    session = lockwatch.enable(deadlock_timeout={TIMEOUT}, report_at_exit=False)
    L = threading.Lock()
    def worker():
        time.sleep(0.3)
        with L:
            pass
    def boss():
        t = threading.Thread(target=worker, name="worker", daemon=True)
        t.start()
        with L:
            t.join()
    threading.Thread(target=boss, name="boss", daemon=True).start()
    end = time.monotonic() + 30
    while not session.deadlocks and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(3 * {TIMEOUT})  # more looks of the watchdog: still one report
    d = session.deadlocks
    sys.stdout.write(f"DEADLOCKS {{len(d)}} " + " ".join(sorted(t["name"] for t in d[0]["threads"])) + "\\n")
    sys.stdout.write("POLICY " + d[0]["policy"] + "\\n")
    """
    r = run(tmp_path, source, cli=False)
    assert r.returncode == 0, r.explain()
    assert r.lines("DEADLOCKS") == ["DEADLOCKS 1 boss worker"], r.explain()
    assert r.lines("POLICY") == ["POLICY report"], r.explain()
    assert "the threads keep waiting (policy: report)" in r.stderr, r.explain()
