"""Fork again and again while other threads keep lockwatch busy, under LOCKWATCH=1 with
LOCKWATCH_JSON=DIR/r-%p.json. ``fork_stress.py MAX_FORKS WANTED_HITS``

Four threads take semaphores (whose counters lockwatch guards with its own mutex), fail
try-locks (counted under the mutex), create and drop locks (an instance counted and folded under
the mutex) and nest fresh pairs of locks (a new lock-order edge); a fifth copies the recorded
state (a snapshot: the mutex held for a while). The main thread forks until WANTED_HITS forks
happened while another thread held lockwatch's mutex (or MAX_FORKS forks were made), then forks
once more while a thread of its own holds the mutex (a hit on every run, however the machine's
load shifts the odds of the others). Each child
must be able to use lockwatch: it takes fresh locks (nested, a failed try-lock, a semaphore),
takes a snapshot, prints one line ``child: {json}`` and exits normally, which writes its own
report. A child that hangs is ended by SIGALRM.

The parent prints one line ``parent: {json}``: its pid, the children's exit statuses, the number
of forks.
"""
import json
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lockwatch  # noqa: E402
from lockwatch import analysis, recorder  # noqa: E402,F401  (analysis: imported once, not per child)
from lockwatch.renderers import jsonreport  # noqa: E402,F401

MAX_FORKS, WANTED_HITS = int(sys.argv[1]), int(sys.argv[2])
stop = threading.Event()
sems = [threading.Semaphore(2) for _ in range(4)]
shared = threading.Lock()


def busy(index):
    sem = sems[index]
    while not stop.is_set():
        with sem:  # the mutex at acquire and at release
            pass
        with shared:
            if shared.acquire(blocking=False):  # fails: a failed try-lock takes the mutex
                shared.release()
        outer = threading.Lock()  # a new instance: counted under the mutex
        inner = threading.RLock()
        with outer:
            with inner:  # a new lock-order edge between fresh instances
                pass
        del outer, inner  # dying instances fold their counters under the mutex


def reporter(session):
    while not stop.is_set():
        session.snapshot(live_stats=False)  # copies the recorded state with the mutex held


def child(mutex_at_fork):
    signal.alarm(60)  # a child deadlocked in lockwatch dies of SIGALRM instead of hanging
    # The parent's mutex as it was at the fork: locked if another thread held it then (that
    # thread does not exist here, and never releases it).
    state = {
        "pid": os.getpid(),
        "mutex_held_at_fork": repr(mutex_at_fork).startswith("<locked"),
        "mutex_renewed": recorder.mutex is not mutex_at_fork,
        # (the main thread has a held list once it has taken an instrumented lock)
        "held": len(getattr(recorder.tls, "held", ())),
        "only_this_thread": set(recorder.threads) <= {threading.get_ident()},
    }
    first = threading.Lock()
    second = threading.Lock()
    sem = threading.BoundedSemaphore(1)
    for _ in range(3):
        with first:
            with second:
                with sem:
                    pass
    with first:
        state["trylock"] = first.acquire(blocking=False)
    snap = lockwatch.current_session().snapshot()
    state["internal_errors"] = snap.internal_errors
    state["counts"] = {s.name: [s.acquisitions, s.failed, s.hold.count]
                       for s in snap.locks if s.name in ("first", "second", "sem")}
    sys.stdout.write(f"child: {json.dumps(state)}\n")
    sys.stdout.flush()
    sys.exit(0)


session = lockwatch.current_session()
workers = [threading.Thread(target=busy, args=(i,), name=f"busy-{i}") for i in range(4)]
workers.append(threading.Thread(target=reporter, args=(session,), name="reporter"))
for w in workers:
    w.start()

statuses = {}
hits = 0


def fork_once():
    global hits
    mutex = recorder.mutex
    r, w = os.pipe()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, b"1" if repr(mutex).startswith("<locked") else b"0")
        os.close(w)
        child(mutex)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        hits += pipe.read() == b"1"
    _, status = os.waitpid(pid, 0)
    statuses[pid] = os.waitstatus_to_exitcode(status)


while len(statuses) < MAX_FORKS and hits < WANTED_HITS:
    fork_once()
stop.set()
for w in workers:
    w.join(120)
random_hits = hits

# One fork while a thread of this program holds lockwatch's mutex, released only after the fork.
holding, forked = threading.Event(), threading.Event()


def hold_mutex():
    with recorder.mutex:
        holding.set()
        forked.wait()


holder = threading.Thread(target=hold_mutex, name="holder")
holder.start()
holding.wait()
fork_once()
forked.set()
holder.join(120)
print(f"parent: {json.dumps({'pid': os.getpid(), 'children': statuses, 'hits': hits, 'random_hits': random_hits})}", flush=True)
