"""Version 3: fulfilment now takes the inventory lock first as well (the inversion is fixed)."""
import threading

inventory_lock = threading.Lock()
orders_lock = threading.Lock()
billing_lock = threading.Lock()
ledger_lock = threading.Lock()
inventory = {"widget": 0}
orders = []
step = threading.Event()


def receive(item, n):
    with inventory_lock:
        inventory[item] += n
        with orders_lock:  # inventory -> orders
            pending = [o for o in orders if o == item]


def fulfil(item):
    with inventory_lock:
        inventory[item] -= 1
        with orders_lock:  # inventory -> orders, as in receive()
            orders.append(item)


def invoice():
    with billing_lock:
        with ledger_lock:  # billing -> ledger (consistent everywhere in v1)
            pass


def receiving():
    receive("widget", 5)
    invoice()
    step.set()


def fulfilment():
    step.wait(10)
    fulfil("widget")


threads = [threading.Thread(target=receiving, name="receiving"),
           threading.Thread(target=fulfilment, name="fulfilment")]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("stock", inventory)
