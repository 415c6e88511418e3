"""Cheap stack capture and creation-site naming, outside lockwatch's and threading's own frames."""
from __future__ import annotations

import linecache
import os
import re
import threading
from types import CodeType, FrameType

_PKG_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_THREADING_FILE = threading.__file__


def wrapt_dir() -> str:
    """wrapt's directory, found without importing wrapt (which imports asyncio and logging: see the
    comment at the top of patching.py)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("wrapt")
    except (ImportError, ValueError):
        spec = None
    origin = spec.origin if spec is not None and spec.origin else None
    return os.path.dirname(os.path.abspath(origin)) + os.sep if origin else os.sep + "nonexistent" + os.sep


_WRAPT_DIR = wrapt_dir()  # wrapt's pure-Python fallback adds frames between caller and factory

# Filenames as code objects carry them: compare co_filename strings, cached per filename.
_internal_cache: dict[str, bool] = {}

MAX_FRAMES = 16


def is_internal(filename: str) -> bool:
    """True for frames of lockwatch itself, threading.py and wrapt: never shown, never a site."""
    r = _internal_cache.get(filename)
    if r is None:
        path = os.path.abspath(filename) if not filename.startswith("<") else filename
        r = (
            path.startswith(_PKG_DIR)
            or filename == _THREADING_FILE
            or path == os.path.abspath(_THREADING_FILE)
            or (_WRAPT_DIR is not None and path.startswith(_WRAPT_DIR))
        )
        _internal_cache[filename] = r
    return r


def is_threading(filename: str) -> bool:
    return filename == _THREADING_FILE


def first_outside(frame: FrameType | None) -> FrameType | None:
    """The innermost frame from ``frame`` outwards that is not lockwatch's, threading's or wrapt's."""
    while frame is not None and is_internal(frame.f_code.co_filename):
        frame = frame.f_back
    return frame


def line_of(code: CodeType, lasti: int) -> int:
    """The source line of bytecode offset ``lasti`` in ``code`` (what ``f_lineno`` said then)."""
    if lasti < 0:
        return code.co_firstlineno
    if hasattr(code, "co_lines"):  # 3.10+
        line = code.co_firstlineno
        for start, end, ln in code.co_lines():
            if start <= lasti < end:
                return ln if ln is not None else line
            if ln is not None:
                line = ln
        return line
    import dis  # 3.9

    line = code.co_firstlineno
    for off, ln in dis.findlinestarts(code):
        if off > lasti:
            break
        line = ln
    return line


def format_frame(filename: str, line: int, function: str) -> str:
    return f"{filename}:{line} in {function}"


# Frames of lockwatch's runner start the watched program: the stack shown ends there (no
# click, runpy or lockwatch frames above the program's own <module>). A host such as pytest adds
# its own directories, so that a test's stack ends at the test function.
_RUNNER_FILE = os.path.join(_PKG_DIR, "runner.py")
_stop_dirs: tuple[str, ...] = ()
_stop_cache: dict[str, bool] = {}


def add_stop_dir(path: str) -> None:
    """Stacks end at the first frame from ``path`` (a directory) outward."""
    global _stop_dirs
    path = os.path.dirname(os.path.abspath(path)) + os.sep if os.path.isfile(path) else os.path.abspath(path) + os.sep
    if path not in _stop_dirs:
        _stop_dirs = _stop_dirs + (path,)
        _stop_cache.clear()


def _is_stop(filename: str) -> bool:
    r = _stop_cache.get(filename)
    if r is None:
        r = filename == _RUNNER_FILE or (
            bool(_stop_dirs) and not filename.startswith("<")
            and os.path.abspath(filename).startswith(_stop_dirs))
        _stop_cache[filename] = r
    return r


def capture(frame: FrameType | None, limit: int = MAX_FRAMES) -> list[str]:
    """The stack from ``frame`` outwards, internal frames dropped, innermost last."""
    out: list[str] = []
    while frame is not None and len(out) < limit:
        code = frame.f_code
        if _is_stop(code.co_filename):
            break
        if not is_internal(code.co_filename):
            out.append(format_frame(code.co_filename, frame.f_lineno, code.co_name))
        frame = frame.f_back
    out.reverse()
    return out


