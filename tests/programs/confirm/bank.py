"""The bank-transfer inversion between instances of one site: transfer(a, b) locks the source
account then the destination, so concurrent transfers a->b and b->a can deadlock."""
import threading
import time


class Account:
    def __init__(self, name, balance):
        self.name = name
        self.balance = balance
        self.lock = threading.Lock()


def transfer(src, dst, amount):
    with src.lock:
        with dst.lock:
            src.balance -= amount
            dst.balance += amount


alice, bob = Account("alice", 100), Account("bob", 100)


def pay(src, dst, delay):
    time.sleep(delay)
    for _ in range(3):
        transfer(src, dst, 1)


threads = [threading.Thread(target=pay, args=(alice, bob, 0.0), name="alice-pays"),
           threading.Thread(target=pay, args=(bob, alice, 0.05), name="bob-pays")]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("finished without hanging:", alice.balance, bob.balance)
