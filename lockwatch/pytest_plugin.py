"""The pytest plugin: `pytest --lockwatch` fails a suite whose tests take locks in inverted orders."""
from __future__ import annotations

import functools
import os
import sys
from typing import Any, Optional

import pytest

# Nothing of lockwatch's core is imported (and nothing is patched) unless the plugin is switched
# on: the plugin is registered for every pytest run once lockwatch is installed.

HELP_ENABLE = "Instrument threading locks and fail the run on lock-order inversions (potential deadlocks)."
HELP_REPORT_ONLY = "Report potential deadlocks in the summary without failing tests or the run."
MARKER = ("lockwatch(enabled=True, report_only=False): adjust lockwatch for one test. "
          "enabled=False records no lock-order edges during the test (e.g. a test that inverts "
          "locks on purpose); report_only=True reports cycles closed during the test without "
          "failing it.")
_MARKER_KEYS = {"enabled", "report_only"}
# The settings (settings.FIELDS) that a test run takes, each as --lockwatch-KEY and ini lockwatch_KEY;
# text and fail_on_cycle are the plugin's own (the summary; --lockwatch-report-only).
_KEYS = ("json", "html", "dot", "top", "show_library", "deadlock_timeout", "on_deadlock", "warn_hold", "warn_wait",
         "suppressions", "baseline", "confirm_runs", "confirm_pause")
_HELP = {
    "json": "Write the whole run's lockwatch report as JSON to PATH.",
    "html": "Write the whole run's lockwatch report as a self-contained HTML page to PATH.",
    "dot": "Write the whole run's lock-order graph in Graphviz DOT to PATH.",
    "top": "Rows in each contention table of lockwatch's summary (default 5).",
    "show_library": ("List the standard library's and installed packages' locks and stack frames "
                     "with the program's in lockwatch's summary and HTML report (folded by default)."),
    "deadlock_timeout": ("Seconds after which threads that wait for each other's locks are a real deadlock "
                         "(default 5; 0 switches the watchdog off)."),
    "on_deadlock": ("What a real deadlock does: raise (lockwatch.DeadlockError in the blocked test, "
                    "the default), exit (end the run with status 87) or report."),
    "warn_hold": "Report a lock held longer than SECONDS, while it happens.",
    "warn_wait": "Report a thread waiting longer than SECONDS for a lock, while it happens.",
    "suppressions": ("Ignore the potential deadlocks listed in this TOML file (as well as those in "
                     "[tool.lockwatch] of pyproject.toml)."),
    "baseline": ("Potential deadlocks listed in this lockwatch baseline are known and do not fail "
                 "the run; only new ones do."),
    "confirm_runs": "With --lockwatch-confirm: confirmation runs per potential deadlock, at most (default 5).",
    "confirm_pause": ("With --lockwatch-confirm: how long a held-back thread waits, at most, for the "
                      "other threads of the cycle (default 0.5)."),
}
_FLAGS = {"show_library"}  # options without a value (their ini setting takes true/false)
_METAVAR = {"json": "PATH", "html": "PATH", "dot": "PATH", "top": "N", "on_deadlock": "POLICY",
            "suppressions": "FILE", "baseline": "FILE", "confirm_runs": "N"}
HELP_CONFIRM = ("Confirm each potential deadlock: re-run the tests during which its edges were recorded, "
                "in a subprocess, their bodies at the same time in one thread each (fixtures set up as "
                "pytest would), held back before the acquisitions that close the cycle; a real "
                "deadlock there is reported as CONFIRMED.")


def _option_name(key: str) -> str:
    return "--lockwatch-" + key.replace("_", "-")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lockwatch", "lockwatch: lock-order inversion (potential deadlock) detection")
    group.addoption("--lockwatch", action="store_true", default=None, dest="lockwatch",
                    help=HELP_ENABLE + " [ini: lockwatch]")
    group.addoption("--lockwatch-report-only", action="store_true", default=None,
                    dest="lockwatch_report_only", help=HELP_REPORT_ONLY + " [ini: lockwatch_report_only]")
    parser.addini("lockwatch", HELP_ENABLE + " (true/false)", default="false")
    parser.addini("lockwatch_report_only", HELP_REPORT_ONLY + " (true/false)", default="false")
    _add_confirm_option(group, parser)
    for key in _KEYS:
        how: dict[str, Any] = ({"action": "store_true"} if key in _FLAGS
                               else {"metavar": _METAVAR.get(key, "SECONDS")})
        group.addoption(_option_name(key), default=None, dest=f"lockwatch_{key}",
                        help=f"{_HELP[key]} [ini: lockwatch_{key}]", **how)
        parser.addini(f"lockwatch_{key}", _HELP[key], default="")


