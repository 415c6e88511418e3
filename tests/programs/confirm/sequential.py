"""The sequential AB/BA: the first thread is joined before the second starts, so the two orders
never overlap in this program (still a risk for code that runs them concurrently)."""
import threading

a = threading.Lock()
b = threading.Lock()


def forward():
    with a:
        with b:
            pass


def backward():
    with b:
        with a:
            pass


first = threading.Thread(target=forward, name="forward")
first.start()
first.join()
second = threading.Thread(target=backward, name="backward")
second.start()
second.join()
print("finished without hanging")
