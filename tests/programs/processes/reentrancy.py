"""Code that takes locks while the same thread is inside lockwatch's own bookkeeping, run under
``python -m lockwatch``. ``reentrancy.py MODE`` with MODE one of:

  del        finalizers (__del__ of garbage cycles) that take locks, fail a try-lock, take a
             semaphore, create a lock and drop one. First collected where the collector
             happens to run (gc thresholds of 1 to 23 allocations: often at allocations lockwatch
             makes); then forced (gc.collect() from a trace function) at the n-th line of
             lockwatch's code run while the thread holds lockwatch's mutex or records an edge
  weakref    weakref callbacks (of objects and of dying instrumented locks) doing the same, in
             the same two ways
  sigalrm    a SIGALRM handler (signal.setitimer) doing the same while the main thread locks and
             unlocks in a tight loop
  sigusr1    the same with SIGUSR1 sent by another thread (os.kill)
  settrace   a sys.settrace/threading.settrace hook doing the same on every event, while three
             threads take locks
  setprofile the same with sys.setprofile/threading.setprofile

Every lock is counted by the program as it goes. At the end the program prints one JSON line:
the expected and recorded counts per lock, lockwatch's internal errors, what the threads still
hold, and how many times a hook ran while the thread was inside lockwatch's code ("inside"),
inside the recording of a new lock-order edge ("busy") and holding lockwatch's mutex ("mutex").
"""
import gc
import itertools
import json
import os
import signal
import sys
import threading
import weakref

import lockwatch
from lockwatch import recorder

MODE = sys.argv[1]
LOCKWATCH_DIR = os.path.dirname(os.path.abspath(lockwatch.__file__)) + os.sep
WANTED_INSIDE = 50  # hook runs inside lockwatch's code wanted before the loop may stop
MAX_ITERATIONS = 200_000

inside = itertools.count()  # next(): one C call, safe against re-entry and threads
busy_hits = itertools.count()
mutex_hits = itertools.count()
THIS_FILE = os.path.basename(__file__)

# Every lock has a creation site of its own (its line), named after its variable.
l_lock = threading.Lock()
l_rlock = threading.RLock()
l_timed = threading.Lock()
l_sem = threading.Semaphore(2)
l_bsem = threading.BoundedSemaphore(1)
l_cond = threading.Condition()
hook_lock = threading.Lock()
hook_rlock = threading.RLock()
hook_sem = threading.Semaphore(1000)
never_free = threading.Lock()
never_free.acquire()  # held for good: every try-lock of it fails
# Expected [acquisitions, failed] per site: the locks above, and the locks made in body()
# (fresh_a, fresh_b: "fresh"), in Garbage.__del__ ("made") and in Garbage.__init__ ("own").
expected = {name: [0, 0] for name in ("l_lock", "l_rlock", "l_timed", "l_sem", "l_bsem", "l_cond",
                                      "hook_lock", "hook_rlock", "hook_sem", "never_free", "fresh", "made", "own")}
expected["never_free"][0] = 1  # the acquisition above
SITE_GROUPS = {"fresh_a": "fresh", "fresh_b": "fresh"}


def count(name, acquired=1, failed=0):
    # Each counter is only changed by code that holds the lock it counts (or, for the main
    # loop's, by the main thread's loop itself, which no hook touches).
    e = expected[name]
    e[0] += acquired
    e[1] += failed


def in_lockwatch(frame):
    return frame is not None and frame.f_code.co_filename.startswith(LOCKWATCH_DIR)


def note_where(frame):
    while frame is not None and os.path.basename(frame.f_code.co_filename) == THIS_FILE:
        frame = frame.f_back  # the program's own frames (a hook, the trace function) aside
    if in_lockwatch(frame):
        next(inside)
        if getattr(recorder.tls, "busy", False):
            next(busy_hits)  # inside a lock-order edge being recorded
        if recorder.mutex._is_owned():
            next(mutex_hits)  # inside a section guarded by lockwatch's own mutex


def hook_work():
    """What every hook does: fail a try-lock (a failure is counted under lockwatch's mutex),
    take a semaphore (its counters are guarded by the mutex) and take a lock. Nothing that needs
    lockwatch's mutex is done while holding hook_lock, which other threads' hooks may wait for
    from inside lockwatch's bookkeeping (that deadlock is test_reentrancy's known bug)."""
    if never_free.acquire(blocking=False):
        raise AssertionError("never_free was free")
    with hook_sem:  # Semaphore(1000): never waits
        pass
    with hook_lock:
        count("hook_lock")
        count("hook_sem")
        count("never_free", 0, 1)


def body(i):
    """One iteration of the main loop: nested locks of every kind, a failed try-lock, a timed
    acquire, RLock re-entry, and a fresh pair of locks (a new lock-order edge every time)."""
    fresh_a = threading.Lock()
    fresh_b = threading.RLock()
    with l_lock:
        with l_rlock:
            with l_rlock:  # re-entry: not a new acquisition
                with l_sem:
                    if l_lock.acquire(blocking=False):  # held: fails
                        raise AssertionError("l_lock taken twice")
                    with fresh_a:
                        with fresh_b:
                            if l_timed.acquire(timeout=5):
                                try:
                                    with l_bsem:
                                        with l_cond:
                                            pass
                                finally:
                                    l_timed.release()
                            else:
                                count("l_timed", 0, 1)
                                return
    count("l_lock", 1, 1)
    count("l_rlock")
    count("l_sem")
    count("l_timed")
    count("l_bsem")
    count("l_cond")
    count("fresh", 2)


# -- the hooks --------------------------------------------------------------------------------


