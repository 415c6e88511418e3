"""`pytest --lockwatch --lockwatch-confirm`: re-run, concurrently, the tests whose edges make a cycle.

Tests are written to run one at a time, so an inversion split between two tests never hangs a
suite. Confirming it re-runs, in a pytest subprocess, the tests during which the cycle's edges
were recorded: their fixtures set up one test after the other as pytest would, then their bodies
at the same time, one thread each, with the steered schedule of confirm.py; then their teardowns.
A confirmation means: these code paths deadlock when they run at the same time, as they may in
production. Imported only when the plugin is switched on with confirmation asked for.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any, Optional, Union

import pytest

from . import confirm
from .model import PotentialDeadlock

MEANING = ("the bodies of the tests during which its edges were recorded were run at the same time, "
           "one thread each, in a pytest subprocess (fixtures set up as pytest would), with the "
           "threads held back before the acquisitions that close the cycle, and they really "
           "deadlocked: these code paths deadlock when they run at the same time, as they may in "
           "production (tests themselves run one at a time)")
SUMMARY = ("lockwatch --lockwatch-confirm: for each potential deadlock, the tests during which its edges "
           "were recorded were re-run in a pytest subprocess, their bodies at the same time in one "
           "thread each (fixtures set up as pytest would), steered towards the cycle. Tests run one at "
           "a time, so CONFIRMED means: these code paths deadlock when they run concurrently, as they "
           "may in production.")
STEER_OPTION = "--lockwatch-steer"  # the plan of a confirmation run (the subprocess's own option)
JOIN_TIMEOUT = 60.0  # a body still running then is left (the parent stops the run anyway)


# -- the run of the suite: which tests, the re-runs ----------------------------------------------

def tests_of(p: PotentialDeadlock) -> list[str]:
    """The test ids during which the cycle's edges were recorded, in the cycle's order."""
    out: list[str] = []
    for e in p.edges:
        if e.context and e.context != "collection" and e.context not in out:
            out.append(e.context)
    return out


class ConfirmPlugin:
    """Registered next to the lockwatch plugin when confirmation is asked for: before the run's
    reports are written, each potential deadlock of the final report gets its confirmation."""

    def __init__(self, config: pytest.Config, lockwatch: Any) -> None:
        self.config = config
        self.lockwatch = lockwatch  # pytest_plugin.LockwatchPlugin
        self.env = dict(os.environ)
        self.started = time.monotonic()
        self.done = False

    def command_for(self, p: PotentialDeadlock) -> Union[list[str], str]:
        tests = tests_of(p)
        if not tests:
            return "not attempted: its edges were not recorded during a test (at import or collection)"
        if any(e.context is None or e.context == "collection" for e in p.edges):
            return "not attempted: some of its edges were not recorded during a test"
        if len(tests) == 1 and p.triage == "single-thread":
            return (f"not attempted: every edge was taken by the one thread {p.edges[0].thread!r} of "
                    f"the one test {tests[0]}")
        reason = confirm.not_attempted(p, apart=len(tests) > 1)
        if reason is not None:
            return reason
        config = self.config
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                "-p", "no:lockwatch", "-p", "lockwatch.confirm_pytest", "--rootdir", str(config.rootpath)]
        if config.inipath:
            argv += ["-c", str(config.inipath)]
        return [*argv, *tests, STEER_OPTION]

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.lockwatch.is_worker or self.done:
            return
        self.done = True
        report = self.lockwatch.final_report()  # kept: the reports written later have the marks
        knobs = self.lockwatch.settings.knobs
        confirm.confirm_report(report, self.command_for, env=self.env, cwd=str(self.config.rootpath),
                               runs=knobs.confirm_runs, pause=knobs.confirm_pause,
                               first_run_s=time.monotonic() - self.started, meaning=MEANING)
        for p in report.potential_deadlocks:
            if p.confirmation is not None and p.confirmation.runs:
                p.confirmation.tests = tests_of(p)

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        if self.lockwatch.is_worker:
            return
        found = self.lockwatch.final_report().potential_deadlocks
        confirmed = sum(1 for p in found if p.confirmation is not None and p.confirmation.status == "confirmed")
        terminalreporter.write_line(SUMMARY)
        terminalreporter.write_line(f"lockwatch: {confirmed} of {len(found)} potential deadlock(s) confirmed")


# -- a confirmation run (the pytest subprocess) --------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(STEER_OPTION, default=None, help="(lockwatch's own: the plan of a confirmation run)")


_state: dict[str, Any] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    plan_path = early_config.known_args_namespace.lockwatch_steer
    if not plan_path:
        return
    import _pytest
    import pluggy

    from . import stacks

    for module in (_pytest, pluggy):  # a body's stack ends at the test function
        if module.__file__:
            stacks.add_stop_dir(module.__file__)
    with open(plan_path) as f:
        plan = json.load(f)
    steer = confirm.Steer(plan)
    _state.update(plan=plan, steer=steer, session=confirm.start_session(steer, plan))


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> Optional[bool]:
    if not _state:
        return None
    from _pytest.runner import SetupState

    items = list(session.items)
    states: list[tuple[pytest.Item, SetupState]] = []
    for item in items:  # set up one after the other, as pytest would (each in its own chain)
        state = SetupState()
        session._setupstate = state
        try:
            state.setup(item)
        except BaseException as exc:  # noqa: BLE001  (reported, as pytest would report an error)
            print(f"lockwatch: setting up {item.nodeid} failed: {type(exc).__name__}: {exc}", flush=True)
            _teardown(session, state)
            continue
        states.append((item, state))
    threads = [threading.Thread(target=_body, args=(item,), name=item.nodeid, daemon=True) for item, _ in states]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_TIMEOUT)
    for _item, state in reversed(states):
        _teardown(session, state)
    steer = _state["steer"]
    steer.lives[0][2] = time.monotonic()
    confirm.write_result(steer, _state["plan"], _state["session"])
    return True


def _body(item: pytest.Item) -> None:
    try:
        item.runtest()
    except BaseException as exc:  # noqa: BLE001  (a body that fails is shown in the output)
        print(f"lockwatch: {item.nodeid} failed: {type(exc).__name__}: {exc}", flush=True)


def _teardown(session: pytest.Session, state: Any) -> None:
    session._setupstate = state
    try:
        state.teardown_exact(None)
    except BaseException as exc:  # noqa: BLE001
        print(f"lockwatch: teardown failed: {type(exc).__name__}: {exc}", flush=True)
