"""Cheap stack capture and creation-site naming, outside lockwatch's and threading's own frames."""
from __future__ import annotations

import ast
import itertools
import linecache
import opcode
import os
import re
import sys
import threading
from collections.abc import Iterator
from types import CodeType, FrameType

_PKG_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_THREADING_FILE = threading.__file__


def _stdlib_dirs() -> tuple[str, ...]:
    """The standard library's folders, each ending with os.sep: os.py's, and the one that holds
    lib-dynload (its extension modules) when that is on sys.path. These are what
    sysconfig.get_paths() calls "stdlib" and "platstdlib" for an installed interpreter, but for a
    virtual environment's own lib/pythonX.Y, which holds only its site-packages. Found without
    sysconfig, whose get_paths() cost every switched-on process 11 M instructions (5% of an
    empty program's start-up under `python -m lockwatch`; callgrind, 3.11), and at import: a
    first import later, at a snapshot, could be cut short by a fork in another thread, and the
    child would wait forever for the half-imported module's lock at its own exit."""
    dirs = {os.path.dirname(os.path.abspath(os.__file__))}
    dirs.update(os.path.dirname(os.path.abspath(p)) for p in sys.path
                if p and os.path.basename(os.path.normpath(p)) == "lib-dynload")
    return tuple(sorted(d.rstrip(os.sep) + os.sep for d in dirs))


STDLIB_DIRS = _stdlib_dirs()


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


def other_threads_frames() -> dict[int, FrameType]:
    """sys._current_frames() without the calling thread's own frame. With it, the dict held in
    a local variable of that frame made a reference cycle (frame -> its locals -> dict ->
    frame) that kept every thread's frame, and the objects in their locals, alive until the
    garbage collector ran: ended threads' Thread objects stayed in threading._dangling, which
    CPython 3.9/3.10's threading_cleanup() reports (test_concurrent_futures, 'env changed')."""
    frames = sys._current_frames()
    frames.pop(threading.get_ident(), None)
    return frames


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


# How far chain_key looks: far past what a stack shows (MAX_FRAMES frames of the program), for
# the search of capture_taken_at; a chain deeper than this is keyed by its first CHAIN_DEPTH frames.
CHAIN_DEPTH = 256


def chain_key(frame: FrameType | None) -> tuple[int, ...]:
    """What decides the stacks that capture() and capture_taken_at() make from ``frame``: each
    frame's code (by id) and instruction, outward to where they stop (a stop frame, the thread's
    first frame). Equal keys, equal stacks, as long as the code objects live (a cache keyed by
    this keeps them: chain_codes). The stack's every frame counts, not only the innermost: a lock
    taken at one line called from two tests is two stacks."""
    key: list[int] = []
    append = key.append
    stop = _stop_cache.get
    n = CHAIN_DEPTH
    while frame is not None and n:
        code = frame.f_code
        r = stop(code.co_filename)
        if r is None:
            r = _is_stop(code.co_filename)
        if r:
            break
        append(id(code))
        append(frame.f_lasti)
        frame = frame.f_back
        n -= 1
    return tuple(key)


def chain_codes(frame: FrameType | None) -> tuple[CodeType, ...]:
    """The code objects whose ids chain_key(frame) holds."""
    codes: list[CodeType] = []
    while frame is not None and len(codes) < CHAIN_DEPTH and not _is_stop(frame.f_code.co_filename):
        codes.append(frame.f_code)
        frame = frame.f_back
    return tuple(codes)


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
    depth = 0
    # Searched no further than chain_key(current) covers (what a cache of these stacks is keyed
    # by): not past a stop frame, whose callers no stack shows.
    while frame is not None and frame.f_code is not code:
        if depth == CHAIN_DEPTH or _is_stop(frame.f_code.co_filename):
            return [taken]
        depth += 1
        frame = frame.f_back
    if frame is None or _is_stop(frame.f_code.co_filename):
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


def derived_name(filename: str, line: int, column: int | None = None) -> str | None:
    """The variable or attribute a lock is assigned to on its creation line, if it says."""
    return derived_target(filename, line, column)[0]


def derived_target(filename: str, line: int, column: int | None = None) -> tuple[str | None, bool]:
    """(name, on_self): the target a lock made on ``line`` goes to (the call at ``column`` when
    known, else the line's one lock-making call, else its one call), and whether it is an
    attribute of ``self``/``cls`` (`self._lock = Lock()`: a member of the method's class).
    Read from the statement's syntax tree, so `self._lock: threading.Lock = threading.Lock()`
    is `_lock`, not the annotation's `Lock`; a regular expression when the line does not parse."""
    text = linecache.getline(filename, line)
    if not text or _TUPLE_TARGETS.match(text):
        return None, False
    tree = _line_tree(filename, line)
    if tree is not None:
        root, indent = tree
        calls = [n for n in ast.walk(root) if isinstance(n, ast.Call) and n.lineno == 1 + indent[0]]
        if column is not None:
            chosen = [c for c in calls if c.col_offset + indent[1] == column]
        else:
            makers = [c for c in calls if _callee(c) in _MAKERS]
            chosen = makers if makers else calls
        if len(chosen) == 1:
            parents = {id(child): node for node in ast.walk(root) for child in ast.iter_child_nodes(node)}
            name, on_self = _role_full(chosen[0], parents)
            if name is not None:
                return name, on_self
    m = _KEYWORD.search(text) or _DICT_KEY.search(text)
    if m:
        return m.group(1), False
    m = _ASSIGN.match(text)
    if m and m.group(1) not in ("self", "cls"):
        return m.group(1), bool(re.match(r"\s*(?:self|cls)\.", text))
    return None, False


