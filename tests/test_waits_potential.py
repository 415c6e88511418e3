"""Potential deadlocks through waits, found on runs that never hung: a lock held across a join,
an Event wait or a Future's result, against the waker's use of that lock; thread pools whose
tasks wait on futures of their own pool. And none where no such cycle exists."""
from __future__ import annotations

import pytest
from scenarios import run

pytestmark = pytest.mark.timeout(300)


def findings(r):
    assert r.returncode == 0, r.explain()
    assert r.lines("FINISHED"), r.explain()
    assert r.report is not None and r.report["deadlocks"] == [], r.explain()
    return r.report["potential_deadlocks"]


def kinds_of(p):
    return sorted((lk["kind"], lk["name"]) for lk in p["locks"])


def test_join_while_holding_a_lock_the_finished_worker_took(tmp_path):
    """The worker took L (inside M) and ended; later main holds L and joins it: had main taken L
    first, the worker would have waited for L and main for the worker."""
    r = run(tmp_path, """
        import threading
        L = threading.Lock()
        M = threading.Lock()
        def worker():
            with M:
                with L:
                    pass
        t = threading.Thread(target=worker, name="worker")
        t.start()
        t.join()
        with L:
            t.join()
        print("FINISHED")
    """)
    found = findings(r)
    two = [p for p in found if len(p["locks"]) == 2]
    assert [kinds_of(p) for p in two] == [[("Lock", "L"), ("Thread", "thread 'worker'")]], found
    [p] = two
    assert p["triage"] == "deadlock" and p["fails"], p
    thread = next(lk for lk in p["locks"] if lk["kind"] == "Thread")
    assert thread["site"].endswith("prog.py:8"), thread  # where the Thread object was made
    assert [(e.get("wait"), e.get("wake")) for e in p["edges"]] in (
        [("join", None), (None, "end")], [(None, "end"), ("join", None)]), p["edges"]
    assert "took L before it ended" in r.stderr, r.explain()


def test_join_while_holding_a_lock_the_finished_worker_took_alone(tmp_path):
    """The issue's own example: the worker takes L (no other lock held: no lock-order edge shows
    it) and ends; later main holds L and joins it."""
    r = run(tmp_path, """
        import threading
        L = threading.Lock()
        def worker():
            with L:
                pass
        t = threading.Thread(target=worker, name="worker")
        t.start()
        t.join()
        with L:
            t.join()
        print("FINISHED")
    """)
    found = findings(r)
    assert [kinds_of(p) for p in found] == [[("Lock", "L"), ("Thread", "thread 'worker'")]], found
    [p] = found
    assert p["triage"] == "deadlock" and p["fails"], p
    assert {(e.get("wait"), e.get("wake")) for e in p["edges"]} == {(None, "end"), ("join", None)}, p["edges"]
    assert "took L before it ended" in r.stderr, r.explain()


def test_no_join_cycle_when_another_thread_released_the_lock_last(tmp_path):
    """Only the thread that released L last is known to have taken it: a join of a worker that
    never took L is quiet even though L was taken by others."""
    r = run(tmp_path, """
        import threading
        L = threading.Lock()
        def other():
            with L:
                pass
        def worker():
            pass
        o = threading.Thread(target=other, name="other")
        o.start(); o.join()
        t = threading.Thread(target=worker, name="worker")
        t.start()
        with L:
            t.join()
        print("FINISHED")
    """)
    assert findings(r) == []


def test_join_while_holding_a_lock_the_worker_held_while_waking(tmp_path):
    r = run(tmp_path, """
        import threading
        L = threading.Lock()
        started = threading.Event()
        def worker():
            with L:
                started.set()
        t = threading.Thread(target=worker, name="worker")
        t.start()
        started.wait()
        t.join()
        with L:
            t.join()
        print("FINISHED")
    """)
    found = findings(r)
    assert [("Lock", "L"), ("Thread", "thread 'worker'")] in [kinds_of(p) for p in found], found


def test_event_already_set_waited_for_while_holding_the_setters_lock(tmp_path):
    r = run(tmp_path, """
        import threading
        L = threading.Lock()
        ready = threading.Event()
        def setter():
            with L:
                ready.set()
        t = threading.Thread(target=setter, name="setter")
        t.start()
        t.join()
        with L:
            ready.wait()  # returns at once: set already
        print("FINISHED")
    """)
    found = findings(r)
    [p] = found
    assert kinds_of(p) == [("Event", "ready"), ("Lock", "L")], p
    assert p["triage"] == "deadlock" and p["scope"] == "instance", p
    assert {e.get("wait") for e in p["edges"]} == {"wait", None}, p["edges"]
    assert {e.get("wake") for e in p["edges"]} == {"set", None}, p["edges"]
    assert "thread 'setter' set ready while holding L" in r.stderr, r.explain()


