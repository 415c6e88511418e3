"""A bank on a thread pool that logs: concurrent.futures' and logging's locks are taken far more
often than the program's one lock.

    python -m lockwatch tests/programs/pool_logging.py

Finding: no potential deadlock; the program's Bank._lock leads the tables, the standard library's
locks are folded (counted) unless --show-library.
"""
import concurrent.futures
import logging
import threading

logging.basicConfig(level=logging.INFO, format="%(message)s")
log = logging.getLogger("bank")


class Bank:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.paid = 0

    def pay(self, n: int) -> None:
        with self._lock:
            self.paid += n
            log.info("paid %s", n)  # logging's handler lock, taken while holding Bank._lock


bank = Bank()
with concurrent.futures.ThreadPoolExecutor(4) as pool:
    list(pool.map(bank.pay, range(40)))
print("paid", bank.paid)
