"""The pytest plugin never passes or fails silently: the verdict of a pytest-xdist run, real
deadlocks in a test's threads, tracebacks without lockwatch's frames, the fixture without
--lockwatch. Always through runpytest_subprocess (an in-process run would patch our own threads)."""
from __future__ import annotations

from pathlib import Path

import pytest
from support import PACKAGE_DIR, SHOP

pytestmark = pytest.mark.timeout(900)  # several pytest runs in subprocesses, on a busy machine

CYCLE = "_cart_lock -> _stock_lock -> _cart_lock"

# Two threads of one test take two locks in opposite orders and really deadlock; a barrier makes
# sure both hold their first lock before either takes its second.
DEADLOCK = """
    import threading

    a = threading.Lock()
    b = threading.Lock()


    def take(first, second, ready):
        with first:
            ready.wait(120)
            with second:
                pass


    def test_worker_threads_deadlock():
        ready = threading.Barrier(2)
        one = threading.Thread(target=take, args=(a, b, ready), name="one")
        two = threading.Thread(target=take, args=(b, a, ready), name="two")
        one.start(); two.start()
        one.join(120); two.join(120)
        assert not one.is_alive() and not two.is_alive()


    def test_main_thread_deadlocks():
        c, d = threading.Lock(), threading.Lock()
        ready = threading.Barrier(2)
        other = threading.Thread(target=take, args=(d, c, ready), name="other")
        other.start()
        with c:
            ready.wait(120)
            with d:  # the main thread is the one lockwatch breaks
                pass
        other.join(120)


    def test_next():
        assert threading.Lock().acquire(timeout=5)
"""


@pytest.fixture
def split(pytester: pytest.Pytester) -> pytest.Pytester:
    """The shop's inversion split across two pytest-xdist workers: with ``--dist each`` every
    worker runs every test, and each half of the cycle runs on one worker only."""
    pytest.importorskip("xdist")
    pytester.makepyfile(shop=SHOP)
    pytester.makepyfile(
        test_cart="""
            import os, pytest
            from shop import checkout

            def test_checkout():
                if os.environ.get("PYTEST_XDIST_WORKER") != "gw0":
                    pytest.skip("the other half runs on gw1")
                assert checkout() == "checked out"
        """,
        test_stock="""
            import os, pytest
            from shop import restock

            def test_restock():
                if os.environ.get("PYTEST_XDIST_WORKER") != "gw1":
                    pytest.skip("the other half runs on gw0")
                assert restock() == "restocked"
        """,
    )
    return pytester


def _last_line(result: pytest.RunResult) -> str:
    return [line for line in result.outlines if line.strip()][-1]


@pytest.mark.parametrize("quiet", [(), ("-q",)], ids=["default", "quiet"])
def test_xdist_split_inversion_fails_the_run_with_a_line_naming_it(split: pytest.Pytester,
                                                                    quiet: tuple[str, ...]) -> None:
    result = split.runpytest_subprocess("--lockwatch", "-n", "2", "--dist", "each", "-p", "no:randomly",
                                        *quiet, timeout=300)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, skipped=2)  # no test failed: neither worker saw the whole cycle
    out = result.stdout.str()
    [verdict] = [line for line in result.outlines if line.startswith("lockwatch: the run fails:")]
    assert f"potential deadlock {CYCLE}" in verdict
    assert "no single test saw the whole cycle" in verdict
    assert "test_cart.py::test_checkout (worker gw0)" in verdict
    assert "test_stock.py::test_restock (worker gw1)" in verdict
    assert "lockwatch: exit status 1 (tests failed) because of the finding(s) above" in out
    # The last line counts the finding: never a bare "2 passed" for a failing run.
    last = _last_line(result)
    assert "2 passed" in last and "1 lockwatch finding" in last, last


def test_xdist_split_inversion_under_report_only_passes_and_says_so(split: pytest.Pytester) -> None:
    result = split.runpytest_subprocess("--lockwatch-report-only", "-n", "2", "--dist", "each",
                                        "-p", "no:randomly", timeout=300)
    assert result.ret == pytest.ExitCode.OK
    assert "lockwatch: report only: 1 potential deadlock found; they do not fail the run" in result.stdout.str()
    assert "lockwatch finding" not in _last_line(result)


def test_a_clean_run_says_nothing_fails_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fine="def test_fine():\n    pass\n")
    result = pytester.runpytest_subprocess("--lockwatch", timeout=300)
    assert result.ret == pytest.ExitCode.OK
    assert "lockwatch: nothing found that fails the run" in result.stdout.str()


