"""Run under `python -m lockwatch`: three locks with a declared order, and an audit thread that
takes the last one then the first one (against the declared order, without any cycle)."""
import threading

import lockwatch

orders_lock = threading.Lock()
payments_lock = threading.Lock()
audit_lock = threading.Lock()
lockwatch.order(orders_lock, payments_lock, audit_lock)


def pay():
    with orders_lock:
        with payments_lock:  # in the declared order
            pass


def audit():
    with audit_lock:
        with orders_lock:  # audit before orders: against the declared order
            pass


for target in (pay, audit):
    t = threading.Thread(target=target, name=target.__name__)
    t.start()
    t.join()
print("done")
