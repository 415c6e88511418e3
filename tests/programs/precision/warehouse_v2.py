"""Version 2: the known inversion is still there, and a refund path now takes the ledger lock
then the billing lock (a new inversion)."""
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
    with orders_lock:
        orders.append(item)
        with inventory_lock:  # orders -> inventory
            inventory[item] -= 1


def invoice():
    with billing_lock:
        with ledger_lock:  # billing -> ledger (consistent everywhere in v1)
            pass


def refund():
    with ledger_lock:
        with billing_lock:  # ledger -> billing: new in v2
            pass


def receiving():
    receive("widget", 5)
    invoice()
    step.set()


def fulfilment():
    step.wait(10)
    fulfil("widget")
    refund()


threads = [threading.Thread(target=receiving, name="receiving"),
           threading.Thread(target=fulfilment, name="fulfilment")]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("stock", inventory)
