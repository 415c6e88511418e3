"""An AB/BA inversion (between two threads, one after the other), then, per MODE:

  sleep          print "ready" and sleep (to be sent a signal)
  blocked        print "ready" and block on a lock another thread holds (never released)
  busy           lock and unlock in a tight loop (a Lock, an RLock, a Semaphore), "ready"
                 printed after the first 1000 rounds
  own-early      install its own SIGTERM handler before threading is imported, then as sleep
  own-late       install its own SIGTERM handler after the locks exist, then as sleep
                 (the handler prints "own handler ran" and exits with status 7)
  ignore         ignore SIGTERM (SIG_IGN, before threading is imported), print "ready", wait for
                 a line on stdin, exit 0
  raise          raise RuntimeError
  exit N         os._exit(N)

Prints "handler: <what signal.getsignal(SIGTERM) is>" before "ready".
"""
import os
import signal
import sys

MODE = sys.argv[1]


def own_handler(signum, frame):
    print("own handler ran", flush=True)
    sys.exit(7)


if MODE == "own-early":
    signal.signal(signal.SIGTERM, own_handler)
elif MODE == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import threading  # noqa: E402
import time  # noqa: E402

import shared_locks  # noqa: E402

for target in (shared_locks.a_then_b, shared_locks.b_then_a):
    t = threading.Thread(target=target, name=target.__name__)
    t.start()
    t.join()

if MODE == "own-late":
    signal.signal(signal.SIGTERM, own_handler)


def describe(handler):
    if handler is own_handler:
        return "own"
    if handler in (signal.SIG_DFL, signal.SIG_IGN):
        return handler.name
    return f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', handler)}"


print(f"handler: {describe(signal.getsignal(signal.SIGTERM))}", flush=True)

if MODE in ("sleep", "own-early", "own-late"):
    print("ready", flush=True)
    time.sleep(120)
    print("not interrupted", flush=True)
elif MODE == "blocked":
    gate = threading.Lock()
    taken = threading.Event()

    def keep():
        gate.acquire()
        taken.set()
        threading.Event().wait(120)

    threading.Thread(target=keep, name="keeper", daemon=True).start()
    taken.wait(120)
    print("ready", flush=True)
    gate.acquire()
    print("not interrupted", flush=True)
elif MODE == "busy":
    lock = threading.Lock()
    rlock = threading.RLock()
    sem = threading.Semaphore(3)
    rounds = 0
    while rounds < 10_000_000:
        with lock:
            with rlock:
                with rlock:
                    with sem:
                        pass
        rounds += 1
        if rounds == 1000:
            print("ready", flush=True)
    print("not interrupted", flush=True)
elif MODE == "ignore":
    print("ready", flush=True)
    line = sys.stdin.readline()
    print(f"still running after SIGTERM: {line.strip()}", flush=True)
elif MODE == "raise":
    raise RuntimeError("the program failed")
elif MODE == "exit":
    sys.stdout.flush()
    os._exit(int(sys.argv[2]))
else:
    raise SystemExit(f"unknown mode {MODE}")