def test_queue_join_while_holding_the_lock_taken_to_mark_tasks_done(tmp_path):
    """The worker once called task_done() inside L; later main held L across q.join(): had a task
    been unfinished then, the worker would have waited for L and main for the task."""
    r = run(tmp_path, """
        import queue, threading, time
        L = threading.Lock()
        q = queue.Queue()
        def worker():
            while True:
                locked = q.get()
                if locked is None:
                    return
                time.sleep(0.05)
                if locked:
                    with L:
                        q.task_done()
                else:
                    q.task_done()
        t = threading.Thread(target=worker, name="worker")
        t.start()
        q.put(True)
        q.join()
        q.put(False)
        with L:
            q.join()  # waits for the task: its worker needs no lock this time
        q.put(None)
        t.join()
        print("FINISHED")
    """)
    found = findings(r)
    [p] = [p for p in found if any(lk["kind"] == "Queue" for lk in p["locks"])]
    assert kinds_of(p) == [("Lock", "L"), ("Queue", "q (unfinished tasks)")], p
    assert {e.get("wait") for e in p["edges"]} == {"task-join", None}, p["edges"]
    assert {e.get("wake") for e in p["edges"]} == {"task-done", None}, p["edges"]


def test_a_timed_wait_closes_a_timed_cycle_only(tmp_path):
    r = run(tmp_path, """
        import threading
        L = threading.Lock()
        ready = threading.Event()
        def setter():
            with L:
                ready.set()
        t = threading.Thread(target=setter, name="setter")
        t.start()
        t.join()
        with L:
            ready.wait(5)
        print("FINISHED")
    """)
    [p] = findings(r)
    assert p["triage"] == "timed" and not p["fails"], p


def test_pool_tasks_waiting_on_their_own_pool_never_all_at_once(tmp_path):
    """Also: lockwatch has not imported concurrent.futures before the program does (it wraps
    ThreadPoolExecutor when the program imports it)."""
    r = run(tmp_path, """
        import sys, threading
        print("IMPORTED BEFORE", "concurrent.futures" in sys.modules, "logging" in sys.modules)
        from concurrent.futures import ThreadPoolExecutor
        pool = ThreadPoolExecutor(max_workers=4)
        def sub(i):
            return i
        def task(i):
            return pool.submit(sub, i).result()
        for i in range(3):
            pool.submit(task, i).result()  # one at a time: never starved
        pool.shutdown()
        print("FINISHED")
    """)
    found = findings(r)
    assert r.lines("IMPORTED BEFORE") == ["IMPORTED BEFORE False False"], r.explain()
    [p] = [p for p in found if p["triage"] == "starvation"]
    assert p["fails"] and kinds_of(p) == [("Future", "futures of pool")], p
    assert "thread pool pool (4 workers)" in p["reasons"][0], p
    assert "1 of them waited so at once" in p["reasons"][0], p
    assert p["locks"][0]["site"].endswith("prog.py:4"), p


# -- nothing to find -----------------------------------------------------------------------------
QUIET = {
    "join while holding a lock the worker never takes": """
        import threading
        L = threading.Lock()
        M = threading.Lock()
        def worker():
            with M:
                pass
        t = threading.Thread(target=worker)
        t.start()
        with L:
            t.join()
        print("FINISHED")
    """,
    "producer/consumer holding no lock across get/put": """
        import threading, queue
        L = threading.Lock()
        items = queue.Queue(maxsize=2)
        def producer():
            for i in range(50):
                with L:
                    pass
                items.put(i)
            items.put(None)
        threading.Thread(target=producer).start()
        while items.get() is not None:
            with L:
                pass
        print("FINISHED")
    """,
    "a pool that never waits on its own futures": """
        from concurrent.futures import ThreadPoolExecutor, as_completed, wait
        with ThreadPoolExecutor(max_workers=2) as pool:
            fs = [pool.submit(pow, 2, i) for i in range(20)]
            wait(fs)
            sum(f.result() for f in as_completed(fs))
        other = ThreadPoolExecutor(max_workers=1)
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(lambda: other.submit(pow, 2, 3).result()).result()  # another pool's
        other.shutdown()
        print("FINISHED")
    """,
    "put to a queue and join it under one lock, its worker taking none": """
        import queue, threading, time
        L = threading.Lock()
        q = queue.Queue()
        def worker():
            while True:
                item = q.get()
                time.sleep(0.01)
                q.task_done()
                if item is None:
                    return
        threading.Thread(target=worker).start()
        with L:  # a put never ends a join: no cycle (futurist's executor shutdown does this)
            for i in range(5):
                q.put(i)
            q.put(None)
            q.join()
        print("FINISHED")
    """,
    "a Condition used as designed": """
        import threading
        cond = threading.Condition()
        box = []
        def put():
            with cond:
                box.append(1)
                cond.notify()
        t = threading.Thread(target=put)
        t.start()
        with cond:
            cond.wait_for(lambda: box)
        t.join()
        print("FINISHED")
    """,
}


@pytest.mark.parametrize("case", list(QUIET))
def test_nothing_found(tmp_path, case):
    assert findings(run(tmp_path, QUIET[case])) == []
