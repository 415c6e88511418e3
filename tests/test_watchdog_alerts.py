"""Alerts while the program runs: a lock held longer than --warn-hold, a wait longer than --warn-wait."""
from __future__ import annotations

import re

import pytest
from scenarios import live_part, run
from support import line_in

pytestmark = pytest.mark.timeout(300)


# -- alerts -------------------------------------------------------------------------------------
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
    holder_line = line_in(src, "# holder sleeps with busy_lock")
    assert alert["holder_stack"][-1].endswith(f"prog.py:{holder_line} in holder"), alert
    live = live_part(r.stderr)
    assert live.count("has waited") == 1, r.stderr
    assert re.search(r"^lockwatch: thread 'waiter' has waited \d+\.\d s for busy_lock \(Lock, created at "
                     r"prog\.py:\d+\), held by thread 'holder'$", live, re.M), live
    assert "  holder's stack:" in live
    assert live.index("has waited") < live.index("HOLDER RELEASED"), live
    assert "has been held for" not in live and "DEADLOCK" not in r.stderr
