"""Post from one thread, recompute from another: an entries/totals inversion."""
import threading

from ledger.accounts import Ledger

ledger = Ledger()
posted = threading.Event()


def poster():
    for amount in (5, 7):
        ledger.post(amount)
    posted.set()


def auditor():
    posted.wait(10)
    ledger.recompute()


threads = [threading.Thread(target=poster, name="poster"), threading.Thread(target=auditor, name="auditor")]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("total", ledger.total)
