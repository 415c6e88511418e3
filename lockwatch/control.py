"""The life of a recording session: start, stop, fork, SIGTERM, exit, children, and running a program."""
from __future__ import annotations

import _thread
import atexit
import errno
import os
import sys
from typing import IO, Any, Callable, Optional

# snapshot and analysis (and the model) are imported with the session, not when a report is asked
# for: a snapshot or a report may be taken at any time (from a signal handler, by the pytest
# plugin after each test, while another thread forks), and must import nothing then
# (tests/test_processes.py, test_a_snapshot_imports_nothing).
from . import patching, primitives, proxies, recorder, snapshot
from .analysis import Report, build_report
from .files import ReportWriteError, check_writable, write_report_files
from .model import Alert, Deadlock
from .settings import EXIT_DEADLOCK, EXIT_POTENTIAL_DEADLOCK, EXIT_USAGE, Settings, to_environ

signal: Any = __import__("_signal")  # not signal.py and its enums: see watchdog.py

_current: Optional[Session] = None  # the session recording now, whoever started it


def current() -> Optional[Session]:
    """The running session (started by the CLI, the pytest plugin or the API), if any."""
    return _current


class Session:
    """What one enable()..disable() span recorded. ``report()`` analyses it; ``potential_deadlocks``
    is the short way to the findings."""

    def __init__(self, settings: Optional[Settings] = None, *, suppressions: Optional[list[Any]] = None,
                 baseline: Optional[dict[str, Any]] = None, children_dir: Optional[str] = None,
                 on_terminate: bool = False) -> None:
        self.settings = settings or Settings()
        self.suppressions = list(suppressions or [])  # config.Suppression entries
        self.baseline = baseline  # fingerprint -> entry, from a baseline file
        self.children_dir = children_dir  # child processes' JSON reports to merge into this one
        self.on_terminate = on_terminate  # on SIGTERM: write the reports, then die of it as before
        self.active = False
        self.deadlocks: list[dict[str, Any]] = []  # seen by the watchdog, as plain data
        self.alerts: list[dict[str, Any]] = []
        self._watchdog: Any = None
        self.pid = os.getpid()
        self.finish: Any = None  # what runs before the process dies of SIGTERM or of a deadlock
        #                          (--on-deadlock exit); default: write_reports
        self._writing = False  # a report is being written (SIGTERM then waits for it)
        self._die_after_write: Optional[int] = None
        # Where a real deadlock's text goes at once (default: stderr); the pytest plugin shows it
        # with the test that fails instead.
        self.deadlock_text: Optional[Callable[[str], None]] = None

    @property
    def in_forked_child(self) -> bool:
        return os.getpid() != self.pid

    def start(self) -> None:
        if self.active:
            return
        global _current
        recorder.reset()
        recorder.recording = True
        first = not patching.installed()
        patching.install()
        if first:
            # Installing imports wrapt (and, when wrapt cannot do without them, asyncio with
            # concurrent.futures and logging): their locks are instrumented (good), but what
            # lockwatch's own imports did with them is not the program's doing.
            recorder.forget_activity()
        self.active = True
        _current = self
        self._start_watchdog()
        if self.on_terminate:
            # Reports written at exit or from a signal handler must not import anything then
            # (a handler may interrupt an import of the same module): import the renderers of
            # what this process writes now. A forked child of `python -m lockwatch` writes JSON.
            from . import renderers

            for fmt in dict.fromkeys([*self.formats_written, *(["json"] if self.children_dir else [])]):
                renderers.get(fmt)
            _install_sigterm(self)
        _sessions_to_fork.append(self)

    @property
    def formats_written(self) -> list[str]:
        """The reports write_reports() writes: text (not in a forked child) and each report file."""
        text = ["text"] if self.settings.text and not self.in_forked_child else []
        return [*text, *self.settings.report_paths]

    def _start_watchdog(self) -> None:
        st = self.settings
        if st.watchdog_wanted:
            from .watchdog import Watchdog

            self._watchdog = Watchdog(st.deadlock_timeout, st.on_deadlock, self._on_deadlock,
                                      self._on_alert, st.warn_hold, st.warn_wait)
            recorder.watch = self._watchdog
            self._watchdog.start()

    def stop(self) -> None:
        global _current
        if not self.active:
            return
        if _current is self:
            _current = None
        patching.uninstall()
        recorder.recording = False
        if self._watchdog is not None:
            recorder.watch = None
            self._watchdog.stop()
            self._watchdog = None
        self.active = False

    def _after_fork_in_child(self) -> None:
        """The child of fork() keeps recording, into a report of its own: the recorder already
        dropped what the parent recorded; the watchdog thread did not survive the fork."""
        self.deadlocks, self.alerts = [], []
        if self.children_dir:
            # A child of `python -m lockwatch`: its report joins the other children's, which
            # the parent merges into the one report it prints.
            self.report_as_child()
        if self.active and self._watchdog is not None:
            self._start_watchdog()
        mp_util = sys.modules.get("multiprocessing.util")
        if mp_util is not None:
            # A multiprocessing worker ends with os._exit (no atexit): its report is written by
            # a multiprocessing finalizer, registered after the worker clears the inherited ones.
            mp_util.register_after_fork(self, _register_mp_finalizer)

    def report_as_child(self) -> None:
        """Write no report of its own: only JSON, into the parent's children folder."""
        assert self.children_dir is not None
        self.settings = _as_child(self.settings, self.children_dir)

    def path(self, path: str) -> str:
        """A report path for this process: %p becomes the process id; in a forked child a path
        without %p gets ".<pid>" before its extension, so it never overwrites the parent's."""
        pid = str(os.getpid())
        if "%p" in path:
            return path.replace("%p", pid)
        if self.in_forked_child:
            root, ext = os.path.splitext(path)
            return f"{root}.{pid}{ext}"
        return path

    def child_snapshots(self) -> list[snapshot.Snapshot]:
        """Reports written by child processes (LOCKWATCH_JSON pointed them at children_dir)."""
        folder = self.children_dir
        if not folder or not os.path.isdir(folder):
            return []
        from .model import ReportError, load

        out = []
        for name in sorted(os.listdir(folder)):
            if not name.endswith(".json"):
                continue
            try:
                saved = load(os.path.join(folder, name))
            except ReportError:
                continue  # a child killed while writing: its report is lost, the rest stands
            saved.snapshot.meta["deadlocks"] = [d.to_dict() for d in saved.deadlocks]
            out.append(saved.snapshot)
        return out

    def _emit(self, text: str) -> None:
        try:
            sys.stderr.write(text)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass

    def _on_deadlock(self, data: dict[str, Any], text: str) -> None:
        self.deadlocks.append(data)
        if self.settings.on_deadlock != "exit" or not self.settings.text:
            (self.deadlock_text or self._emit)(text)  # under "exit" the full report below carries it
        if self.settings.on_deadlock == "exit":
            from .watchdog import exit_now

            try:
                self.write_reports_or_warn()
            finally:
                (self.deadlock_text or self._emit)(f"lockwatch: {DEADLOCK_CLOSING}\n")
                exit_now(EXIT_DEADLOCK)

    def _on_alert(self, data: dict[str, Any], text: str) -> None:
        self.alerts.append(data)
        self._emit(text)

    def snapshot(self, live_stats: bool = True) -> snapshot.Snapshot:
        return snapshot.take(recorder.state, recorder.mutex,
                             (proxies.Lock, proxies.RLock, primitives._SemaphoreMixin), live_stats)

    @property
    def edges_version(self) -> int:
        """Changes whenever a new lock-order edge is recorded (cheap to poll)."""
        return recorder.state.edges_version

    def report(self, live_stats: bool = True) -> Report:
        """Analyse what was recorded, with the project's suppressions and baseline applied."""
        children = self.child_snapshots() if not self.in_forked_child else []
        deadlocks = list(self.deadlocks) + [d for c in children for d in c.meta.get("deadlocks", [])]
        return build_report([self.snapshot(live_stats), *children],
                            deadlocks=[Deadlock.from_dict(d) for d in deadlocks],
                            alerts=[Alert.from_dict(a) for a in self.alerts],
                            suppressions=self.suppressions, baseline=self.baseline)

    @property
    def potential_deadlocks(self) -> list:
        return self.report().potential_deadlocks

    def write_reports(self, report: Optional[Report] = None, stream: Optional[IO[str]] = None
                      ) -> Optional[Report]:
        """Write the configured reports (text on stderr, JSON to a file) and return the analysis.
        A forked child writes no text (its parent reports), only its own files. With nothing to
        write and no ``report`` given, no report is made: returns None."""
        self._writing = True
        try:
            return self._write_reports(report, stream)
        finally:
            self._writing = False
            if self._die_after_write is not None:
                _die_of(self._die_after_write)

    def _write_reports(self, report: Optional[Report], stream: Optional[IO[str]]) -> Optional[Report]:
        formats = self.formats_written
        if report is None and not formats:
            return None
        report = report or self.report()
        if "text" in formats:
            from .renderers import text

            out = stream or sys.stderr
            try:
                width = text.terminal_width(out)
                rendered = text.render(report, top=self.settings.top, show_library=self.settings.show_library,
                                       width=width)
                rendered = text.fit(rendered, width)
                out.write(text.colorize(rendered) if text.use_color(out, self.settings.color) else rendered)
                out.flush()
            except (OSError, ValueError):  # stderr closed by the program
                pass
        paths = {fmt: self.path(path) for fmt, path in self.settings.report_paths.items()}
        write_report_files(report, paths,
                           ignore=lambda exc: exc.errno == errno.ENOENT and _parent_reported(exc.path),
                           show_library=self.settings.show_library)
        return report

    def write_reports_or_warn(self) -> bool:
        """write_reports() where nobody can catch its error (at exit, in a signal handler, in a
        multiprocessing finalizer): a report that cannot be written is one line on stderr.
        Returns whether every report was written."""
        try:
            (self.finish or self.write_reports)()
        except ReportWriteError as exc:
            _warn(str(exc))
            return False
        return True