def capture_taken_at(code: CodeType | None, lasti: int, current: FrameType | None,
                     limit: int = MAX_FRAMES) -> list[str]:
    """The stack of an earlier acquisition made at ``code``/``lasti`` by this thread.

    The frame that took a lock the thread still holds is usually still running, as an ancestor of
    ``current``: then its callers come from the live stack and its own line from ``lasti``.
    Otherwise (it took the lock and returned) only the acquiring frame itself is known.
    """
    if code is None:
        return []
    taken = format_frame(code.co_filename, line_of(code, lasti), code.co_name)
    frame = current
    while frame is not None and frame.f_code is not code:
        frame = frame.f_back
    if frame is None:
        return [taken]
    outer = capture(frame.f_back, limit - 1)
    outer.append(taken)
    return outer


# `self._cart_lock = threading.Lock()`, `lock_a: Lock = Lock()`, `locks[k] = RLock()`
_ASSIGN = re.compile(r"^\s*(?:[A-Za-z_][\w.]*\.)?([A-Za-z_]\w*)\s*(?:\[[^\]]*\])?\s*(?::[^=]+)?=(?!=)")
_KEYWORD = re.compile(r"\b([A-Za-z_]\w*)\s*=\s*(?:[\w.]+\.)?(?:Lock|RLock|Condition|Semaphore|BoundedSemaphore)\s*\(")
_DICT_KEY = re.compile(r"""["']([A-Za-z_]\w*)["']\s*:\s*"""
                       r"""(?:[\w.]+\.)?(?:Lock|RLock|Condition|Semaphore|BoundedSemaphore)\s*\(""")


# `a, b = Lock(), Lock()`: which target is this lock's is not on the line (no name is better
# than the wrong one; `f(x, b=Lock())` is a keyword argument, and stays named).
_TUPLE_TARGETS = re.compile(r"^\s*[A-Za-z_][\w.]*\s*,[\w.,\s]*=(?!=)")


def derived_name(filename: str, line: int) -> str | None:
    """The variable or attribute a lock is assigned to on its creation line, if it says."""
    text = linecache.getline(filename, line)
    if not text or _TUPLE_TARGETS.match(text):
        return None
    m = _KEYWORD.search(text) or _DICT_KEY.search(text)
    if m:
        return m.group(1)
    m = _ASSIGN.match(text)
    if m and m.group(1) not in ("self", "cls"):
        return m.group(1)
    return None


def short_path(filename: str) -> str:
    """``filename`` relative to the working directory when inside it (for display)."""
    if filename.startswith("<"):
        return filename
    try:
        rel = os.path.relpath(filename)
    except ValueError:  # another drive on Windows
        return filename
    return filename if rel.startswith(".." + os.sep) else rel


_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
_root_cache: dict[str, str | None] = {}
_install_dirs: list[str] | None = None


def _installed_roots() -> list[str]:
    """Where installed code lives (the standard library, site-packages), longest first."""
    global _install_dirs
    if _install_dirs is None:
        import site
        import sysconfig

        dirs = {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
        try:
            dirs.update(site.getsitepackages())
        except AttributeError:  # some virtualenv versions
            pass
        dirs.add(getattr(site, "USER_SITE", None))
        _install_dirs = sorted({os.path.abspath(d) + os.sep for d in dirs if d}, key=len, reverse=True)
    return _install_dirs


def _project_root(directory: str) -> str | None:
    if directory in _root_cache:
        return _root_cache[directory]
    d, seen = directory, []
    root = None
    while True:
        if d in _root_cache:
            root = _root_cache[d]
            break
        seen.append(d)
        if any(os.path.exists(os.path.join(d, m)) for m in _MARKERS):
            root = d
            break
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    for x in seen:
        _root_cache[x] = root
    return root


def stable_path(filename: str) -> str:
    """A machine- and directory-independent form of ``filename`` for fingerprints, with forward
    slashes: installed code relative to its site-packages or standard-library directory; the
    project's code relative to its root (the nearest directory with pyproject.toml, setup.py,
    setup.cfg or .git); anything else relative to the working directory, or its base name. It
    never depends on where the program was started from or what a runner put on sys.path."""
    if filename.startswith("<"):
        return filename
    path = os.path.abspath(filename)
    for base in _installed_roots():
        if path.startswith(base):
            return path[len(base):].replace(os.sep, "/")
    root = _project_root(os.path.dirname(path))
    if root is not None:
        return os.path.relpath(path, root).replace(os.sep, "/")
    cwd = os.getcwd()
    if path.startswith(cwd + os.sep):
        return os.path.relpath(path, cwd).replace(os.sep, "/")
    return os.path.basename(path)
