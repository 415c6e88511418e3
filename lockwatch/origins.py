"""Where a lock really comes from: through a factory function, as a dataclass field, in a class's method."""
from __future__ import annotations

import ast
import linecache
import re
import sys
from types import CodeType, FrameType
from typing import Any, Optional

from . import stacks

# Every function here runs once per creating instruction (recorder.site_for caches the answer)
# and must never raise into the watched program: each one answers None when unsure.

MAX_FACTORY_DEPTH = 4  # a factory called by a factory ...: its caller's caller names the lock


def is_factory(code: CodeType, lasti: int, line: int) -> bool:
    """Whether the lock made at ``lasti`` is returned as it is made (`return RLock()`, a lambda
    that makes a lock): a factory, like APScheduler's `_create_lock`, whose caller decides what
    the lock is for. Its caller is the site: otherwise every lock of a library made through one
    factory is one site, and every inversion between them a self-loop nobody can read."""
    if code.co_name == "<module>" or code.co_filename.startswith("<"):
        return False
    tree = stacks._line_tree(code.co_filename, line)
    if tree is None:
        return False
    root, indent = tree
    for node in ast.walk(root):
        if isinstance(node, ast.Return) and node.lineno == 1 + indent[0] and isinstance(node.value, ast.Call):
            return True
        if (isinstance(node, ast.Lambda) and node.lineno == 1 + indent[0] and code.co_name == "<lambda>"
                and isinstance(node.body, ast.Call)):
            return True
    return False


# dataclasses' generated __init__ calls a field's default_factory through a name made from the
# field's: `_dflt_<field>` (3.9-3.11), `__dataclass_dflt_<field>__` (3.12+).
_DEFAULT_NAME = re.compile(r"(?:__dataclass)?_dflt_(\w+?)(?:__)?\Z")


def dataclass_field(frame: FrameType) -> Optional[tuple[str, int, str, str]]:
    """For a lock made by a dataclass's generated ``__init__`` (its code has no file: `<string>`)
    through `field(default_factory=threading.Lock)`: (file, line, class name, field) of the
    field's definition in the class body, which is the lock's site and name. Otherwise None."""
    code = frame.f_code
    if code.co_name != "__init__" or not code.co_filename.startswith("<") or not code.co_varnames:
        return None
    import dis

    field_name = None
    for ins in dis.get_instructions(code):
        if ins.offset >= frame.f_lasti:
            break
        if isinstance(ins.argval, str):
            m = _DEFAULT_NAME.match(ins.argval)
            if m:
                field_name = m.group(1)
    if field_name is None:
        return None
    obj = frame.f_locals.get(code.co_varnames[0])
    if obj is None:
        return None
    owner = None
    for cls in type(obj).__mro__:
        if field_name in cls.__dict__.get("__annotations__", {}):
            owner = cls
            break
    if owner is None:
        return None
    module = sys.modules.get(owner.__module__)
    filename = getattr(module, "__file__", None)
    if not isinstance(filename, str):
        return None
    line = _field_line(filename, owner.__qualname__, field_name)
    if line is None:
        return None
    return filename, line, _short_qualname(owner.__qualname__), field_name


def _field_line(filename: str, qualname: str, field_name: str) -> Optional[int]:
    source = "".join(linecache.getlines(filename))
    if not source:
        return None
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    body: list[ast.stmt] = tree.body
    for part in [p for p in qualname.split(".") if p != "<locals>"]:
        found = _defined_in(body, part)
        if found is None:
            return None
        body = found.body
    for stmt in body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.target.id == field_name:
            return stmt.lineno
    return None


def _defined_in(body: list[ast.stmt], name: str) -> Optional[Any]:
    """The class or function ``name`` defined in ``body`` (a part of a qualified name)."""
    for node in body:
        for sub in ast.walk(node):
            if isinstance(sub, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and sub.name == name:
                return sub
    return None


def owner_class(frame: FrameType) -> Optional[str]:
    """The class whose method ``frame`` runs (its first parameter is `self` or `cls`), by name:
    what `self._lock = Lock()` is a member of (`Account._lock`)."""
    code = frame.f_code
    if code.co_argcount < 1 or code.co_varnames[0] not in ("self", "cls"):
        return None
    qualname = getattr(code, "co_qualname", None)  # 3.11+
    if isinstance(qualname, str) and "." in qualname:
        return _short_qualname(qualname.rsplit(".", 1)[0])
    try:
        obj: Any = frame.f_locals.get(code.co_varnames[0])
    except Exception:  # noqa: BLE001 - a frame's locals can fail to materialise; then no class
        return None
    if obj is None:
        return None
    cls = obj if isinstance(obj, type) else type(obj)
    for klass in cls.__mro__:
        for value in list(vars(klass).values()):
            func = getattr(value, "__func__", value)
            if getattr(func, "__code__", None) is code:
                return _short_qualname(klass.__qualname__)
    return _short_qualname(cls.__qualname__)


def _short_qualname(qualname: str) -> str:
    """`make.<locals>.Account` -> `Account`: the class as its code names it."""
    return qualname.rsplit("<locals>.", 1)[-1]
