"""The pytest plugin, always through runpytest_subprocess: in-process runs would patch our own
pytest's threads."""
from __future__ import annotations

import pytest
from support import SHOP, SHOP_PY, line_in, report_of

pytestmark = pytest.mark.timeout(900)  # pytest runs in subprocesses, on a busy machine



@pytest.fixture
def shop(pytester: pytest.Pytester) -> pytest.Pytester:
    """A sample project: test_checkout takes cart then stock, test_restock stock then cart."""
    pytester.makepyfile(shop=SHOP)
    pytester.makepyfile(
        test_cart="""
            from shop import checkout

            def test_checkout():
                assert checkout() == "checked out"
        """,
        test_stock="""
            from shop import restock

            def test_restock():
                assert restock() == "restocked"

            def test_unrelated():
                assert True
        """,
    )
    return pytester


def test_inversion_across_two_tests_fails_the_run(shop: pytest.Pytester) -> None:
    result = shop.runpytest_subprocess("--lockwatch", "-p", "no:randomly", timeout=300)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    # The test during which the cycle closed fails with the cycle as its message ...
    assert "_ test_restock _" in out
    failure = out.split("_ test_restock _", 1)[1].split("== lockwatch ==", 1)[0]
    assert "closed during test_stock.py::test_restock" in failure
    # ... naming both tests and both stacks of each edge.
    assert "during test_cart.py::test_checkout" in failure
    assert "during test_stock.py::test_restock" in failure
    assert f"shop.py:{line_in(SHOP_PY, 'cart -> stock')} in checkout" in failure
    assert f"shop.py:{line_in(SHOP_PY, 'stock -> cart')} in restock" in failure
    # checkout's `with _cart_lock:` is its first line (restock has the same text, indented)
    assert f"shop.py:{line_in(SHOP_PY, 'def checkout():') + 1} in checkout" in failure
    assert "test_cart.py:4 in test_checkout" in failure
    assert "_pytest" not in failure and "pluggy" not in failure  # stacks end at the test
    # The terminal summary has a lockwatch section with the cycle.
    summary = out.split("== lockwatch ==", 1)[1]
    assert "1 potential deadlock" in summary
    assert "_cart_lock -> _stock_lock -> _cart_lock" in summary


def test_with_xdist_the_controller_merges_workers(shop: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    result = shop.runpytest_subprocess("--lockwatch", "-n", "2", "-p", "no:randomly", timeout=300)
    assert result.ret != 0
    summary = result.stdout.str().split("== lockwatch ==", 1)[1]
    assert "_cart_lock -> _stock_lock -> _cart_lock" in summary
    assert "during test_cart.py::test_checkout" in summary
    assert "during test_stock.py::test_restock" in summary
    assert f"shop.py:{line_in(SHOP_PY, 'cart -> stock')} in checkout" in summary
    assert f"shop.py:{line_in(SHOP_PY, 'stock -> cart')} in restock" in summary


def test_report_only_reports_without_failing(shop: pytest.Pytester) -> None:
    result = shop.runpytest_subprocess("--lockwatch-report-only", timeout=300)
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=3)
    summary = result.stdout.str().split("== lockwatch ==", 1)[1]
    assert "_cart_lock -> _stock_lock -> _cart_lock" in summary


