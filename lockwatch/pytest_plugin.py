"""The pytest plugin: `pytest --lockwatch` fails a suite whose tests take locks in inverted orders."""
from __future__ import annotations

import os
import sys
from typing import Any, Optional

import pytest

# Nothing of lockwatch's core is imported (and nothing is patched) unless the plugin is switched
# on: the plugin is registered for every pytest run once lockwatch is installed.

HELP_ENABLE = "Instrument threading locks and fail the run on lock-order inversions (potential deadlocks)."
HELP_REPORT_ONLY = "Report potential deadlocks in the summary without failing tests or the run."
HELP_JSON = "Write the whole run's lockwatch report as JSON to PATH."
HELP_HTML = "Write the whole run's lockwatch report as a self-contained HTML page to PATH."
HELP_BASELINE = ("Potential deadlocks listed in this lockwatch baseline are known and do not fail "
                 "the run; only new ones do.")
HELP_SUPPRESS = ("Ignore the potential deadlocks listed in this TOML file (as well as those in "
                 "[tool.lockwatch] of pyproject.toml).")
HELP_TIMEOUT = ("Seconds after which threads that wait for each other's locks are a real deadlock "
                "(default 5; 0 switches the watchdog off).")
HELP_POLICY = ("What a real deadlock does: raise (lockwatch.DeadlockError in the blocked test, "
               "the default), exit (end the run with status 87) or report.")
