"""The parent takes lock_a then lock_b; a child made by a bare os.fork() takes lock_b then lock_a
and then either returns from the program (``return``) or ends with os._exit(0) (``_exit``)."""
import os
import sys

import shared_locks

how = sys.argv[1]
shared_locks.a_then_b()
sys.stdout.flush()
pid = os.fork()
if pid == 0:
    shared_locks.b_then_a()
    print(f"child pid: {os.getpid()}", flush=True)
    if how == "_exit":
        os._exit(0)
else:
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    print(f"parent pid: {os.getpid()}", flush=True)
