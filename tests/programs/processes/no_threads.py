"""A program that never uses threads. ``late``: import threading at the end and take two locks
in both orders (a start-up hook waiting for threading switches on then)."""
import sys

print(f"threading imported: {'threading' in sys.modules}", flush=True)
if sys.argv[1:] == ["late"]:
    import threading

    a = threading.Lock()
    b = threading.Lock()
    with a:
        with b:
            pass
    with b:
        with a:
            pass
    print(f"lock type: {type(a).__module__}.{type(a).__name__}", flush=True)