_POLICIES = ("exit", "raise", "report")
MARKER = ("lockwatch(enabled=True, report_only=False): adjust lockwatch for one test. "
          "enabled=False records no lock-order edges during the test (e.g. a test that inverts "
          "locks on purpose); report_only=True reports cycles closed during the test without "
          "failing it.")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_MARKER_KEYS = {"enabled", "report_only"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lockwatch", "lockwatch: lock-order inversion (potential deadlock) detection")
    group.addoption("--lockwatch", action="store_true", default=None, dest="lockwatch",
                    help=HELP_ENABLE + " [ini: lockwatch]")
    group.addoption("--lockwatch-report-only", action="store_true", default=None,
                    dest="lockwatch_report_only", help=HELP_REPORT_ONLY + " [ini: lockwatch_report_only]")
    group.addoption("--lockwatch-json", metavar="PATH", default=None, dest="lockwatch_json",
                    help=HELP_JSON + " [ini: lockwatch_json]")
    group.addoption("--lockwatch-baseline", metavar="FILE", default=None, dest="lockwatch_baseline",
                    help=HELP_BASELINE + " [ini: lockwatch_baseline]")
    group.addoption("--lockwatch-suppressions", metavar="FILE", default=None,
                    dest="lockwatch_suppressions", help=HELP_SUPPRESS + " [ini: lockwatch_suppressions]")
    group.addoption("--lockwatch-html", metavar="PATH", default=None, dest="lockwatch_html",
                    help=HELP_HTML + " [ini: lockwatch_html]")
    group.addoption("--lockwatch-deadlock-timeout", metavar="SECONDS", default=None,
                    dest="lockwatch_deadlock_timeout", help=HELP_TIMEOUT + " [ini: lockwatch_deadlock_timeout]")
    group.addoption("--lockwatch-on-deadlock", metavar="POLICY", default=None,
                    dest="lockwatch_on_deadlock", help=HELP_POLICY + " [ini: lockwatch_on_deadlock]")
    parser.addini("lockwatch", HELP_ENABLE + " (true/false)", default="false")
    parser.addini("lockwatch_deadlock_timeout", HELP_TIMEOUT, default="5")
    parser.addini("lockwatch_on_deadlock", HELP_POLICY, default="raise")
    parser.addini("lockwatch_report_only", HELP_REPORT_ONLY + " (true/false)", default="false")
    parser.addini("lockwatch_json", HELP_JSON, default="")
    parser.addini("lockwatch_html", HELP_HTML, default="")
    parser.addini("lockwatch_baseline", HELP_BASELINE, default="")
    parser.addini("lockwatch_suppressions", HELP_SUPPRESS, default="")


def _ini_bool(config: pytest.Config, name: str) -> bool:
    raw = config.getini(name)
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    where = f" in {config.inipath}" if getattr(config, "inipath", None) else ""
    raise pytest.UsageError(f"lockwatch: ini option {name} = {raw!r}{where} is not a boolean "
                            "(use true or false)")


def _option(config: pytest.Config, name: str) -> Any:
    ns = getattr(config, "known_args_namespace", None)
    value = getattr(ns, name, None) if ns is not None else None
    if value is None:
        value = config.getoption(name, None)
    return value


class Settings:
    """Command line over ini (a marker overrides both for its test)."""

    def __init__(self, config: pytest.Config) -> None:
        enabled = _option(config, "lockwatch")
        self.enabled = bool(enabled) if enabled is not None else _ini_bool(config, "lockwatch")
        report_only = _option(config, "lockwatch_report_only")
        self.report_only = (bool(report_only) if report_only is not None
                            else _ini_bool(config, "lockwatch_report_only"))
        self.json_path = _option(config, "lockwatch_json") or str(config.getini("lockwatch_json") or "") or None
        self.html_path = _option(config, "lockwatch_html") or str(config.getini("lockwatch_html") or "") or None
        self.baseline_path = (_option(config, "lockwatch_baseline")
                              or str(config.getini("lockwatch_baseline") or "") or None)
        self.suppressions_path = (_option(config, "lockwatch_suppressions")
                                  or str(config.getini("lockwatch_suppressions") or "") or None)
        if self.report_only and enabled is None and not self.enabled:
            self.enabled = True  # asking for a report implies recording
        self.policy: tuple = ([], None)  # (suppressions, baseline), loaded when switched on
        raw = _option(config, "lockwatch_deadlock_timeout")
        source = "--lockwatch-deadlock-timeout"
        if raw is None:
            raw, source = config.getini("lockwatch_deadlock_timeout"), "ini option lockwatch_deadlock_timeout"
        try:
            self.deadlock_timeout = float(raw)
            if self.deadlock_timeout < 0:
                raise ValueError
        except (TypeError, ValueError):
            raise pytest.UsageError(f"lockwatch: {source} = {raw!r} is not a number of seconds >= 0")
        policy = _option(config, "lockwatch_on_deadlock")
        source = "--lockwatch-on-deadlock"
        if policy is None:
            policy, source = config.getini("lockwatch_on_deadlock"), "ini option lockwatch_on_deadlock"
        if str(policy).strip() not in _POLICIES:
            raise pytest.UsageError(f"lockwatch: {source} = {policy!r} is not one of {', '.join(_POLICIES)}")
        self.on_deadlock = str(policy).strip()


_KEY = pytest.StashKey["LockwatchPlugin"]()


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    # As early as pytest-cov: before conftest.py and the test modules import the code under
    # test, so locks those imports create are instrumented.
    settings = Settings(early_config)
    for option, path in (("--lockwatch-json", settings.json_path), ("--lockwatch-html", settings.html_path)):
        if path:
            from .files import check_writable

            problem = check_writable(path)
            if problem:
                raise pytest.UsageError(f"lockwatch: {option}: {problem}")
    if not settings.enabled:
        return
    from .baseline import BaselineError
    from .config import ConfigError
    from .session import load_policy

    start = str(getattr(early_config, "rootpath", None) or os.getcwd())
    try:
        settings.policy = load_policy(settings.suppressions_path, settings.baseline_path, start)
    except (ConfigError, BaselineError) as exc:
        raise pytest.UsageError(f"lockwatch: {exc}")
    plugin = LockwatchPlugin(early_config, settings)
    early_config.stash[_KEY] = plugin
    early_config.pluginmanager.register(plugin, "lockwatch-session")
    if not plugin.is_controller:
        plugin.start()


def _is_xdist_controller(config: pytest.Config) -> bool:
    # pytest-xdist sets PYTEST_XDIST_WORKER in a worker before its config exists; the controller
    # runs no tests, so it records nothing and only merges what its workers send.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return False
    n = _option(config, "numprocesses")
    dist = _option(config, "dist")
    return bool(n) and str(n) != "0" and dist != "no"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)


