"""Two threads started together: one takes a then b, the other b then a a moment later.
Never hangs on its own (the first is done long before the second starts its inversion);
`--confirm` makes it deadlock. It prints its arguments, cwd and $CONFIRM_PROBE first (a
confirmation run must see the same), and exits with the status given as its first argument."""
import os
import sys
import threading
import time

print("argv:", sys.argv[1:], "cwd:", os.getcwd(), "probe:", os.environ.get("CONFIRM_PROBE"), flush=True)

a = threading.Lock()
b = threading.Lock()


def forward():
    with a:
        with b:  # <forward-b>
            pass


def backward():
    time.sleep(0.05)  # a moment later
    with b:
        with a:  # <backward-a>
            pass


threads = [threading.Thread(target=forward, name="forward"), threading.Thread(target=backward, name="backward")]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("finished without hanging")
sys.exit(int(sys.argv[1]) if sys.argv[1:] else 0)
