"""Program code that runs inside lockwatch's own bookkeeping, while the thread holds lockwatch's
internal mutex, and waits there for a lock another thread holds; that thread then needs the
mutex. Made deterministic:

  thread A: holds program_lock, waits until B's program code runs, then fails a try-lock
            (lockwatch counts the failure under its mutex) and releases program_lock
  thread B: takes a semaphore (lockwatch records it holding its mutex); program code runs there
            and waits for program_lock:
              profile     a sys.setprofile hook (at a C call)
              trace       a sys.settrace hook (at a line of lockwatch's code)
              finalizer   the __del__ of a garbage cycle, collected there (a trace function
                          runs gc.collect() at the first line under the mutex)
              signal      a SIGUSR1 handler (main thread), the signal raised there the same way
              condition   as profile, but the hook waits on a Condition that A notifies

Nothing of the program waits for B: only lockwatch's mutex could. Run under `python -m lockwatch
mutex_hook_deadlock.py MODE`. Prints "ok" and exits 0, or prints "deadlocked" and exits 3 when A
and B are still blocked after 10 seconds (they finish in milliseconds otherwise).
"""
import gc
import os
import signal
import sys
import threading

from lockwatch import recorder

MODE = sys.argv[1]
LOCKWATCH_DIR = os.path.dirname(os.path.abspath(recorder.__file__)) + os.sep

program_lock = threading.Lock()
cond = threading.Condition()
never_free = threading.Lock()
never_free.acquire()  # every try-lock of it fails
sem = threading.Semaphore(2)
hook_running = threading.Event()
hook_done = threading.Event()
notified = []


def program_code():
    """What runs inside lockwatch's bookkeeping, once: wait for the lock (or condition) A has."""
    if hook_running.is_set() or not recorder.mutex._is_owned():
        return
    hook_running.set()
    if MODE == "condition":
        with cond:
            cond.wait_for(lambda: notified, timeout=60)
    else:
        with program_lock:
            pass
    hook_done.set()


class Garbage:
    def __init__(self):
        self.me = self

    def __del__(self):
        program_code()


def profiler(frame, event, arg):
    program_code()


def tracer(frame, event, arg):
    if frame.f_code.co_filename.startswith(LOCKWATCH_DIR) and event == "line":
        if MODE == "trace":
            program_code()
        elif recorder.mutex._is_owned() and not hook_running.is_set():
            if MODE == "finalizer":
                Garbage()
                gc.collect()
            else:  # signal: the handler runs at the next check for signals, still in there
                signal.raise_signal(signal.SIGUSR1)
    return tracer


def thread_a():
    with program_lock:
        hook_running.wait(60)
        never_free.acquire(blocking=False)
        if MODE == "condition":
            with cond:
                notified.append(1)
                cond.notify_all()


def thread_b():
    hook = profiler if MODE in ("profile", "condition") else tracer
    setter = sys.setprofile if hook is profiler else sys.settrace
    setter(hook)
    try:
        with sem:
            pass
    finally:
        setter(None)


if MODE == "signal":
    signal.signal(signal.SIGUSR1, lambda signum, frame: program_code())
a = threading.Thread(target=thread_a, name="A", daemon=True)
a.start()
if MODE == "signal":  # handlers run in the main thread: it is B (a hang here is a deadlock:
    # the watchdog's exit, or the caller's timeout, ends it)
    thread_b()
    b_alive = False
else:
    b = threading.Thread(target=thread_b, name="B", daemon=True)
    b.start()
    b.join(10)
    b_alive = b.is_alive()
a.join(10 if b_alive else 1)
if a.is_alive() or b_alive or not hook_done.is_set():
    print("deadlocked" if hook_running.is_set() else "program code never ran in lockwatch", flush=True)
    os._exit(3)
never_free.release()
print("ok", flush=True)
