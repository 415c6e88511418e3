"""Run a Python script or module (``python script.py`` / ``python -m module``) inside this process."""

from __future__ import annotations

import builtins
import contextlib
import importlib.machinery
import importlib.util
import marshal
import os
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

from .errors import UserError
from .settings import EXIT_INTERRUPTED


class NoSource(UserError):
    """The program to run cannot be found: ``str(exc)`` is one clear line for the user,
    e.g. "No file to run: 'nope.py'" or "No module named foo"."""


class ProgramRunner:
    """Run a program the way the ``python`` command would, then put the interpreter state back.

    ``run()`` returns the status ``python`` would exit with: 0 at the normal end, the
    ``SystemExit`` code (None -> 0, an int -> itself, anything else is printed to stderr -> 1),
    1 after printing the traceback of an uncaught exception (SyntaxError included), and 130
    after printing the traceback of an uncaught ``KeyboardInterrupt`` (python re-kills itself
    with SIGINT there, which shells report as 130).  Like the interpreter at exit, ``run()``
    waits for the non-daemon threads the program started.  Afterwards ``sys.argv``, ``sys.path``
    (the whole list, in place) and ``sys.modules['__main__']`` are restored; modules the program
    imported stay imported.  The program's ``atexit`` handlers still run only at real exit.
    """

    def __init__(self, target: str, args: list[str], as_module: bool) -> None:
        self.target = target
        self.args = list(args)
        self.as_module = as_module
        self._prepared = False
        self._path0 = ""  # the program's sys.path[0]
        self._argv0 = target
        self._main_attrs: dict[str, Any] = {}  # dunders of the fresh __main__ module
        self._code: types.CodeType | None = None
        # An error the program itself caused while being loaded (a SyntaxError, an exception
        # in a parent package's __init__): python reports it as a crash, so run() does too.
        self._load_error: BaseException | None = None

    def prepare(self) -> None:
        """Locate and compile the program without running its code; raise NoSource if it
        cannot be found.  ``-m`` imports the module's parent packages, as ``python -m`` does."""
        if self.as_module:
            self._path0 = os.getcwd()  # python -m searches (and runs) with the cwd first
            with _path0_set_to(self._path0):
                self._prepare_module()
        else:
            self._prepare_script()
        self._prepared = True

    def run(self) -> int:
        """Run the program and return the exit status python would have produced."""
        if not self._prepared:
            self.prepare()
        main = types.ModuleType("__main__")
        # python's own __main__ starts with __builtins__ and an empty __annotations__.
        main.__dict__.update(__builtins__=builtins, __annotations__={}, **self._main_attrs)
        old_argv = sys.argv
        old_main = sys.modules.get("__main__")
        threads_before = set(threading.enumerate())
        sys.argv = [self._argv0, *self.args]
        sys.modules["__main__"] = main
        try:
            with _path0_set_to(self._path0):
                status = self._execute(main)
                try:
                    _wait_for_threads(threads_before)
                except KeyboardInterrupt:  # Ctrl-C while waiting: stop waiting, like an interrupted run
                    status = EXIT_INTERRUPTED
        finally:
            sys.argv = old_argv  # (sys.path is restored by _path0_set_to)
            if old_main is None:
                sys.modules.pop("__main__", None)
            else:
                sys.modules["__main__"] = old_main
        return status

    def _execute(self, main: types.ModuleType) -> int:
        """Run the program's code in ``main``; report how it ended as python would."""
        if self._load_error is not None:
            return _exit_status(self._load_error)
        assert self._code is not None
        try:
            exec(self._code, main.__dict__)
        except BaseException as exc:  # every way the program can end is reported, none re-raised
            return _exit_status(exc)
        return 0

    def _prepare_script(self) -> None:
        path = self.target
        if not os.path.exists(path):
            raise NoSource(f"No file to run: {path!r}")
        if os.path.isdir(path) or _is_zipfile(path):
            # python runs <dir or zip>/__main__.py as module '__main__', the container on sys.path.
            self._path0 = os.path.abspath(path)
            spec = importlib.machinery.PathFinder.find_spec("__main__", [self._path0])
            if spec is None or spec.loader is None:
                raise NoSource(f"can't find '__main__' module in {self._path0!r}")
            self._use_spec(spec)
            return
        try:
            with open(path, "rb") as f:
                source = f.read()
        except OSError as exc:
            raise NoSource(f"Cannot read file to run: {path!r} ({exc.strerror})") from None
        filename = os.path.abspath(path)  # python >= 3.9 gives the script an absolute __file__
        self._path0 = os.path.dirname(os.path.realpath(path))  # symlinks resolved, like python
        loader: Any = importlib.machinery.SourceFileLoader("__main__", filename)
        try:
            if path.endswith(".pyc") or source[:4] == importlib.util.MAGIC_NUMBER:
                loader = importlib.machinery.SourcelessFileLoader("__main__", filename)
                if source[:4] != importlib.util.MAGIC_NUMBER:
                    raise RuntimeError("Bad magic number in .pyc file")
                self._code = marshal.loads(source[16:])
            else:
                # dont_inherit: this module's __future__ imports must not leak into the program.
                self._code = compile(source, filename, "exec", dont_inherit=True)
        except Exception as exc:  # SyntaxError, ValueError (null bytes), ...: the program's fault
            self._load_error = exc
        self._main_attrs = dict(__file__=filename, __cached__=None, __loader__=loader)

    def _prepare_module(self) -> None:
        try:
            spec = _find_module_spec(self.target)
        except NoSource:
            raise
        except Exception as exc:  # e.g. a parent package's __init__ failed: python -m crashes too
            self._load_error = exc
            return
        self._use_spec(spec)
        self._argv0 = spec.origin or self.target  # python -m puts the module's file in argv[0]

    def _use_spec(self, spec: importlib.machinery.ModuleSpec) -> None:
        """Set up to run ``spec``'s code as __main__, as runpy._run_module_as_main does."""
        self._main_attrs = dict(
            __file__=spec.origin,
            __cached__=spec.cached,
            __loader__=spec.loader,
            __package__=spec.parent,
            __spec__=spec,
        )
        try:
            code = spec.loader.get_code(spec.name)  # type: ignore[union-attr]
        except ImportError as exc:
            raise NoSource(str(exc)) from None
        except Exception as exc:  # SyntaxError and the like: reported by run()
            self._load_error = exc
            return
        if code is None:
            raise NoSource(f"No code object available for {spec.name}")
        self._code = code