def test_without_the_option_nothing_is_patched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
            import sys, threading, _thread

            def test_untouched():
                assert threading.Lock is _thread.allocate_lock or threading.Lock is _thread.LockType
                assert type(threading.RLock()).__module__ != "lockwatch.proxies"
                assert "lockwatch.proxies" not in sys.modules
                assert "lockwatch.patching" not in sys.modules
        """
    )
    result = pytester.runpytest_subprocess(timeout=300)
    result.assert_outcomes(passed=1)
    assert "lockwatch" not in result.stdout.str().split("passed", 1)[-1]


def test_ini_setting_switches_it_on(shop: pytest.Pytester) -> None:
    shop.makeini("[pytest]\nlockwatch = true\n")
    result = shop.runpytest_subprocess("-p", "no:randomly", timeout=300)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, failed=1)


def test_bad_ini_value_is_a_usage_error(shop: pytest.Pytester) -> None:
    shop.makeini("[pytest]\nlockwatch = maybe\n")
    result = shop.runpytest_subprocess(timeout=300)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "lockwatch" in err and "'maybe'" in err and "tox.ini" in err
    assert "Traceback" not in err


def test_bad_json_path_is_a_usage_error(shop: pytest.Pytester) -> None:
    result = shop.runpytest_subprocess("--lockwatch", "--lockwatch-json", "no/such/dir/r.json", timeout=300)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--lockwatch-json" in result.stderr.str()


def test_marker_switches_recording_off_for_one_test(shop: pytest.Pytester) -> None:
    shop.makepyfile(
        test_stock="""
            import pytest
            from shop import restock

            @pytest.mark.lockwatch(enabled=False)
            def test_restock():
                assert restock() == "restocked"
        """
    )
    result = shop.runpytest_subprocess("--lockwatch", timeout=300)
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=2)
    assert "no potential deadlocks found" in result.stdout.str()


def test_marker_beats_command_line(shop: pytest.Pytester) -> None:
    shop.makepyfile(
        test_stock="""
            import pytest
            from shop import restock

            @pytest.mark.lockwatch(report_only=False)
            def test_restock():
                assert restock() == "restocked"
        """
    )
    result = shop.runpytest_subprocess("--lockwatch-report-only", "-p", "no:randomly", timeout=300)
    result.assert_outcomes(passed=1, failed=1)


def test_marker_report_only_and_fixture(shop: pytest.Pytester) -> None:
    shop.makepyfile(
        test_stock="""
            import pytest
            from shop import checkout, restock

            @pytest.mark.lockwatch(report_only=True)
            def test_inversion_on_purpose(lockwatch):
                checkout()
                restock()
                [found] = lockwatch.new_potential_deadlocks()
                assert {lock.name for lock in found.locks} == {"_cart_lock", "_stock_lock"}
                assert found.scope == "instance"
        """
    )
    result = shop.runpytest_subprocess("--lockwatch", "-p", "no:randomly", timeout=300)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=2)


def test_unknown_marker_argument_is_an_error(shop: pytest.Pytester) -> None:
    shop.makepyfile(
        test_stock="""
            import pytest

            @pytest.mark.lockwatch(enable=False)
            def test_typo():
                pass
        """
    )
    result = shop.runpytest_subprocess("--lockwatch", timeout=300)
    assert result.ret != 0
    assert "unknown @pytest.mark.lockwatch argument" in (result.stdout.str() + result.stderr.str())


def test_conftest_imports_are_instrumented(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import threading
        from threading import Lock

        MODULE_LOCK = threading.Lock()
        FROM_IMPORT = Lock()
        """
    )
    pytester.makepyfile(
        test_early="""
            from conftest import MODULE_LOCK, FROM_IMPORT

            def test_instrumented():
                assert type(MODULE_LOCK).__module__ == "lockwatch.proxies"
                assert type(FROM_IMPORT).__module__ == "lockwatch.proxies"
        """
    )
    result = pytester.runpytest_subprocess("--lockwatch", timeout=300)
    result.assert_outcomes(passed=1)


def test_json_report_written_even_when_interrupted(shop: pytest.Pytester) -> None:
    shop.makepyfile(
        test_zz_interrupt="""
            def test_ctrl_c():
                raise KeyboardInterrupt
        """
    )
    out = shop.path / "report.json"
    result = shop.runpytest_subprocess("--lockwatch", "--lockwatch-json", str(out), "-p", "no:randomly", timeout=300)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    data = report_of(out)
    assert data["format"] == "lockwatch-report"
    [found] = data["potential_deadlocks"]
    assert {e["context"] for e in found["edges"]} == {
        "test_cart.py::test_checkout", "test_stock.py::test_restock"}


def test_works_beside_pytest_timeout_and_an_erroring_test(shop: pytest.Pytester) -> None:
    pytest.importorskip("pytest_timeout")
    shop.makepyfile(
        test_error="""
            import pytest

            @pytest.fixture
            def broken():
                raise RuntimeError("fixture broke")

            def test_errors(broken):
                pass
        """
    )
    result = shop.runpytest_subprocess("--lockwatch", "--timeout", "60", "-p", "no:randomly", timeout=300)
    result.assert_outcomes(passed=2, failed=1, errors=1)
    assert "== lockwatch ==" in result.stdout.str()


def test_help_lists_the_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help", timeout=300)
    out = result.stdout.str()
    for option in ("--lockwatch", "--lockwatch-report-only", "--lockwatch-json"):
        assert option in out