def _marker_settings(item: pytest.Item) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for mark in reversed(list(item.iter_markers("lockwatch"))):  # closest marker wins
        if mark.args:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.lockwatch takes keyword "
                                    f"arguments only ({', '.join(sorted(_MARKER_KEYS))})")
        unknown = set(mark.kwargs) - _MARKER_KEYS
        if unknown:
            raise pytest.UsageError(f"{item.nodeid}: unknown @pytest.mark.lockwatch argument(s) "
                                    f"{', '.join(sorted(unknown))}; known: {', '.join(sorted(_MARKER_KEYS))}")
        out.update({k: bool(v) for k, v in mark.kwargs.items()})
    return out


class LockwatchPlugin:
    """The run's recording session, per-test attribution and the end-of-run report."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.session: Any = None
        self.reported: set[str] = set()  # fingerprints already reported by a test
        self.acknowledged: set[str] = set()  # closed under report_only: never fail the run
        self.acknowledged_violations = 0
        self.seen_violations = 0
        self.seen_version = -1
        self.worker_snapshots: list[Any] = []
        self.worker_acknowledged: set[str] = set()
        self.final: Any = None
        self.is_controller = _is_xdist_controller(config)

    @property
    def is_worker(self) -> bool:
        # xdist sets workerinput on a worker's config after pytest_load_initial_conftests; by the
        # end of the run it is there. (The environment variable is inherited by subprocesses.)
        return hasattr(self.config, "workerinput")

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        import _pytest
        import pluggy

        from . import stacks
        from .session import Session, Settings as SessionSettings

        # A test's stacks end at the test function, as pytest's own tracebacks do.
        for module in (_pytest, pluggy):
            stacks.add_stop_dir(module.__file__)

        suppressions, known = self.settings.policy
        self.session = Session(SessionSettings(text=False, deadlock_timeout=self.settings.deadlock_timeout,
                                               on_deadlock=self.settings.on_deadlock,
                                               suppressions=suppressions, baseline=known))
        if self.settings.on_deadlock == "exit":
            # The run ends with os._exit: a report written to the captured stderr would be lost.
            self.session._emit = self._emit_uncaptured
        self.session.start()

    def _emit_uncaptured(self, text: str) -> None:
        capman = self.config.pluginmanager.getplugin("capturemanager")
        if capman is not None:
            try:
                capman.suspend(in_=False)  # the test's capture and pytest's global capture
            except Exception:
                pass
        try:
            sys.stderr.write(text)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.session is not None:
            self.session.stop()

    # -- attribution --------------------------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_collection(self, session: pytest.Session) -> Any:
        from . import recorder

        recorder.context = "collection"
        try:
            yield
        finally:
            recorder.context = None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: Optional[pytest.Item]) -> Any:
        from . import recorder

        marks = _marker_settings(item)
        recorder.context = item.nodeid
        recorder.recording = marks.get("enabled", True)
        item.stash[_ITEM_KEY] = marks
        try:
            yield
        finally:
            recorder.context = None
            recorder.recording = True

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Any:
        outcome = yield
        rep = outcome.get_result()
        new, violations = self._new_findings()
        if not new and not violations:
            return
        from .renderers import text

        marks = item.stash.get(_ITEM_KEY, {})
        report_only = marks.get("report_only", self.settings.report_only)
        body = text.render_violations(violations) + (text.render_cycles(new) if new else "")
        what = []
        if new:
            what.append(f"{len(new)} potential deadlock(s) (lock-order inversion) closed")
        if violations:
            what.append(f"{len(violations)} declared lock order violation(s)")
        heading = f"lockwatch: {' and '.join(what)} during {item.nodeid} ({call.when})"
        if report_only or not (violations or any(p.fails for p in new)):
            # report-only, or nothing that can hang (guarded, timed, standard library,
            # suppressed, in the baseline): shown with the test, never failing it
            self.acknowledged.update(p.fingerprint for p in new)
            self.acknowledged_violations += len(violations)
            rep.sections.append(("lockwatch", heading + "\n" + body))
            return
        if rep.passed:
            rep.outcome = "failed"
            rep.longrepr = heading + "\n\n" + body
        else:
            rep.sections.append(("lockwatch", heading + "\n" + body))

    def _new_findings(self) -> tuple[list, list]:
        """Cycles and declared-order violations that appeared since the last look."""
        if self.session is None or self.session.edges_version == self.seen_version:
            return [], []  # no new lock-order edge since the last look: nothing new
        self.seen_version = self.session.edges_version
        report = self.session.report(live_stats=False)
        new = [p for p in report.potential_deadlocks if p.fingerprint not in self.reported]
        self.reported.update(p.fingerprint for p in new)
        violations = report.violations[self.seen_violations:]
        self.seen_violations = len(report.violations)
        return new, violations

    # -- pytest-xdist: workers send their snapshot, the controller merges by creation site -----
    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        data = getattr(node, "workeroutput", {}).get("lockwatch")
        if not data:
            return
        from .model import ReportError, SavedReport

        try:
            self.worker_snapshots.append(SavedReport.from_dict(data, "a pytest-xdist worker's report").snapshot)
        except ReportError:
            return
        self.worker_acknowledged.update(node.workeroutput.get("lockwatch_acknowledged", []))

    # -- end of run ---------------------------------------------------------------------------
    def final_report(self) -> Any:
        if self.final is None:
            from .analysis import build_report
            from .model import Alert, Deadlock

            own = [self.session.snapshot()] if self.session is not None else []
            suppressions, baseline = self.settings.policy
            self.final = build_report(
                own + self.worker_snapshots, suppressions=suppressions, baseline=baseline,
                deadlocks=[Deadlock.from_dict(d) for d in (self.session.deadlocks if self.session else [])],
                alerts=[Alert.from_dict(a) for a in (self.session.alerts if self.session else [])])
        return self.final

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        report = self.final_report()
        if self.is_worker:
            self.config.workeroutput["lockwatch"] = report.to_dict()
            self.config.workeroutput["lockwatch_acknowledged"] = sorted(self.acknowledged)
            return
        if self.settings.json_path:
            from .model import save

            save(self.settings.json_path, report)
        if self.settings.html_path:
            from .files import write_atomic
            from .renderers import html

            write_atomic(self.settings.html_path, html.render(report))
        acknowledged = self.acknowledged | self.worker_acknowledged
        failing = [p for p in report.failing if p.fingerprint not in acknowledged]
        violations = len(report.violations) > self.acknowledged_violations
        if (failing or violations) and not self.settings.report_only and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        if self.is_worker:
            return
        from .renderers import text

        report = self.final_report()
        terminalreporter.write_sep("=", "lockwatch")
        terminalreporter.write(text.render(report))
        if self.settings.json_path:
            terminalreporter.write_line(f"lockwatch: JSON report written to {self.settings.json_path}")


_ITEM_KEY = pytest.StashKey[dict]()


class LockwatchFixture:
    """What the `lockwatch` fixture gives a test: the session's findings to assert on."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._before = {p.fingerprint for p in self.potential_deadlocks}

    def report(self) -> Any:
        return self.session.report()

    @property
    def potential_deadlocks(self) -> list:
        """Every potential deadlock recorded so far in this run."""
        return self.session.report(live_stats=False).potential_deadlocks

    def new_potential_deadlocks(self) -> list:
        """The potential deadlocks that appeared since this test started."""
        return [p for p in self.potential_deadlocks if p.fingerprint not in self._before]


@pytest.fixture
def lockwatch(request: pytest.FixtureRequest) -> Any:
    """The lockwatch session's findings. Under --lockwatch, the whole run's session; otherwise
    lockwatch records for this test only (locks created before the test are not seen)."""
    plugin = request.config.stash.get(_KEY, None)
    if plugin is not None and plugin.session is not None:
        yield LockwatchFixture(plugin.session)
        return
    import lockwatch as api

    with api.watching() as session:
        yield LockwatchFixture(session)
