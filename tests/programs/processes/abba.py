"""An AB/BA inversion between two threads (one after the other: the run never hangs), with no
mention of lockwatch. Prints on stdout what it sees of lockwatch."""
import os
import sys

# python -I (isolated mode) puts no script directory on sys.path
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import threading  # noqa: E402

import shared_locks  # noqa: E402

for target in (shared_locks.a_then_b, shared_locks.b_then_a):
    t = threading.Thread(target=target, name=target.__name__)
    t.start()
    t.join()

print(f"pid: {os.getpid()}")
print(f"lockwatch imported: {'lockwatch' in sys.modules}")
print(f"lockwatch modules: {sorted(m for m in sys.modules if m == 'lockwatch' or m.startswith('lockwatch.'))}")
print(f"lock type: {type(shared_locks.lock_a).__module__}.{type(shared_locks.lock_a).__name__}", flush=True)