def _as_child(settings: Settings, children_dir: str) -> Settings:
    """What a child of `python -m lockwatch` (a subprocess, or a forked copy) records with: JSON
    only, into the parent's children folder, which the parent merges and reports (applying its
    suppressions and baseline, and deciding the exit status)."""
    return settings.replace(json_path=os.path.join(children_dir, "child-%p.json"), html_path=None,
                            dot_path=None, text=False, fail_on_cycle=False, suppressions_path=None,
                            baseline_path=None)


# The folder where `python -m lockwatch` collects its child processes' reports.
CHILDREN_PREFIX = "lockwatch-children-"


def _parent_reported(path: str) -> bool:
    """Is ``path`` in the children's folder of a `python -m lockwatch` that has already reported
    and removed it? Some children outlive their parent's report (multiprocessing's resource
    tracker and forkserver exit after the parent): nobody would read theirs."""
    folder = os.path.dirname(path)
    return os.path.basename(folder).startswith(CHILDREN_PREFIX) and not os.path.isdir(folder)


def load_policy(settings: Settings, project: Any) -> tuple[list[Any], Optional[dict[str, Any]]]:
    """The suppressions (``project``'s [tool.lockwatch] ones, plus those of the suppressions file
    asked for) and the baseline (asked for, or named in [tool.lockwatch]). Raises a UserError
    (config.ConfigError, baseline.BaselineError) with one line for the user."""
    from . import baseline as baseline_mod
    from . import config

    cfg = project
    if settings.suppressions_path:
        cfg = config.combine(cfg, config.load_file(settings.suppressions_path))
    path = settings.baseline_path or cfg.baseline
    known = None
    if path:
        if not settings.baseline_path and not os.path.exists(path):
            known = {}  # named in pyproject but not written yet: everything is new
        else:
            known = baseline_mod.read(path)
    return cfg.suppressions, known


