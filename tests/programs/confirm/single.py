"""A single-thread inversion: the main thread takes a then b, later b then a."""
import threading

a = threading.Lock()
b = threading.Lock()
with a:
    with b:
        pass
with b:
    with a:
        pass
print("finished without hanging")
