"""Names a developer recognises: Class.attr for attributes set in methods (annotated or not),
Class.field for dataclass fields (two dataclasses, two sites), module variables, a factory's
callers as the sites of its locks, lockwatch.name() first; instances of one site told apart in
words. Real threads, in a subprocess (tests/programs/names.py) and in this process."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support import PROGRAMS, line_of, lockwatch, report_of

import lockwatch as lw
from lockwatch import stacks
from lockwatch.renderers import text

pytestmark = pytest.mark.timeout(180)

NAMES = PROGRAMS / "names.py"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("names")
    result = lockwatch("--json", str(tmp / "r.json"), str(NAMES), cwd=tmp)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return report_of(tmp / "r.json")


def site_of(report: dict[str, Any], name: str) -> str:
    [site] = [lk["site"] for lk in report["locks"] if lk["name"] == name]
    return site


@pytest.mark.parametrize("name, needle", [
    ("Account._lock", "self._lock: threading.Lock = threading.Lock()"),  # annotated
    ("Ledger._lock", "self._lock = threading.Lock()"),
    ("lock_a", "lock_a: Lock = Lock()"),  # module level, annotated
    ("lock_b", "lock_b = threading.Lock()"),
    ("Scheduler._jobstores_lock", "self._jobstores_lock = self._create_lock()"),
    ("Scheduler._executors_lock", "self._executors_lock = self._create_lock()"),
    ("the audit trail", 'named = lockwatch.name(threading.Lock(), "the audit trail")'),
])
def test_each_lock_is_named_and_placed_as_its_code_says(report: dict[str, Any], name: str, needle: str) -> None:
    assert site_of(report, name) == f"{NAMES}:{line_of(NAMES, needle)}"


def test_a_dataclass_field_is_placed_at_its_definition(report: dict[str, Any]) -> None:
    assert site_of(report, "Order.lock") == f"{NAMES}:{line_of(NAMES, 'class Order:') + 1}"
    assert site_of(report, "Invoice.lock") == f"{NAMES}:{line_of(NAMES, 'class Invoice:') + 1}"


def test_no_site_is_a_generated_function_s(report: dict[str, Any]) -> None:
    assert not any("<string>" in lk["site"] for lk in report["locks"]), report["locks"]


def cycles(report: dict[str, Any]) -> set[frozenset[str]]:
    return {frozenset(lk["name"] for lk in p["locks"]) for p in report["potential_deadlocks"]}


def test_two_dataclasses_taken_in_opposite_orders_are_a_cycle_between_two_sites(report: dict[str, Any]) -> None:
    # Both fields were made by dataclasses' generated __init__ ("<string>"): one site before,
    # so the inversion was a self-loop of one site, and was missed.
    assert frozenset({"Order.lock", "Invoice.lock"}) in cycles(report)
    [p] = [p for p in report["potential_deadlocks"]
           if {lk["name"] for lk in p["locks"]} == {"Order.lock", "Invoice.lock"}]
    assert len({lk["key"] for lk in p["locks"]}) == 2


def test_a_factory_s_locks_are_told_apart_by_their_callers(report: dict[str, Any]) -> None:
    assert frozenset({"Scheduler._jobstores_lock", "Scheduler._executors_lock"}) in cycles(report)
    assert not any("_create_lock" in lk["function"] or "return threading.RLock()" in lk["site"]
                   for lk in report["locks"])


def test_attributes_of_two_classes_are_told_apart(report: dict[str, Any]) -> None:
    assert frozenset({"Account._lock", "Ledger._lock"}) in cycles(report)


# -- in this process: instances of one site, the pay/refund pattern ---------------------------------


class Account:
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._lock = threading.Lock()  # <account-lock>


def test_instances_of_one_site_are_numbered_in_words(threads: Any, line_of: Any) -> None:
    def pay(a: Account, b: Account) -> None:
        with a._lock:
            with b._lock:
                pass

    def refund(a: Account, b: Account) -> None:
        with b._lock:
            with a._lock:
                pass

    with lw.watching() as session:
        alice, bob = Account("alice"), Account("bob")
        threads.run(pay, alice, bob)
        threads.run(refund, alice, bob)
    [p] = session.report().potential_deadlocks
    assert [lk.name for lk in p.locks] == ["Account._lock (instance 1)", "Account._lock (instance 2)"]
    assert {lk.line for lk in p.locks} == {line_of("account-lock")}
    rendered = text.render(session.report())
    assert "Account._lock (instance 1) -> Account._lock (instance 2) -> Account._lock (instance 1)" in rendered
    assert "#" not in p.locks[0].name


def test_dataclass_fields_in_this_process(threads: Any, line_of: Any) -> None:
    def nest(x: Any, y: Any) -> None:
        with x:
            with y:
                pass

    with lw.watching() as session:
        # Defined once lockwatch is on: default_factory=threading.Lock is looked up here.
        @dataclass
        class Order:
            lock: threading.Lock = field(default_factory=threading.Lock)  # <order-field>

        @dataclass
        class Invoice:
            lock: threading.Lock = field(default_factory=threading.Lock)  # <invoice-field>

        o, i = Order(), Invoice()
        threads.run(nest, o.lock, i.lock)
        threads.run(nest, i.lock, o.lock)
    [p] = session.report().potential_deadlocks
    assert sorted((lk.name, lk.line) for lk in p.locks) == [
        ("Invoice.lock", line_of("invoice-field")), ("Order.lock", line_of("order-field"))]


@pytest.mark.parametrize("line, name, on_self", [
    ("self._lock: threading.Lock = threading.Lock()", "_lock", True),  # not the annotation's "Lock"
    ("lock_a: Lock = Lock()", "lock_a", False),
    ("cls.registry_lock = threading.RLock()", "registry_lock", True),
    ("other.lock = threading.Lock()", "lock", False),
    ("x = Holder(guard=threading.Lock())", "guard", False),  # the call's own role, not the target
])
def test_targets_from_the_syntax_tree(tmp_path: Path, line: str, name: str, on_self: bool) -> None:
    src = tmp_path / "t.py"
    src.write_text(f"import threading\n{line}\n")
    assert stacks.derived_target(str(src), 2) == (name, on_self)


def test_a_class_in_the_name_leaves_fingerprints_as_they_were() -> None:
    """Baselines and suppressions by fingerprint written before names carried their class still
    match: the fingerprint's part for `Account._lock` is the one `_lock` had."""
    from support import lock_stats

    from lockwatch.analysis import stable_site

    stats = lock_stats("Account._lock", "Lock", "/proj/bank.py", 7, stable_file="bank.py")
    assert stable_site(stats, stats.key) == "bank.py:__init__:_lock:Lock"
    named = lock_stats("ledger.lock", "Lock", "/proj/bank.py", 8, stable_file="bank.py", named=True)
    assert stable_site(named, named.key) == "bank.py:__init__:ledger.lock:Lock"  # lockwatch.name(): as given
