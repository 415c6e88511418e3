"""Every edge records its own acquisitions' stacks: two instances of one site taken in both orders
by different code (pay takes a then b, refund b then a) show refund's stacks on the reverse edge,
in the text, JSON and HTML reports. Real threads."""
from __future__ import annotations

import concurrent.futures
import json
import struct
import sys
import threading
from typing import Any

import pytest

import lockwatch as lw
from lockwatch import proxies, recorder, stacks
from lockwatch.model import SavedReport
from lockwatch.renderers import html, jsonreport, text

pytestmark = pytest.mark.timeout(120)


class Account:
    def __init__(self) -> None:
        self._lock = threading.Lock()


def pay(a: Account, b: Account) -> None:
    with a._lock:  # <pay-a>
        with b._lock:  # <pay-b>
            pass


def refund(a: Account, b: Account) -> None:
    with b._lock:  # <refund-b>
        with a._lock:  # <refund-a>
            pass


@pytest.fixture
def pay_refund(threads: Any) -> Any:
    with lw.watching() as session:
        alice, bob = Account(), Account()
        threads.run(pay, alice, bob, name="payer")
        threads.run(refund, alice, bob, name="refunder")
        report = session.report()
    return report


def innermost(stack: list[str]) -> str:
    return stack[-1]


def test_the_reverse_edge_has_refund_s_stacks(pay_refund: Any, line_of: Any) -> None:
    [p] = pay_refund.potential_deadlocks
    by_thread = {e.thread: e for e in p.edges}
    forward, reverse = by_thread["payer"], by_thread["refunder"]
    assert innermost(forward.held_stack).endswith(f":{line_of('pay-a')} in pay")
    assert innermost(forward.acquire_stack).endswith(f":{line_of('pay-b')} in pay")
    assert innermost(reverse.held_stack).endswith(f":{line_of('refund-b')} in refund")
    assert innermost(reverse.acquire_stack).endswith(f":{line_of('refund-a')} in refund")


def test_text_json_and_html_show_refund(pay_refund: Any, line_of: Any) -> None:
    rendered = text.render(pay_refund)
    assert f"test_edge_stacks.py:{line_of('refund-b')} in refund" in rendered
    assert f"test_edge_stacks.py:{line_of('refund-a')} in refund" in rendered

    data = json.loads(jsonreport.render(pay_refund))
    [p] = data["potential_deadlocks"]
    [reverse] = [e for e in p["edges"] if e["thread"] == "refunder"]
    assert reverse["held_stack"][-1].endswith(f":{line_of('refund-b')} in refund")
    assert reverse["acquire_stack"][-1].endswith(f":{line_of('refund-a')} in refund")
    # The whole graph's rows refer to the report's stack tables: read them back through the model.
    edges = SavedReport.from_dict(data).snapshot.instance_edges
    refund_edges = [e for e in edges if e.thread == "refunder"]
    assert refund_edges and all("in refund" in e.acquire_stack[-1] for e in refund_edges)

    page = html.render(pay_refund)
    assert f"test_edge_stacks.py:{line_of('refund-a')}</span> in <span class=\"func\">refund</span>" in page


def test_one_place_is_captured_once(threads: Any) -> None:
    """as_completed() over many futures makes ~8 edges per future between two sites, all from one
    place: the stacks are captured once per place, not once per edge (benchmarks/many_futures.py)."""
    with lw.watching() as session:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(pow, 2, i) for i in range(300)]
            assert sum(1 for _ in concurrent.futures.as_completed(futures)) == 300
        edges = len(session.snapshot().instance_edges)
        places = len(recorder.state.edge_stacks)
    assert edges > 300
    assert places < 20, places


class Pair:
    def __init__(self) -> None:
        self.first = threading.Lock()
        self.second = threading.Lock()


def take_both(pair: Pair) -> None:
    with pair.first:  # <take-first>
        with pair.second:  # <take-second>
            pass


def through(pair: Pair) -> None:
    take_both(pair)  # <through>


def from_north(pair: Pair) -> None:
    through(pair)  # <north>


def from_south(pair: Pair) -> None:
    through(pair)  # <south>


@pytest.mark.parametrize("order", ["north first", "south first"])
def test_one_line_from_two_callers_is_two_stacks(order: str, line_of: Any) -> None:
    """Edges of one site pair, taken at the same two lines through the same function but reached
    from different callers, each show their own caller (pebble's suite showed, for a test's edge, the stacks of the same
    lines reached from an earlier test)."""
    callers = [from_north, from_south] if order == "north first" else [from_south, from_north]
    with lw.watching() as session:
        pairs = {caller.__name__: Pair() for caller in callers}
        for caller in callers:
            caller(pairs[caller.__name__])
        edges = {e.src_instance: e for e in session.snapshot().instance_edges}
    for name, tag in (("from_north", "north"), ("from_south", "south")):
        e = edges[pairs[name].first._serial]  # type: ignore[attr-defined]
        assert e.dst_instance == pairs[name].second._serial  # type: ignore[attr-defined]
        caller_frame = f"test_edge_stacks.py:{line_of(tag)} in {name}"
        # the two innermost frames are the same for both; the caller above them is not
        for stack, line in ((e.held_stack, "take-first"), (e.acquire_stack, "take-second")):
            assert stack[-1].endswith(f":{line_of(line)} in take_both"), stack
            assert stack[-2].endswith(f":{line_of('through')} in through"), stack
            assert stack[-3].endswith(caller_frame), stack


def _keys_at(depth: int, out: list) -> None:
    if depth:
        _keys_at(depth - 1, out)
        return
    f = sys._getframe().f_back  # the caller waits for this call: its instruction stays put
    out.append((recorder.chain_key(f), stacks.chain_key(f), len(stacks.capture(f, 10_000))))


@pytest.mark.skipif(proxies.CORE != "c", reason="this process runs the pure-Python core")
def test_the_compiled_stack_key_is_the_python_one() -> None:
    """lockwatch._core.chain_key, which the compiled core's recorder uses, answers what
    stacks.chain_key answers (packed as bytes), at every depth (the test's stack ends at pytest's
    frames)."""
    assert recorder.chain_key is not stacks.chain_key
    assert recorder.chain_key(None) == b"" and stacks.chain_key(None) == ()
    for depth in range(0, 60, 7):
        out: list = []
        _keys_at(depth, out)
        [(compiled, python, shown)] = out
        assert compiled == struct.pack("Pq" * (len(python) // 2), *python)  # the same, packed
        assert len(python) == 2 * shown  # no internal frame here: one pair per frame shown
    with pytest.raises(TypeError):
        recorder.chain_key(42)