def _add_confirm_option(group: Any, parser: pytest.Parser) -> None:
    group.addoption("--lockwatch-confirm", action="store_true", default=None, dest="lockwatch_confirm",
                    help=HELP_CONFIRM + " [ini: lockwatch_confirm]")
    parser.addini("lockwatch_confirm", HELP_CONFIRM + " (true/false)", default="")


def _option(config: pytest.Config, name: str) -> Any:
    ns = getattr(config, "known_args_namespace", None)
    value = getattr(ns, name, None) if ns is not None else None
    if value is None:
        value = config.getoption(name, None)
    return value


def _usage_errors(func: Any) -> Any:
    """A bad value from any source is pytest's usage error: one line, status 4."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .errors import UserError

        try:
            return func(*args, **kwargs)
        except UserError as exc:
            raise pytest.UsageError(f"lockwatch: {exc}") from None
    return wrapper


class Settings:
    """The plugin's settings: pytest's defaults, then [tool.lockwatch], the ini file, the command
    line (a marker overrides them for its test)."""

    @_usage_errors
    def __init__(self, config: pytest.Config) -> None:
        from . import config as project_config
        from .settings import DEFAULT_ON_DEADLOCK, resolve, validate_bool
        from .settings import Settings as Knobs

        ini_file = f"{config.inipath}: " if getattr(config, "inipath", None) else ""

        def ini(name: str) -> Any:
            raw = config.getini(name)
            return None if raw in ("", None) else raw

        enabled = _option(config, "lockwatch")
        self.enabled = bool(enabled) if enabled is not None else validate_bool(
            config.getini("lockwatch"), f"{ini_file}ini option lockwatch")
        report_only = _option(config, "lockwatch_report_only")
        if report_only is None:
            report_only = validate_bool(config.getini("lockwatch_report_only"),
                                        f"{ini_file}ini option lockwatch_report_only")
        self.report_only = bool(report_only)
        if self.report_only and enabled is None and not self.enabled:
            self.enabled = True  # asking for a report implies recording
        start = str(getattr(config, "rootpath", None) or os.getcwd())
        self.project = project_config.load_project(start) if self.enabled else project_config.ProjectConfig()
        inis = {key: ini(f"lockwatch_{key}") for key in (*_KEYS, "confirm")}
        options = {key: _option(config, f"lockwatch_{key}") for key in (*_KEYS, "confirm")}
        base = Knobs(text=False, on_deadlock=DEFAULT_ON_DEADLOCK["pytest"], fail_on_cycle=True)
        self.knobs = resolve((self.project.settings, self.project.where),
                             (inis, lambda f: f"{ini_file}ini option lockwatch_{f.key}"),
                             (options, lambda f: _option_name(f.key)), base=base)
        if not self.knobs.fail_on_cycle:  # fail_on_cycle = false in [tool.lockwatch]
            self.report_only = True
        self.policy: tuple[list[Any], Optional[dict[str, Any]]] = ([], None)  # loaded when switched on

    @property
    def on_deadlock(self) -> str:
        return self.knobs.on_deadlock

    @_usage_errors
    def load_policy(self) -> None:
        from .control import load_policy

        self.policy = load_policy(self.knobs, self.project)


_KEY = pytest.StashKey["LockwatchPlugin"]()


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    # As early as pytest-cov: before conftest.py and the test modules import the code under
    # test, so locks those imports create are instrumented.
    settings = Settings(early_config)
    for fmt, path in settings.knobs.report_paths.items():
        from .files import check_writable

        problem = check_writable(path)
        if problem:
            raise pytest.UsageError(f"lockwatch: {_option_name(fmt)}: {problem}")
    if not settings.enabled:
        return
    settings.load_policy()
    plugin = LockwatchPlugin(early_config, settings)
    early_config.stash[_KEY] = plugin
    early_config.pluginmanager.register(plugin, "lockwatch-session")
    _register_confirm(early_config, plugin)
    if not plugin.is_controller:
        plugin.start()


def _register_confirm(config: pytest.Config, plugin: LockwatchPlugin) -> None:
    """--lockwatch-confirm: the plugin that confirms the final report's cycles (confirm_pytest)."""
    if plugin.settings.knobs.confirm:
        from .confirm_pytest import ConfirmPlugin

        config.pluginmanager.register(ConfirmPlugin(config, plugin), "lockwatch-confirm")


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
        self.worker_deadlocks: list[Any] = []  # real deadlocks and alerts of pytest-xdist workers
        self.worker_alerts: list[Any] = []
        self.worker_acknowledged: set[str] = set()
        self.final: Any = None
        self.write_error: Optional[str] = None  # a report file that could not be written
        self.is_controller = _is_xdist_controller(config)
        self.failed_by_tests: set[str] = set()  # fingerprints that failed a test (here or on a worker)
        self.seen_deadlocks = 0  # real deadlocks already attached to a test
        self.deadlock_tests: list[str] = []  # the tests that real deadlocks failed (here and on workers)
        self.workers: dict[str, set[str]] = {}  # test id -> the pytest-xdist workers that ran it

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
        from .control import Session

        # A test's stacks end at the test function, as pytest's own tracebacks do.
        for module in (_pytest, pluggy):
            if module.__file__:
                stacks.add_stop_dir(module.__file__)

        suppressions, known = self.settings.policy
        # Reports are written by this plugin at the end of the run (merged with xdist workers').
        knobs = self.settings.knobs.replace(json_path=None, html_path=None, dot_path=None)
        self.session = Session(knobs, suppressions=suppressions, baseline=known)
        if self.settings.on_deadlock == "exit":
            # The run ends with os._exit: a report written to the captured stderr would be lost.
            self.session._emit = self._emit_uncaptured
        elif self.settings.on_deadlock == "raise":
            # The test during which it happened fails with the deadlock's text: printed once.
            self.session.deadlock_text = _ignore_text
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

    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Any:
        # Innermost around the test: a DeadlockError that broke a real deadlock in one of the
        # test's own threads fails the test (below), so pytest's "unhandled exception in thread"
        # warning, with lockwatch's frames in its traceback, would only repeat it.
        import threading

        previous = threading.excepthook
        threading.excepthook = functools.partial(_thread_excepthook, previous, self)
        try:
            yield
        finally:
            if isinstance(threading.excepthook, functools.partial) and \
                    threading.excepthook.func is _thread_excepthook:
                threading.excepthook = previous

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Any:
        outcome = yield
        rep = outcome.get_result()
        self._fail_on_real_deadlock(item, rep)
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
        self.failed_by_tests.update(p.fingerprint for p in new if p.fails)
        if rep.passed:
            rep.outcome = "failed"
            rep.longrepr = heading + "\n\n" + body
        else:
            rep.sections.append(("lockwatch", heading + "\n" + body))

    def _fail_on_real_deadlock(self, item: pytest.Item, rep: pytest.TestReport) -> None:
        """A real deadlock fails the test during which it happened, whichever of its threads was
        broken, and whatever report_only says (a hang is not a potential finding)."""
        if self.session is None or len(self.session.deadlocks) == self.seen_deadlocks:
            return
        from .model import Deadlock
        from .renderers.incidents import render_deadlock

        new = self.session.deadlocks[self.seen_deadlocks:]
        self.seen_deadlocks += len(new)
        self.deadlock_tests.append(item.nodeid)
        body = "".join(render_deadlock(Deadlock.from_dict(d)) for d in new)
        heading = (f"lockwatch: {'a real deadlock' if len(new) == 1 else f'{len(new)} real deadlocks'} "
                   f"happened during {item.nodeid} ({rep.when})")
        if rep.failed:  # the DeadlockError was raised in the test's own thread: its traceback stays
            rep.sections.append(("lockwatch", heading + "\n" + body))
        else:
            rep.outcome = "failed"
            rep.longrepr = heading + "\n" + body

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
            saved = SavedReport.from_dict(data, "a pytest-xdist worker's report")
        except ReportError:
            return
        self.worker_snapshots.append(saved.snapshot)
        # A worker's real deadlocks and alerts belong in the run's report (JSON, HTML) too.
        self.worker_deadlocks.extend(saved.deadlocks)
        self.worker_alerts.extend(saved.alerts)
        self.worker_acknowledged.update(node.workeroutput.get("lockwatch_acknowledged", []))
        self.failed_by_tests.update(node.workeroutput.get("lockwatch_failed", []))
        self.acknowledged_violations += int(node.workeroutput.get("lockwatch_acknowledged_violations", 0))
        self.deadlock_tests.extend(node.workeroutput.get("lockwatch_deadlock_tests", []))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # pytest-xdist's controller receives each worker's reports with the worker node attached.
        gateway = getattr(getattr(report, "node", None), "gateway", None)
        if gateway is not None and report.when == "call" and not report.skipped:
            self.workers.setdefault(report.nodeid, set()).add(str(gateway.id))

    # -- end of run ---------------------------------------------------------------------------
    def final_report(self) -> Any:
        if self.final is None:
            from .analysis import build_report
            from .model import Alert, Deadlock

            own = [self.session.snapshot()] if self.session is not None else []
            suppressions, baseline = self.settings.policy
            self.final = build_report(
                own + self.worker_snapshots, suppressions=suppressions, baseline=baseline,
                deadlocks=[Deadlock.from_dict(d) for d in (self.session.deadlocks if self.session else [])]
                + self.worker_deadlocks,
                alerts=[Alert.from_dict(a) for a in (self.session.alerts if self.session else [])] + self.worker_alerts)
        return self.final

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        report = self.final_report()
        if self.is_worker:
            # pytest-xdist gives a worker's config a workeroutput dict sent to the controller.
            output: dict[str, Any] = self.config.workeroutput  # type: ignore[attr-defined]
            output["lockwatch"] = report.to_dict()
            output["lockwatch_acknowledged"] = sorted(self.acknowledged)
            output["lockwatch_failed"] = sorted(self.failed_by_tests)
            output["lockwatch_acknowledged_violations"] = self.acknowledged_violations
            output["lockwatch_deadlock_tests"] = list(self.deadlock_tests)
            return
        paths = self.settings.knobs.report_paths
        if paths:
            from .files import ReportWriteError, write_report_files

            try:
                write_report_files(report, paths, show_library=self.settings.knobs.show_library)
            except ReportWriteError as exc:
                # One line in the summary and a failed run, not an INTERNALERROR traceback.
                self.write_error = f"lockwatch: {exc}"
                if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
                    session.exitstatus = pytest.ExitCode.USAGE_ERROR
                if self.config.pluginmanager.getplugin("terminalreporter") is None:
                    sys.stderr.write(self.write_error + "\n")
        failing, violations = self._failing(report)
        if (failing or violations) and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _failing(self, report: Any) -> tuple[list[Any], int]:
        """What fails the run: the potential deadlocks no test acknowledged (report_only), and the
        number of declared-order violations beyond those acknowledged; nothing under report_only."""
        if self.settings.report_only:
            return [], 0
        acknowledged = self.acknowledged | self.worker_acknowledged
        failing = [p for p in report.failing if p.fingerprint not in acknowledged]
        return failing, max(0, len(report.violations) - self.acknowledged_violations)

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        if self.is_worker:
            return
        import dataclasses

        from .renderers import text

        report = self.final_report()
        terminalreporter.write_sep("=", "lockwatch")
        # A real deadlock is printed once, with the test it failed; the summary names those tests.
        shown = dataclasses.replace(report, deadlocks=[]) if self.deadlock_tests else report
        width = _terminal_width(config)
        terminalreporter.write(_for_terminal(config, text.render(shown, top=self.settings.knobs.top,
                                                                 show_library=self.settings.knobs.show_library,
                                                                 width=width), width))
        if self.write_error is not None:
            terminalreporter.write_line(self.write_error, red=True, bold=True)
        else:
            for fmt, path in self.settings.knobs.report_paths.items():
                terminalreporter.write_line(f"lockwatch: {fmt.upper()} report written to {path}")
        self._write_verdict(terminalreporter, report)

    def _write_verdict(self, terminalreporter: Any, report: Any) -> None:
        """The run's verdict in words, last in the section: what fails the run and why, or that
        nothing does. With pytest-xdist no single worker may have seen a whole cycle (no test
        failed for it): the line names the cycle and the tests and workers of its edges, and the
        final summary line counts it, in red, so that the run never looks green while it fails."""
        from .renderers.common import LABELS, cycle_title, plural

        def red(line: str) -> None:
            terminalreporter.write_line(line, red=True, bold=True)

        if self.deadlock_tests:
            red(f"lockwatch: {plural(len(self.deadlock_tests), 'test')} failed because threads really "
                f"deadlocked: {', '.join(self.deadlock_tests)}")
        failing, violations = self._failing(report)
        unfailed = [p for p in failing if p.fingerprint not in self.failed_by_tests]
        for p in failing:
            where = sorted({self._where(e.context) for e in p.edges if e.context})
            how = ("no single test saw the whole cycle; " if p in unfailed else "") + \
                ("its edges were seen during " + ", ".join(where) if where else "")
            red(f"lockwatch: the run fails: potential deadlock {cycle_title(p)} "
                f"[{LABELS[p.triage]}]" + (f" ({how.rstrip('; ')})" if how else ""))
        if violations:
            red(f"lockwatch: the run fails: {plural(violations, 'declared lock order violation')}")
        if failing or violations:
            red("lockwatch: exit status 1 (tests failed) because of the finding(s) above; "
                "--lockwatch-report-only reports them without failing the run")
            count = len(unfailed) + (violations if not failing else 0)
            if count:
                # pytest colours its last line red only for failed tests and errors: the empty
                # "error" list adds no count, the "lockwatch" entries add "N lockwatch finding(s)".
                terminalreporter.stats.setdefault("error", [])
                key = "lockwatch finding" if count == 1 else "lockwatch findings"
                terminalreporter.stats.setdefault(key, []).extend(_Counted() for _ in range(count))
        elif report.failing and self.settings.report_only:
            terminalreporter.write_line(
                f"lockwatch: report only: {plural(len(report.failing), 'potential deadlock')} found; "
                "they do not fail the run", yellow=True, bold=True)
        elif report.failing:
            terminalreporter.write_line("lockwatch: the potential deadlocks found were all reported by "
                                        "tests marked report_only: they do not fail the run")
        else:
            terminalreporter.write_line("lockwatch: nothing found that fails the run")

    def _where(self, context: str) -> str:
        workers = sorted(self.workers.get(context, ()))
        if not workers:
            return context
        return f"{context} (worker{'s' if len(workers) > 1 else ''} {', '.join(workers)})"


