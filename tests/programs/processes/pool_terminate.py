"""Make a multiprocessing Pool in a thread and terminate it at once, again and again, as CPython's
TestSyncManagerTypes.test_pool does through a manager: terminate() signals workers that may be
just about to block on the task queue. Prints how many terminate() calls did not return."""
import multiprocessing
import os
import sys
import threading


def make_and_terminate(ctx: multiprocessing.context.BaseContext) -> None:
    pool = ctx.Pool(4)
    pool.terminate()  # joins the workers: one that outlives its SIGTERM hangs this


if __name__ == "__main__":
    method, n = sys.argv[1], int(sys.argv[2])
    ctx = multiprocessing.get_context(method)
    hung = 0
    for _ in range(n):
        t = threading.Thread(target=make_and_terminate, args=(ctx,), daemon=True)
        t.start()
        t.join(20)
        if t.is_alive():
            hung += 1
            for child in multiprocessing.active_children():
                os.kill(child.pid, 9)  # let terminate() return, and go on
            t.join(60)
    print(f"terminate() hung {hung} of {n}", flush=True)
