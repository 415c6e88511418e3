"""A gevent program: monkey.patch_all() first, then threads (greenlets) sharing an RLock, a
Condition and a queue, yielding to each other while they hold them. Prints what it did and which
lock types threading now makes."""
from gevent import monkey

monkey.patch_all()

import queue  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

rlock = threading.RLock()
cond = threading.Condition()
jobs: queue.Queue = queue.Queue()
done = []


def worker(n):
    for i in range(5):
        with rlock:
            time.sleep(0)  # another greenlet runs while this one holds the lock
            with rlock:
                done.append((n, i))
        jobs.put(n)
    with cond:
        cond.notify_all()


threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join(30)
print("done", len(done), "queued", jobs.qsize())
print("Lock makes", type(threading.Lock()).__module__)
