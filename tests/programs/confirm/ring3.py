"""A ring over three locks and three threads started together: x->y, y->z, z->x."""
import threading
import time

x = threading.Lock()
y = threading.Lock()
z = threading.Lock()


def step(first, second, delay):
    time.sleep(delay)
    with first:
        with second:
            pass


threads = [threading.Thread(target=step, args=(x, y, 0.0), name="xy"),
           threading.Thread(target=step, args=(y, z, 0.03), name="yz"),
           threading.Thread(target=step, args=(z, x, 0.06), name="zx")]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("finished without hanging")
