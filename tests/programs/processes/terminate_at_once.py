"""Start children with one multiprocessing start method and terminate each at once, as
Pool.terminate() may do to a worker it has just started. Prints how many outlived SIGTERM and the
exit codes seen."""
import collections
import multiprocessing
import sys
import time


def sleeper() -> None:
    time.sleep(600)


if __name__ == "__main__":
    method, n = sys.argv[1], int(sys.argv[2])
    ctx = multiprocessing.get_context(method)
    survived = 0
    codes: collections.Counter = collections.Counter()
    for _ in range(n):
        p = ctx.Process(target=sleeper)
        p.start()
        p.terminate()
        p.join(120)  # dying of SIGTERM writes the child's report first: slow on a loaded machine
        if p.exitcode is None:
            survived += 1
            p.kill()
            p.join()
        codes[p.exitcode] += 1
    print(f"survived {survived} of {n}; exit codes {dict(codes)}", flush=True)
