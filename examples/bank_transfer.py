"""Per-instance inversion: every account has its own lock, and transfer() locks the source first.

    python -m lockwatch examples/bank_transfer.py

Finding: one potential deadlock, instance scope, between two instances of the same lock
(``Account.lock`` created in ``Account.__init__``): transfer(alice, bob) takes alice's lock then
bob's, transfer(bob, alice) takes bob's then alice's. Compare examples/consistent_order.py, which
takes the locks in a fixed order and is clean.
"""
import threading


class Account:
    def __init__(self, owner, balance):
        self.owner = owner
        self.balance = balance
        self.lock = threading.Lock()


def transfer(src, dst, amount):
    with src.lock:
        with dst.lock:  # the order depends on the call: src first
            src.balance -= amount
            dst.balance += amount


def main():
    alice, bob = Account("alice", 100), Account("bob", 100)
    t1 = threading.Thread(target=transfer, args=(alice, bob, 30), name="pay-bob")
    t1.start()
    t1.join()
    t2 = threading.Thread(target=transfer, args=(bob, alice, 10), name="refund-alice")
    t2.start()
    t2.join()
    print("balances:", alice.balance, bob.balance)


if __name__ == "__main__":
    main()