_sessions_to_fork: list[Session] = []


def _after_fork_in_child() -> None:
    for session in list(_sessions_to_fork):
        if session.active:
            try:
                session._after_fork_in_child()
            except Exception:
                pass


# The SIGTERM handler lockwatch installed (while it is installed), and the signal masks that
# _block_sigterm_for_fork saved, by forking thread.
_our_sigterm: Any = None
_masks_before_fork: dict[int, Any] = {}


def _block_sigterm_for_fork() -> None:
    """Before fork(): block SIGTERM in the forking thread while lockwatch's handler is installed.
    A Python-level handler inherited by a child loses a SIGTERM that arrives before the child's
    interpreter has reset its signal state (CPython clears the signals tripped in that window:
    measured on 3.13, 13 % of `Process.terminate()` calls right after `start()` with the fork start
    method, 5-22 % with forkserver, left the child running). A program's children have SIGTERM's
    default action without lockwatch, so they must die of it with lockwatch: the child inherits
    the blocked signal as pending and gets it once the mask is restored, after that reset."""
    if _our_sigterm is None:
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not _our_sigterm:
            return
        _masks_before_fork[_thread.get_ident()] = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    except (ValueError, OSError, AttributeError):
        pass


def _restore_sigterm_after_fork() -> None:
    old = _masks_before_fork.pop(_thread.get_ident(), None)
    if old is not None:
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        except (ValueError, OSError):
            pass