def _find_module_spec(name: str) -> importlib.machinery.ModuleSpec:
    """Find what ``python -m name`` runs (a package runs its __main__), with python's messages."""
    if name.startswith("."):
        raise NoSource("Relative module names not supported")
    parent = name.rpartition(".")[0]
    if parent:
        try:
            __import__(parent)  # python -m imports the parents first, running their __init__
        except ImportError as exc:
            # A missing ancestor is reported by find_spec below; other import errors are crashes.
            if exc.name is None or (exc.name != parent and not parent.startswith(exc.name + ".")):
                raise
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        raise NoSource(
            f"Error while finding module specification for {name!r} ({type(exc).__name__}: {exc})"
        ) from None
    if spec is None:
        raise NoSource(f"No module named {name}")
    if spec.submodule_search_locations is not None:
        if name == "__main__" or name.endswith(".__main__"):
            raise NoSource("Cannot use package as __main__ module")
        try:
            return _find_module_spec(name + ".__main__")
        except NoSource as exc:
            raise NoSource(f"{exc}; {name!r} is a package and cannot be directly executed") from None
    if spec.loader is None:
        raise NoSource(f"{name!r} is a namespace package and cannot be executed")
    return spec


@contextlib.contextmanager
def _path0_set_to(path: str) -> Iterator[None]:
    """Make ``path`` the program's sys.path[0] (replacing the caller's entry), then restore sys.path."""
    saved = sys.path[:]
    if not getattr(sys.flags, "safe_path", False):  # python -P adds no sys.path[0] at all
        sys.path[0:1] = [path]
    try:
        yield
    finally:
        sys.path[:] = saved


def _exit_status(exc: BaseException) -> int:
    """Report how the program ended, as python does at top level, and return the exit status."""
    if isinstance(exc, SystemExit):
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        stderr = sys.stderr or sys.__stderr__
        if stderr is not None:
            print(code, file=stderr)  # python prints a non-int exit code and exits with 1
        return 1
    _print_exception(exc)
    return EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else 1


def _print_exception(exc: BaseException) -> None:
    """Print ``exc`` via sys.excepthook (like python), minus this module's leading frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == _THIS_FILE:
        tb = tb.tb_next
    exc.__traceback__ = tb
    try:
        hook = sys.excepthook
        hook(type(exc), exc, tb)
    except Exception as hook_exc:  # python reports a broken hook, then prints the default way
        import traceback

        print("Error in sys.excepthook:", file=sys.stderr)
        traceback.print_exception(type(hook_exc), hook_exc, hook_exc.__traceback__)
        print("\nOriginal exception was:", file=sys.stderr)
        traceback.print_exception(type(exc), exc, tb)


def _wait_for_threads(existing: set[threading.Thread]) -> None:
    """Wait for the non-daemon threads started since ``existing``, as python does before exit."""
    me = threading.current_thread()

    def pending() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t not in existing and t is not me and not t.daemon]

    if not pending():
        return
    # threading._shutdown() would also mark our main thread stopped, so do its useful part by
    # hand: run the hooks that tell idle concurrent.futures workers to quit, then join.
    for hook in reversed(getattr(threading, "_threading_atexits", [])):
        try:
            hook()
        except Exception:
            import traceback

            traceback.print_exc()
    while True:
        threads = pending()
        if not threads:
            return
        for t in threads:
            t.join()


_THIS_FILE = _exit_status.__code__.co_filename


# A zip file ends with its end-of-central-directory record, which begins with this signature and
# is at most 22 bytes + a 65,535-byte comment from the end (zipfile._EndRecData looks no further).
_END_OF_ZIP_SIGNATURE = b"PK\005\006"
_END_OF_ZIP_MAX = 22 + 65535


def _is_zipfile(path: str) -> bool:
    """zipfile.is_zipfile(path), without importing zipfile (and pathlib, ~6 % of an empty run's
    instructions under the CLI) for a script whose last 64 KiB do not even hold the signature
    zipfile looks for: the common case, a plain script."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _END_OF_ZIP_MAX))
            if _END_OF_ZIP_SIGNATURE not in f.read():
                return False
    except OSError:
        pass  # as zipfile.is_zipfile decides
    import zipfile

    return zipfile.is_zipfile(path)
