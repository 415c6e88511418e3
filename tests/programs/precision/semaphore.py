"""A connection pool (a Semaphore of 2 permits) and a lock, taken in opposite orders."""
import threading

pool = threading.Semaphore(2)
table_lock = threading.Lock()
first_done = threading.Event()


def query():
    with pool:
        with table_lock:  # pool -> table
            pass
    first_done.set()


def migrate():
    first_done.wait(10)
    with table_lock:
        with pool:  # table -> pool
            pass


threads = [threading.Thread(target=query, name="query"),
           threading.Thread(target=migrate, name="migrate")]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("done")
