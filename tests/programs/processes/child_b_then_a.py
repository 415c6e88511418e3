"""A child process's half of an inversion: lock_b then lock_a (its parent takes lock_a then lock_b)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import shared_locks  # noqa: E402

shared_locks.b_then_a()
print(f"child pid: {os.getpid()}", flush=True)
