"""The parent takes lock_a then lock_b; a multiprocessing child takes lock_b then lock_a.
``parent_multiprocessing.py fork|spawn|forkserver pool|process``"""
import multiprocessing
import os
import sys

import shared_locks


def child_part():
    shared_locks.b_then_a()
    return os.getpid()


if __name__ == "__main__":
    method, how = sys.argv[1], sys.argv[2]
    ctx = multiprocessing.get_context(method)
    shared_locks.a_then_b()
    if how == "pool":
        pool = ctx.Pool(1)
        child = pool.apply(child_part)
        pool.close()
        pool.join()
    else:
        p = ctx.Process(target=child_part)
        p.start()
        p.join(120)
        assert p.exitcode == 0, p.exitcode
        child = p.pid
    print(f"parent pid: {os.getpid()}")
    print(f"child pid: {child}", flush=True)