def _after_fork_in_child_restoring() -> None:
    mask = _masks_before_fork.pop(_thread.get_ident(), None)
    _masks_before_fork.clear()  # other threads' entries did not survive the fork
    try:
        _drop_sigterm_handler()
        _after_fork_in_child()
    finally:
        if mask is not None:
            try:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            except (ValueError, OSError):
                pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_block_sigterm_for_fork, after_in_parent=_restore_sigterm_after_fork,
                        after_in_child=_after_fork_in_child_restoring)


def _drop_sigterm_handler() -> None:
    """In a child process (forked, or a multiprocessing child): SIGTERM's default action again,
    as without lockwatch. A Python-level handler runs only when the main thread next runs Python
    code: a SIGTERM that arrives just before the main thread blocks in C (a multiprocessing
    SemLock, a pipe read: a Pool worker going back for work) waits until something wakes that
    thread, and Pool.terminate() then hangs joining the worker (measured on 3.13, forkserver:
    1 Pool of 4 fresh workers in 30-40 left a worker running). Such a child loses its report
    when SIGTERM kills it, as coverage.py's children do unless told otherwise; the process where
    lockwatch was switched on keeps its handler (its report is the one people read)."""
    global _our_sigterm
    if _our_sigterm is None:
        return
    try:
        if signal.getsignal(signal.SIGTERM) is _our_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except (ValueError, OSError):
        return
    _our_sigterm = None


def is_multiprocessing_child() -> bool:
    """Whether this process was started by multiprocessing's spawn or forkserver start method (a
    worker, a manager, the forkserver itself, the resource tracker): its command line is
    `python -c "from multiprocessing... import ..."`."""
    argv = getattr(sys, "orig_argv", None)
    if argv is None:  # Python 3.9
        try:
            with open("/proc/self/cmdline", "rb") as f:
                argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0")]
        except OSError:
            return False
    for i, arg in enumerate(argv[:-1]):
        if arg == "-c":
            return argv[i + 1].lstrip().startswith("from multiprocessing.")
    return False


def _register_mp_finalizer(session: Session) -> None:
    import multiprocessing.util as mp_util

    mp_util.Finalize(None, session.write_reports_or_warn, exitpriority=-100)


def _install_sigterm(session: Session) -> None:
    """On SIGTERM, write the reports and then die of SIGTERM as the program would have. Only when
    SIGTERM still has its default action (a program's own handler is left alone) and only from
    the main thread (where Python allows handlers to be set)."""
    import threading

    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        return
    if is_multiprocessing_child():
        return  # SIGTERM keeps its default action there: see _drop_sigterm_handler
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
    except (ValueError, OSError):
        return

    def on_sigterm(signum: int, frame: Any) -> None:
        if session._writing:
            # The report is being written already (the process was exiting): let it finish,
            # then die of the signal.
            session._die_after_write = signum
            return
        try:
            session.write_reports_or_warn()
        finally:
            _die_of(signum)

    global _our_sigterm
    signal.signal(signal.SIGTERM, on_sigterm)
    _our_sigterm = on_sigterm


