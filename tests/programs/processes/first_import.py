"""``first_import.py MODULE``: import MODULE first (for most, the module that imports threading
for the program), then an AB/BA inversion between two threads. ``enable`` instead calls
lockwatch.enable() first, as a program that switches lockwatch on itself does."""
import importlib
import os
import sys

first = sys.argv[1]
if first == "enable":
    import lockwatch

    lockwatch.enable()
else:
    importlib.import_module(first)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import threading  # noqa: E402

import shared_locks  # noqa: E402

for target in (shared_locks.a_then_b, shared_locks.b_then_a):
    t = threading.Thread(target=target, name=target.__name__)
    t.start()
    t.join()
print(f"lock type: {type(shared_locks.lock_a).__module__}.{type(shared_locks.lock_a).__name__}", flush=True)