# -- which call of its line made a lock --------------------------------------------------------------
# Two locks made on one line (`a, b = Lock(), Lock()`) are two roles, two sites; one call that makes
# many (a loop, a comprehension) is one site. A creating call is told apart by its column
# (co_positions, 3.11+), or else by how many calls of its line come before it in the code object.

_CALL_OPS = frozenset(opcode.opmap[name] for name in (
    "CALL_FUNCTION", "CALL_FUNCTION_KW", "CALL_FUNCTION_EX", "CALL_METHOD",  # 3.9-3.10
    "CALL", "CALL_KW",  # 3.11+ (CALL_FUNCTION_EX too)
) if name in opcode.opmap)


def _line_ranges(code: CodeType) -> Iterator[tuple[int, int, int | None]]:
    """(start, end, line) of each run of bytecode, as co_lines() gives them (3.10+)."""
    if hasattr(code, "co_lines"):
        yield from code.co_lines()
        return
    import dis  # 3.9

    starts = list(dis.findlinestarts(code))
    for i, (start, line) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(code.co_code)
        yield start, end, line


def call_position(code: CodeType, lasti: int, line: int) -> tuple[int, int | None]:
    """Where in its line the call at bytecode offset ``lasti`` is, as (position, column): its
    column twice (3.11+), else the number of calls of ``line`` before it in ``code`` and None.
    The same for every run of one call; calls of a line are in source order by position."""
    if sys.version_info >= (3, 11) and lasti >= 0:
        pos = next(itertools.islice(code.co_positions(), lasti // 2, None), None)  # one per code unit
        if pos is not None and pos[0] == line and pos[2] is not None:
            return pos[2], pos[2]
    raw = code.co_code
    n = 0
    for start, end, ln in _line_ranges(code):
        if ln == line and start < lasti:
            n += sum(1 for off in range(start, min(end, lasti), 2) if raw[off] in _CALL_OPS)
    return n, None


def role_name(filename: str, line: int, column: int | None, index: int, count: int) -> str | None:
    """The name of role_target()."""
    return role_target(filename, line, column, index, count)[0]


def role_target(filename: str, line: int, column: int | None, index: int,
                count: int) -> tuple[str | None, bool]:
    """The name of the lock made by one of several creating calls on a line: the assignment target
    it goes to (`a, b = Lock(), Lock()`: "a" and "b"; `locks = [Lock(), Lock()]`: "locks[0]"...),
    a keyword or dictionary key. The call is the one at ``column`` when known (3.11+), else the
    ``index``-th of the ``count`` lock-making calls of the line, when the line has that many."""
    tree = _line_tree(filename, line)
    if tree is None:
        return None, False
    root, indent = tree
    calls = sorted((n for n in ast.walk(root) if isinstance(n, ast.Call) and n.lineno == 1 + indent[0]),
                   key=lambda n: n.col_offset)
    if column is not None:
        found = [c for c in calls if c.col_offset + indent[1] == column]
        call = found[0] if len(found) == 1 else None
    else:
        makers = [c for c in calls if _callee(c) in _MAKERS]
        call = makers[index] if len(makers) == count and 0 <= index < count else None
    if call is None:
        return None, False
    parents = {id(child): node for node in ast.walk(root) for child in ast.iter_child_nodes(node)}
    return _role_full(call, parents)


_MAKERS = {"Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore", "allocate_lock"}


def _callee(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _role_full(node: ast.AST, parents: dict[int, ast.AST]) -> tuple[str | None, bool]:
    """The name ``node`` (a call) is given by its parent, and whether it is an attribute of
    ``self``/``cls``."""
    parent = parents.get(id(node))
    if isinstance(parent, ast.keyword):
        return parent.arg, False
    if isinstance(parent, ast.Dict):
        for k, v in zip(parent.keys, parent.values):
            if v is node and isinstance(k, ast.Constant) and isinstance(k.value, str):
                return k.value, False
        return None, False
    if isinstance(parent, (ast.Tuple, ast.List)) and not isinstance(parent.ctx, ast.Store):
        i = next(i for i, e in enumerate(parent.elts) if e is node)
        outer = parents.get(id(parent))
        target = _single_target(outer, parent)
        if isinstance(target, (ast.Tuple, ast.List)):
            if len(target.elts) == len(parent.elts) and not any(isinstance(e, ast.Starred) for e in target.elts):
                return _target_full(target.elts[i])
            return None, False
        base, on_self = _target_full(target) if target is not None else (None, False)
        return (f"{base}[{i}]", on_self) if base else (None, False)
    target = _single_target(parent, node)
    return _target_full(target) if target is not None else (None, False)


def _single_target(stmt: ast.AST | None, value: ast.AST) -> ast.AST | None:
    if isinstance(stmt, ast.Assign) and stmt.value is value and len(stmt.targets) == 1:
        return stmt.targets[0]
    if isinstance(stmt, ast.AnnAssign) and stmt.value is value:
        return stmt.target
    return None


def _target_full(target: ast.AST) -> tuple[str | None, bool]:
    if isinstance(target, ast.Name):
        return target.id, False
    if isinstance(target, ast.Attribute):
        owner = target.value
        return target.attr, isinstance(owner, ast.Name) and owner.id in ("self", "cls")
    if isinstance(target, ast.Subscript):
        return _target_full(target.value)
    return None, False


_trees: dict[tuple[str, int], tuple[ast.AST, tuple[int, int]] | None] = {}


def _line_tree(filename: str, line: int) -> tuple[ast.AST, tuple[int, int]] | None:
    """The line parsed on its own (then the offset of its first line and its indentation), or
    the whole file if the line is part of a longer statement; None without source."""
    key = (filename, line)
    if key not in _trees:
        if len(_trees) > 1000:
            _trees.clear()
        text = linecache.getline(filename, line)
        tree: tuple[ast.AST, tuple[int, int]] | None = None
        if text.strip():
            body = text.lstrip()
            try:
                tree = ast.parse(body), (0, len(text.encode()) - len(body.encode()))
            except (SyntaxError, ValueError):
                try:
                    tree = ast.parse("".join(linecache.getlines(filename))), (line - 1, 0)
                except (SyntaxError, ValueError):
                    tree = None
        _trees[key] = tree
    return _trees[key]


def short_path(filename: str) -> str:
    """``filename`` (or a "file:line in function" frame) as reports show it: relative to the
    working directory when inside it, installed code as ``<stdlib>/...`` or
    ``<site-packages>/...``, anything else as it is."""
    if filename.startswith("<"):
        return filename
    kind, rest = _library_split(filename)
    if kind is not None:
        return f"<{kind}>/{rest}"
    try:
        rel = os.path.relpath(filename)
    except ValueError:  # another drive on Windows
        return filename
    return filename if rel.startswith(".." + os.sep) else rel


# A path of another machine's installation (a report recorded elsewhere): .../lib/python3.X/...
_FOREIGN_LIBRARY = re.compile(r"^(.*?/(?:lib/python\d+(?:\.\d+)?t?|Lib)/)(?:(site-packages|dist-packages)/)?(.*)$")


def library_kind(filename: str) -> str | None:
    """"stdlib" for the standard library's code, "site-packages" for installed packages', None
    for the program's own (and for code without a file: `<string>`, `<stdin>`)."""
    if filename.startswith("<frozen"):
        return "stdlib"
    return _library_split(filename)[0]


_split_cache: dict[str, tuple[str | None, str]] = {}


def _library_split(filename: str) -> tuple[str | None, str]:
    hit = _split_cache.get(filename)
    if hit is not None:
        return hit
    found: tuple[str | None, str] = (None, filename)
    if not filename.startswith("<"):
        path = os.path.abspath(filename)
        for base, kind in _installed_kinds():
            if path.startswith(base):
                found = (kind, path[len(base):].replace(os.sep, "/"))
                break
        else:
            m = _FOREIGN_LIBRARY.match(filename.replace("\\", "/"))
            if m:
                found = ("site-packages" if m.group(2) else "stdlib", m.group(3))
    if len(_split_cache) > 10_000:
        _split_cache.clear()
    _split_cache[filename] = found
    return found


_kinds: list[tuple[str, str]] | None = None


def _installed_kinds() -> list[tuple[str, str]]:
    """(directory, "stdlib" or "site-packages") of this interpreter, longest first (site-packages
    lies inside the standard library's directory)."""
    global _kinds
    if _kinds is None:
        std = set(STDLIB_DIRS)
        _kinds = sorted(((d, "stdlib" if d in std and "-packages" not in d else "site-packages")
                         for d in _installed_roots()), key=lambda dk: len(dk[0]), reverse=True)
    return _kinds


_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
_root_cache: dict[str, str | None] = {}
_install_dirs: list[str] | None = None


def _installed_roots() -> list[str]:
    """Where installed code lives (the standard library, site-packages), longest first."""
    global _install_dirs
    if _install_dirs is None:
        import site  # imported at start-up (but with python -S)

        # sysconfig's "purelib" and "platlib" are among site's folders
        dirs: set[str | None] = set(STDLIB_DIRS)
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
