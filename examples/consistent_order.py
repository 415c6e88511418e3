"""A clean program: account locks are always taken in one global order (by account number).

    python -m lockwatch --fail-on-cycle examples/consistent_order.py

Finding: no potential deadlock (exit status 0), although instances of one lock site are nested
in both call directions: taking them sorted by a key is a consistent order, which is not a cycle.
"""
import threading
from concurrent.futures import ThreadPoolExecutor


class Account:
    def __init__(self, number, balance):
        self.number = number
        self.balance = balance
        self.lock = threading.Lock()


def transfer(src, dst, amount):
    first, second = sorted((src, dst), key=lambda a: a.number)
    with first.lock:
        with second.lock:
            src.balance -= amount
            dst.balance += amount


def main():
    accounts = [Account(n, 1000) for n in range(8)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for i in range(200):
            src, dst = accounts[i % 8], accounts[(i * 5 + 3) % 8]
            if src is not dst:
                pool.submit(transfer, src, dst, 1)
    print("total:", sum(a.balance for a in accounts))


if __name__ == "__main__":
    main()
