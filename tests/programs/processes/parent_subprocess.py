"""The parent takes lock_a then lock_b; a child process (a new interpreter) takes lock_b then lock_a."""
import os
import subprocess
import sys

import shared_locks

shared_locks.a_then_b()
child = os.path.join(os.path.dirname(os.path.abspath(__file__)), "child_b_then_a.py")
subprocess.run([sys.executable, child], check=True, timeout=120)
print(f"parent pid: {os.getpid()}", flush=True)