class Garbage:
    """A reference cycle whose finalizer takes locks, creates one and drops one."""

    def __init__(self):
        self.me = self
        self.own = threading.Lock()  # dies with the cycle: its counters fold into its site

    def __del__(self):
        note_where(sys._getframe(1))
        hook_work()
        with hook_lock:
            count("hook_lock")
            made = threading.RLock()  # a new instance, counted by lockwatch under its mutex
            with made:
                with made:
                    pass
            count("made")
        with self.own:
            count("own")


class Cycle:
    """A reference cycle without a finalizer."""

    def __init__(self):
        self.me = self


def on_weakref(ref):
    note_where(sys._getframe(1))
    hook_work()


handler_depth = [0]


def on_signal(signum, frame):
    # A signal arriving while the handler runs starts the handler again inside it. That inner
    # run returns at once: taking hook_lock there could wait for the outer run, which holds it
    # (a handler's own deadlock, with or without lockwatch), and on a loaded machine, where the
    # handler takes longer than the timer's interval, unbounded nesting ends in a RecursionError.
    if handler_depth[0]:
        return
    handler_depth[0] += 1
    try:
        note_where(frame)
        outermost = not hook_rlock._is_owned()
        with hook_rlock:
            if outermost:
                count("hook_rlock")
            hook_work()
    finally:
        handler_depth[0] -= 1


def tracer(frame, event, arg):
    note_where(frame)
    hook_work()
    return tracer


def profiler(frame, event, arg):
    note_where(frame)
    hook_work()


def loop(iterations=None, per_iteration=None):
    i = 0
    while i < MAX_ITERATIONS:
        if iterations is not None and i >= iterations:
            break
        if iterations is None and i >= 1000 and _inside_now() >= WANTED_INSIDE:
            break
        if per_iteration is not None:
            per_iteration(i)
        body(i)
        i += 1
    return i


def _inside_now():
    # itertools.count has no read method: its repr is "count(N)"
    return int(repr(inside)[6:-1])


leftover_held = []


def worker(iterations):
    loop(iterations)
    leftover_held.append(len(recorder.tls.held))


class ForcedCollection:
    """A trace function that runs gc.collect() at the `target`-th line of lockwatch's code, in
    an iteration, that runs while this thread holds lockwatch's mutex or records an edge: the
    garbage made just before is collected (its finalizers run) right there."""

    def __init__(self):
        self.armed = False
        self.target = self.seen = 0

    def arm(self, i):
        self.armed, self.target, self.seen = True, i % 17, 0

    def __call__(self, frame, event, arg):
        if not in_lockwatch(frame):
            return None
        if event == "line" and self.armed and (recorder.mutex._is_owned() or getattr(recorder.tls, "busy", False)):
            if self.seen == self.target:
                self.armed = False
                gc.collect()
            self.seen += 1
        return self


def both_ways(make):
    gc.collect()

    def natural(i):
        # A collection after 1 to 23 allocations, varied from one iteration to the next.
        gc.set_threshold(1 + i * 7 % 23, 1, 1)
        make()  # unreachable at once: collected at the next collection

    loop(per_iteration=natural)
    gc.set_threshold(700, 10, 10)
    gc.collect()
    forced = ForcedCollection()

    def arm(i):
        make()
        forced.arm(i)

    sys.settrace(forced)
    loop(500, per_iteration=arm)
    sys.settrace(None)
    gc.collect()


refs = set()


def make_dying():
    obj = Cycle()
    refs.add(weakref.ref(obj, on_weakref))
    box = [threading.Lock()]  # an instrumented lock that dies in a collected cycle
    box.append(box)
    refs.add(weakref.ref(box[0], on_weakref))


if MODE == "del":
    both_ways(Garbage)
elif MODE == "weakref":
    both_ways(make_dying)
elif MODE == "sigalrm":
    signal.signal(signal.SIGALRM, on_signal)
    signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
    loop()
    signal.setitimer(signal.ITIMER_REAL, 0, 0)
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
elif MODE == "sigusr1":
    signal.signal(signal.SIGUSR1, on_signal)
    stop = threading.Event()

    def kill_loop():
        pid = os.getpid()
        while not stop.is_set():
            os.kill(pid, signal.SIGUSR1)

    killer = threading.Thread(target=kill_loop, name="killer")
    killer.start()
    loop()
    stop.set()
    killer.join(120)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
elif MODE in ("settrace", "setprofile"):
    hook = tracer if MODE == "settrace" else profiler
    setter = sys.settrace if MODE == "settrace" else sys.setprofile
    thread_setter = threading.settrace if MODE == "settrace" else threading.setprofile
    thread_setter(hook)
    workers = [threading.Thread(target=worker, args=(12,), name=f"worker-{n}") for n in range(2)]
    for w in workers:
        w.start()
    setter(hook)
    loop(12)
    setter(None)
    thread_setter(None)
    for w in workers:
        w.join(120)
else:
    raise SystemExit(f"unknown mode {MODE}")

never_free.release()  # the hooks are off
leftover_held.append(len(recorder.tls.held))
snap = lockwatch.current_session().snapshot()
recorded = {}
for st in snap.locks:
    if os.path.basename(st.filename) != THIS_FILE:
        continue
    key = SITE_GROUPS.get(st.name, st.name).rsplit(".", 1)[-1]  # "Garbage.own" -> "own"
    if key not in expected:
        continue
    r = recorded.setdefault(key, [0, 0, 0])
    r[0] += st.acquisitions
    r[1] += st.failed
    r[2] += st.hold.count
print(json.dumps({
    "expected": expected,
    "recorded": recorded,
    "internal_errors": snap.internal_errors,
    "held": leftover_held,
    "inside": _inside_now(),
    "busy": int(repr(busy_hits)[6:-1]),
    "mutex": int(repr(mutex_hits)[6:-1]),
}), flush=True)
