"""An inversion whose two orders always run under one gate lock: it cannot deadlock."""
import threading

gate = threading.Lock()
a = threading.Lock()
b = threading.Lock()


def forward():
    with gate:
        with a:
            with b:
                pass


def backward():
    with gate:
        with b:
            with a:
                pass


threads = [threading.Thread(target=forward, name="forward"), threading.Thread(target=backward, name="backward")]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("finished without hanging")
