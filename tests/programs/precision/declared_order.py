"""lockwatch.order() and lockwatch.order_key() under lockwatch.watching(); prints what was seen
as JSON (one object) for the test to check. Scenario from argv[1]."""
import json
import sys
import threading

import lockwatch

scenario = sys.argv[1]
out = {}

with lockwatch.watching() as session:
    if scenario == "order":
        orders_lock = threading.Lock()
        payments_lock = threading.Lock()
        lockwatch.order(orders_lock, payments_lock)  # orders before payments

        def refund():
            with payments_lock:
                with orders_lock:  # against the declared order
                    # Right after this one acquisition, before orders -> payments was ever taken.
                    out["violations_inside"] = [v.to_dict() for v in session.report().violations]
                    out["cycles_inside"] = len(session.report().potential_deadlocks)

        t = threading.Thread(target=refund, name="refunder")
        t.start()
        t.join()

    elif scenario in ("key-wrong", "key-right"):
        class Account:
            def __init__(self, number):
                self.number = number
                self.balance = 100
                self.lock = lockwatch.order_key(threading.Lock(), number)

        accounts = {n: Account(n) for n in (1, 2, 3)}

        def transfer(src, dst, amount):
            if scenario == "key-right":  # the discipline: lowest account number first
                first, second = sorted((src, dst), key=lambda a: a.number)
            else:  # the bug: the payer's lock first
                first, second = src, dst
            with first.lock:
                with second.lock:
                    src.balance -= amount
                    dst.balance += amount
                    if "violations_inside" not in out:
                        out["violations_inside"] = [v.to_dict() for v in session.report().violations]

        pairs = [(2, 1), (3, 1), (1, 3), (3, 2)] if scenario == "key-right" else [(2, 1)]
        workers = [threading.Thread(target=lambda a=a, b=b: [transfer(accounts[a], accounts[b], 1) for _ in range(200)],
                                    name=f"transfer-{a}-{b}") for a, b in pairs]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        out["balances"] = sorted(a.balance for a in accounts.values())
        out["cycles"] = len(session.report().potential_deadlocks)

    elif scenario == "same-site":
        locks = [threading.Lock() for _ in range(2)]
        try:
            lockwatch.order(*locks)
        except ValueError as exc:
            out["error"] = str(exc)

    elif scenario == "not-instrumented":
        import _thread

        raw = _thread.allocate_lock()
        mine = threading.Lock()
        try:
            lockwatch.order(mine, raw)
        except ValueError as exc:
            out["error"] = str(exc)
        try:
            lockwatch.order_key(raw, 1)
        except ValueError as exc:
            out["key_error"] = str(exc)

    out["violations"] = [v.to_dict() for v in session.report().violations]

print(json.dumps(out))
