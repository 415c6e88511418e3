"""Shared fixtures: real threads against lockwatch, and a sample project for the pytest plugin."""
from __future__ import annotations

import functools
import os
import threading
from typing import Any, Callable, Optional

import pytest
from support import marker_line

import lockwatch

JOIN_TIMEOUT = 60.0  # seconds: a thread still alive after this is a failure (a hang), never slow


class Worker:
    """A thread running ``target(*args)``; ``join()`` waits (bounded), then re-raises what the
    target raised, or returns what it returned."""

    def __init__(self, target: Callable[..., Any], args: tuple, name: Optional[str]) -> None:
        self.target = target
        self.args = args
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self.result = self.target(*self.args)
        except BaseException as exc:  # handed to join()
            self.error = exc

    def start(self) -> Worker:
        self.thread.start()
        return self

    def join(self, timeout: float = JOIN_TIMEOUT) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"thread {self.thread.name!r} still running after {timeout}s"
        if self.error is not None:
            raise self.error
        return self.result


class Threads:
    def __init__(self) -> None:
        self.started: list[Worker] = []

    def start(self, target: Callable[..., Any], *args: Any, name: Optional[str] = None) -> Worker:
        """Start ``target(*args)`` in a new thread (named ``name``) and return its Worker."""
        w = Worker(target, args, name)
        self.started.append(w)
        return w.start()

    def run(self, target: Callable[..., Any], *args: Any, name: Optional[str] = None) -> Any:
        """Run ``target(*args)`` in a new thread to completion (one thread at a time: an
        inversion recorded this way never really deadlocks)."""
        return self.start(target, *args, name=name).join()

    def join_all(self) -> None:
        for w in self.started:
            w.join()


@pytest.fixture
def threads():
    """Start and join test threads; every thread is joined (with a timeout) at teardown."""
    t = Threads()
    yield t
    alive = []
    for w in t.started:
        w.thread.join(JOIN_TIMEOUT)
        if w.thread.is_alive():
            alive.append(w.thread.name)
    assert not alive, f"threads still running at teardown: {alive}"


@pytest.fixture
def lockwatch_off():
    """The test starts and ends with lockwatch disabled (a session left running by another test
    would be reused by watching() with its old state, and would hide a missing restore)."""
    current = lockwatch.current_session()
    if current is not None and current.active:
        lockwatch.disable()
    yield
    current = lockwatch.current_session()
    if current is not None and current.active:
        lockwatch.disable()
        pytest.fail("the test left lockwatch enabled")


@pytest.fixture(name="line_of")
def fixture_line_of(request: pytest.FixtureRequest) -> Callable[[str], int]:
    """``line_of("tag")``: the line of the test module carrying the comment ``# <tag>`` (exactly
    one): expected line numbers come from the source, never hard-coded."""
    return functools.partial(marker_line, request.path)


@pytest.fixture
def shop_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], pytest.Pytester]:
    """``shop_project(source)``: a pytester project, with no LOCKWATCH* variables set, whose
    shop.py is ``source`` (defining checkout() and restock()), tested by test_checkout (which runs
    checkout() in a thread named "checkout") and test_restock."""

    def make(source: str) -> pytest.Pytester:
        for k in list(os.environ):
            if k.startswith("LOCKWATCH") and k != "LOCKWATCH_PURE_PYTHON":  # the core stays
                monkeypatch.delenv(k)
        pytester.makepyfile(shop=source)
        pytester.makepyfile(
            test_cart="""
                import threading
                from shop import checkout

                def test_checkout():
                    t = threading.Thread(target=checkout, name="checkout")
                    t.start()
                    t.join()
            """,
            test_stock="""
                from shop import restock

                def test_restock():
                    assert restock() == "restocked"
            """,
        )
        return pytester

    return make
