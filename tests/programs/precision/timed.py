"""The cycle closes only through a timed acquire: the flusher gives up after a second."""
import threading

queue_lock = threading.Lock()
disk_lock = threading.Lock()
first_done = threading.Event()


def producer():
    with queue_lock:
        with disk_lock:  # queue -> disk
            pass
    first_done.set()


def flusher():
    first_done.wait(10)
    with disk_lock:
        if queue_lock.acquire(timeout=1):  # disk -> queue, timed
            try:
                pass
            finally:
                queue_lock.release()


threads = [threading.Thread(target=producer, name="producer"),
           threading.Thread(target=flusher, name="flusher")]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("done")
