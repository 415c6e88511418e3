"""Locks named the way their code names them: attributes with their class, annotated assignments,
dataclass fields, module variables, factory functions' callers, lockwatch.name().

    python -m lockwatch --json report.json tests/programs/names.py

Findings: Account._lock -> Ledger._lock -> ... (one method-attribute pair, one annotated), Order.lock
and Invoice.lock (two dataclasses, two sites) taken in both orders, the two locks that
Scheduler._create_lock makes for two attributes taken in both orders, each an instance cycle
between two sites; module-level lock_a and lock_b and a lock named with lockwatch.name().
"""
import threading
from dataclasses import dataclass, field
from threading import Lock

import lockwatch

lock_a: Lock = Lock()
lock_b = threading.Lock()


class Account:
    def __init__(self) -> None:
        self._lock: threading.Lock = threading.Lock()


class Ledger:
    def __init__(self) -> None:
        self._lock = threading.Lock()


@dataclass
class Order:
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Invoice:
    lock: threading.Lock = field(default_factory=threading.Lock)


class Scheduler:
    def _create_lock(self):
        """Creates a reentrant lock object (APScheduler's pattern)."""
        return threading.RLock()

    def __init__(self) -> None:
        self._jobstores_lock = self._create_lock()
        self._executors_lock = self._create_lock()


account, ledger, order, invoice, scheduler = Account(), Ledger(), Order(), Invoice(), Scheduler()
named = lockwatch.name(threading.Lock(), "the audit trail")


def forwards() -> None:
    with lock_a, lock_b, named:
        pass
    with account._lock:
        with ledger._lock:
            pass
    with order.lock:
        with invoice.lock:
            pass
    with scheduler._jobstores_lock:
        with scheduler._executors_lock:
            pass


def backwards() -> None:
    with ledger._lock:
        with account._lock:
            pass
    with invoice.lock:
        with order.lock:
            pass
    with scheduler._executors_lock:
        with scheduler._jobstores_lock:
            pass


for target in (forwards, backwards):
    t = threading.Thread(target=target)
    t.start()
    t.join(60)
