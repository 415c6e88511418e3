import threading


class Ledger:
    def __init__(self):
        self.entries_lock = threading.Lock()
        self.totals_lock = threading.RLock()
        self.entries = []
        self.total = 0

    def post(self, amount):
        with self.entries_lock:
            self.entries.append(amount)
            with self.totals_lock:  # entries -> totals
                self.total += amount

    def recompute(self):
        with self.totals_lock:
            with self.entries_lock:  # totals -> entries
                self.total = sum(self.entries)
