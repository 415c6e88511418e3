"""A producer/consumer pipeline on a condition variable, with a bounded buffer.

    python -m lockwatch examples/condition_pipeline.py

Finding: no potential deadlock; the contention tables show the ``buffer_ready`` Condition (its
lock is released while a thread waits in wait() and taken again after, and lockwatch counts the
hold time accordingly).
"""
import collections
import threading

buffer_ready = threading.Condition()
buffer: collections.deque = collections.deque()
CAPACITY = 8
DONE = object()


def producer(n):
    for i in range(n):
        with buffer_ready:
            buffer_ready.wait_for(lambda: len(buffer) < CAPACITY)
            buffer.append(i)
            buffer_ready.notify_all()
    with buffer_ready:
        buffer_ready.wait_for(lambda: len(buffer) < CAPACITY)
        buffer.append(DONE)
        buffer_ready.notify_all()


def consumer(results):
    while True:
        with buffer_ready:
            buffer_ready.wait_for(lambda: buffer)
            item = buffer.popleft()
            buffer_ready.notify_all()
        if item is DONE:
            return
        results.append(item * item)


def main():
    results: list = []
    threads = [threading.Thread(target=producer, args=(2000,), name="producer"),
               threading.Thread(target=consumer, args=(results,), name="consumer")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("consumed", len(results), "items")


if __name__ == "__main__":
    main()