def _terminal_width(config: pytest.Config) -> Optional[int]:
    """pytest's terminal width when its output is a terminal; None (whole lines) otherwise."""
    from .renderers import text

    if text.terminal_width(sys.__stdout__) is None:
        return None
    return int(config.get_terminal_writer().fullwidth)


def _for_terminal(config: pytest.Config, report: str, width: Optional[int] = None) -> str:
    """The text report as pytest's terminal shows it: fitted to ``width`` (a terminal's), in
    colour when pytest's own output is (--color, NO_COLOR, FORCE_COLOR, PY_COLORS: pytest decides)."""
    from .renderers import text

    report = text.fit(report, width)
    return text.colorize(report) if config.get_terminal_writer().hasmarkup else report


class _Counted:
    """One entry of pytest's summary statistics (counted in the last line of the run)."""

    count_towards_summary = True


def _ignore_text(text: str) -> None:
    """Where a real deadlock's text goes under the plugin's "raise": nowhere at once (the test
    that fails with it carries it)."""


def _thread_excepthook(previous: Any, plugin: LockwatchPlugin, args: Any) -> None:
    """threading.excepthook during a test: a DeadlockError lockwatch raised to break a deadlock
    that the session recorded ends its thread quietly (the test fails with the deadlock);
    anything else goes to the hook that was there (pytest's)."""
    from .errors import DeadlockError

    exc = args.exc_value
    if isinstance(exc, DeadlockError) and plugin.session is not None and \
            any(exc.report is d for d in plugin.session.deadlocks):
        return
    previous(args)


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


SKIP_WITHOUT = ("the lockwatch fixture needs lockwatch switched on: run pytest with --lockwatch "
                "(or --lockwatch-report-only, or lockwatch = true in the ini file)")


@pytest.fixture
def lockwatch(request: pytest.FixtureRequest) -> Any:
    """The whole run's lockwatch findings, under --lockwatch. Without it the test is skipped
    (it asserts on findings that nothing records)."""
    plugin = request.config.stash.get(_KEY, None)
    if plugin is None or plugin.session is None:
        pytest.skip(SKIP_WITHOUT)
    return LockwatchFixture(plugin.session)
