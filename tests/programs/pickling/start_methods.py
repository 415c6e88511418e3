"""A Manager and a process pool with the start method given in argv[1] (spawn, forkserver):
both pickle threading's factories or objects holding them to send to the new process."""
import concurrent.futures
import multiprocessing
import sys


def square(x):
    return x * x


if __name__ == "__main__":
    ctx = multiprocessing.get_context(sys.argv[1])
    with ctx.Manager() as manager:
        shared = manager.dict()
        with manager.Lock():
            shared["a"] = 1
        with manager.RLock():
            shared["b"] = 2
        print("manager", sorted(shared.items()))
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as pool:
        print("pool", list(pool.map(square, range(4))))