@pytest.mark.parametrize("mode", ["--lockwatch", "--lockwatch-report-only"])
def test_a_real_deadlock_fails_its_test_once_and_the_next_test_passes(pytester: pytest.Pytester,
                                                                      mode: str) -> None:
    pytester.makepyfile(test_deadlock=DEADLOCK)
    result = pytester.runpytest_subprocess(mode, "--lockwatch-deadlock-timeout", "1", "-p", "no:randomly",
                                           "-W", "error::pytest.PytestUnhandledThreadExceptionWarning",
                                           timeout=300)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=2, passed=1)
    out = result.stdout.str()
    # The deadlock of the test's own threads fails that test ("one" or "two" was broken) ...
    failures = out.split("= FAILURES =", 1)[1]
    workers = failures.split("_ test_worker_threads_deadlock _", 1)[1].split("_ test_main_thread_deadlocks _")[0]
    assert "lockwatch: a real deadlock happened during test_deadlock.py::test_worker_threads_deadlock (call)" \
        in workers
    assert "thread 'one' waits for b" in workers and "thread 'two' waits for a" in workers
    # ... and each deadlock is printed once: with its test, not again in the summary, not as
    # pytest's warning about an exception in a thread, not on the captured stderr.
    # (pytest's own short summary repeats a failure's whole message when CI is set: not counted.)
    assert out.split("short test summary info")[0].count("DEADLOCK DETECTED") == 2
    assert "PytestUnhandledThreadExceptionWarning" not in out and "Captured stderr" not in out
    assert ("lockwatch: 2 tests failed because threads really deadlocked: "
            "test_deadlock.py::test_worker_threads_deadlock, test_deadlock.py::test_main_thread_deadlocks") in out
    result.stdout.fnmatch_lines(["*FAILED test_deadlock.py::test_main_thread_deadlocks - lockwatch.errors.Deadlo*"])


def test_a_real_deadlock_on_an_xdist_worker_is_in_the_run_report(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_deadlock=DEADLOCK)
    result = pytester.runpytest_subprocess("--lockwatch", "--lockwatch-deadlock-timeout", "1", "-n", "2",
                                           "-p", "no:randomly", "--lockwatch-json", "run.json", timeout=300)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=2, passed=1)
    out = result.stdout.str()
    assert "lockwatch: 2 tests failed because threads really deadlocked" in out
    # The controller's report (merged from the workers') carries both deadlocks, with their threads.
    import json

    data = json.loads((pytester.path / "run.json").read_text())
    assert len(data["deadlocks"]) == 2
    names = sorted(sorted(t["name"] for t in d["threads"]) for d in data["deadlocks"])
    assert names == [["MainThread", "other"], ["one", "two"]]


def test_no_lockwatch_frame_in_a_deadlock_traceback(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_deadlock=DEADLOCK)
    result = pytester.runpytest_subprocess("--lockwatch", "--lockwatch-deadlock-timeout", "1",
                                           "-k", "main_thread", "--tb", "long", timeout=300)
    result.assert_outcomes(failed=1, deselected=2)
    failure = result.stdout.str().split("_ test_main_thread_deadlocks _", 1)[1]
    assert "with d:  # the main thread is the one lockwatch breaks" in failure
    [error] = [line for line in failure.splitlines() if line.startswith("E ")]
    assert error.split(None, 1)[1].startswith(
        "lockwatch.errors.DeadlockError: deadlock detected by lockwatch: thread 'MainThread'")
    assert PACKAGE_DIR not in failure  # proxies, watchdog, recorder: ~40 lines before
    assert "blocking_acquire" not in failure and "_unmutexed" not in failure


README_MARKER_EXAMPLE = """
    import pytest
    from shop import checkout, restock

    @pytest.mark.lockwatch(enabled=False)      # record no lock-order edges during this test
    def test_legacy_path():
        ...

    @pytest.mark.lockwatch(report_only=True)   # demonstrates an inversion on purpose
    def test_inversion_is_detected(lockwatch):  # the `lockwatch` fixture: the findings
        checkout()
        restock()
        [found] = lockwatch.new_potential_deadlocks()
        assert {lock.name for lock in found.locks} == {"_cart_lock", "_stock_lock"}
"""


def test_the_fixture_without_lockwatch_skips_with_a_reason(pytester: pytest.Pytester) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    example = README_MARKER_EXAMPLE.strip("\n")
    assert "\n".join(line[4:] for line in example.splitlines()) in readme  # the README's own example
    pytester.makepyfile(shop=SHOP, test_example=README_MARKER_EXAMPLE)
    result = pytester.runpytest_subprocess("-rs", "-p", "no:randomly", timeout=300)
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * the lockwatch fixture needs lockwatch switched on: "
                                 "run pytest with --lockwatch*"])
    with_it = pytester.runpytest_subprocess("--lockwatch", "-p", "no:randomly", timeout=300)
    with_it.assert_outcomes(passed=2)