def _die_of(signum: int) -> None:
    """End the process by ``signum`` with its default action, as it would have ended unwatched."""
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def run_program(target: str, args: list[str], *, as_module: bool, settings: Settings,
                suppressions: Optional[list[Any]] = None, baseline: Optional[dict[str, Any]] = None,
                annotate: Optional[Callable[[Report], None]] = None) -> int:
    """Run a script (or, with ``as_module``, a module) as `python` would, recording its locks,
    then write the reports that ``settings`` ask for, and return the exit status: the program's
    own, or EXIT_POTENTIAL_DEADLOCK under ``settings.fail_on_cycle``. ``annotate`` sees the
    report before it is written (--confirm adds its confirmations there). Raises a UserError (one line)
    before the program starts when a report path cannot be written or the program is not found."""
    from .files import private_folder, remove_folder
    from .runner import ProgramRunner
    from .settings import SettingsError

    for fmt, path in settings.report_paths.items():
        problem = check_writable(path)
        if problem:
            raise SettingsError(f"--{fmt}: {problem}")
    runner = ProgramRunner(target, list(args), as_module=as_module)
    import lockwatch

    lockwatch._take_over()  # LOCKWATCH=1 in our own environment: this run is the session
    children = private_folder(CHILDREN_PREFIX)
    session = Session(settings, suppressions=suppressions, baseline=baseline, children_dir=children,
                      on_terminate=True)

    def finish() -> None:
        # What SIGTERM (and --on-deadlock exit) runs before the process dies: the report, then
        # the children's folder is removed (a forked child leaves it to this process).
        try:
            session.write_reports()
        finally:
            if not session.in_forked_child:
                remove_folder(children)

    session.finish = finish
    # Child processes (subprocesses, multiprocessing workers) switch lockwatch on at start-up
    # through the pylockwatch.pth hook and write their reports where this process merges them.
    os.environ.update(to_environ(_as_child(settings, children)))
    logging_before = "logging" in sys.modules
    # Patch before anything of the program is imported: `python -m pkg.mod` imports pkg while
    # the module is looked up, and module-level locks are created at import.
    session.start()
    try:
        runner.prepare()
    except BaseException:
        session.stop()
        remove_folder(children)
        raise
    status = runner.run()
    _run_exit_handlers_while_recording(logging_before)
    if session.in_forked_child:
        # The program forked and this child returned from it: its report goes with the
        # children's, and the parent prints the report.
        session.report_as_child()
        try:
            session.write_reports()
        except ReportWriteError as exc:
            _warn(f"process {os.getpid()}: {exc}")
        return status
    session.stop()
    try:
        # A report is made only if something needs it: one is written, --fail-on-cycle, --confirm
        # (`-q` and no report file: the analysis of a large run costs seconds).
        report = session.report() if annotate is not None or settings.fail_on_cycle else None
        if report is not None and annotate is not None:
            annotate(report)
        report = session.write_reports(report)
    except ReportWriteError as exc:
        _warn(str(exc))
        return status or EXIT_USAGE
    finally:
        remove_folder(children)
    if settings.fail_on_cycle and status == 0 and report is not None and (report.failing or report.violations):
        _warn(closing_line(report))
        return EXIT_POTENTIAL_DEADLOCK
    return status


def closing_line(report: Report) -> str:
    """Why the status is EXIT_POTENTIAL_DEADLOCK: the last line, also with -q (no text report)."""
    from .renderers.common import cycle_title, plural

    why = []
    if report.failing:
        titles = "; ".join(cycle_title(p) for p in report.failing[:3])
        more = f"; and {len(report.failing) - 3} more" if len(report.failing) > 3 else ""
        why.append(f"{plural(len(report.failing), 'potential deadlock')} that can hang ({titles}{more})")
    if report.violations:
        why.append(plural(len(report.violations), "declared lock order violation"))
    return (f"exit status {EXIT_POTENTIAL_DEADLOCK} (--fail-on-cycle): the program succeeded, but "
            f"lockwatch found {' and '.join(why)}")


DEADLOCK_CLOSING = (f"exit status {EXIT_DEADLOCK}: threads really deadlocked (--on-deadlock exit); lockwatch "
                    "ended the process instead of leaving it hanging")


def _warn(message: str) -> None:
    try:
        sys.stderr.write(f"lockwatch: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _run_exit_handlers_while_recording(logging_before: bool) -> None:
    """The program's own atexit handlers (logging's flush, pools' shutdown) take locks too: run
    them now, while recording, so that they are in the report and run once, before it. CPython
    has no public way to run them early; atexit._run_exitfuncs is the one the interpreter itself
    calls at exit (unchanged from 3.9 to 3.13), and it clears the list, so they do not run twice."""
    unwatched = _logging_shutdown_of_lockwatch(logging_before)
    if unwatched is not None:
        atexit.unregister(unwatched)
    atexit._run_exitfuncs()
    if unwatched is not None:
        atexit.register(unwatched)  # at the real exit, after the report, as it would have run


def _logging_shutdown_of_lockwatch(imported_before: bool) -> Optional[Callable[[], None]]:
    """logging.shutdown, if logging is here only because lockwatch imported it (concurrent.futures
    imports logging, and so does asyncio when wrapt imports it) and the program gave it no
    handler: its exit-time flush would put two of logging's locks and an edge between them in
    every report."""
    logging = sys.modules.get("logging")
    if imported_before or logging is None:
        return None
    last_resort = getattr(logging, "lastResort", None)
    for ref in list(getattr(logging, "_handlerList", [])):
        handler = ref()
        if handler is not None and handler is not last_resort:
            return None  # the program configured logging: its shutdown is the program's
    return logging.shutdown
