"""What a forked child starts with, under LOCKWATCH=1 with LOCKWATCH_JSON=DIR/r-%p.json.

The parent takes lock_a 8 times and lock_b 4 times (once nested: lock_a -> lock_b), starts a
helper thread that takes `helper_lock` and keeps it, then forks while its main thread holds
`forking_lock` and `forking_rlock` (twice). The child checks its state, prints it as one JSON
line ("child: {...}"), takes lock_b -> lock_a once and lock_a twice more, and exits normally
(its report: r-<child pid>.json). The parent then takes lock_a once more.
"""
import json
import os
import sys
import threading
import warnings

# It forks while its helper thread runs, on purpose: Python 3.12+ would warn about that.
warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import shared_locks  # noqa: E402
from lockwatch import recorder  # noqa: E402  (to look at lockwatch's per-thread state)

helper_lock = threading.Lock()
forking_lock = threading.Lock()
forking_rlock = threading.RLock()
helper_has_it = threading.Event()
helper_may_go = threading.Event()


def helper():
    with helper_lock:
        helper_has_it.set()
        helper_may_go.wait(120)


for _ in range(7):
    with shared_locks.lock_a:
        pass
for _ in range(3):
    with shared_locks.lock_b:
        pass
shared_locks.a_then_b()

t = threading.Thread(target=helper, name="helper")
t.start()
assert helper_has_it.wait(120)

sys.stdout.flush()
with forking_lock:
    with forking_rlock:
        with forking_rlock:
            pid = os.fork()
            if pid == 0:
                held = recorder.tls.held
                state = {
                    "threads": sorted(recorder.threads) == [threading.get_ident()],
                    "held_at_start": [recorder.lock_name(x) or x._site.name for x in held],
                    "forking_lock_locked": forking_lock.locked(),
                    "helper_lock_locked": helper_lock.locked(),
                    "helper_lock_timed_acquire": helper_lock.acquire(timeout=0.05),
                }
                helper_lock._at_fork_reinit()  # what the standard library does for its own locks
                with helper_lock:
                    pass
    if pid == 0:
        state["rlock_released"] = True  # both levels of forking_rlock: no RuntimeError
if pid == 0:
    state["held_after_release"] = list(recorder.tls.held)
    shared_locks.b_then_a()
    for _ in range(2):
        with shared_locks.lock_a:
            pass
    print("child: " + json.dumps(state), flush=True)
    sys.exit(0)  # a normal exit: atexit writes this process's report

_, status = os.waitpid(pid, 0)
helper_may_go.set()
t.join(120)
with shared_locks.lock_a:
    pass
print(f"parent: {json.dumps({'pid': os.getpid(), 'child': pid, 'child_status': os.waitstatus_to_exitcode(status)})}", flush=True)
