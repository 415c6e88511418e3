"""Switch lockwatch on at interpreter start-up when LOCKWATCH is set (imported by pylockwatch.pth)."""
from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see lockwatch/__init__.py
if TYPE_CHECKING:
    from typing import Any

# LOCKWATCH=1 switches lockwatch on (when threading is first imported), with the text report on
# stderr at exit; not in isolated mode (python -I). Every setting has its LOCKWATCH_* variable
# (settings.FIELDS: LOCKWATCH_JSON, LOCKWATCH_DEADLOCK_TIMEOUT, ...); `python -m lockwatch` passes
# its own to its child processes that way (settings.to_environ).


def start() -> None:
    try:
        import lockwatch
        from lockwatch.settings import env_where, environ_values

        if lockwatch.current_session() is not None:
            return  # the .pth ran twice (a venv's lib64 symlink): already on
        lockwatch._enable(environ_values(os.environ), report_at_exit=True, where=env_where)
    except Exception as exc:  # never break a program for lockwatch's sake
        sys.stderr.write(f"lockwatch: not switched on: {exc}\n")


class _WhenThreadingIsImported:
    """A meta path finder that switches lockwatch on right after ``threading`` is first imported,
    so that a process that never uses threads is not made to import it (some programs and test
    suites check what is imported at start-up)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "threading":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        try:  # importlib.abc.Loader itself (3.10+), without importlib.abc, which imports
            #  importlib.resources (pathlib, tempfile, zipfile...): about a quarter of the import
            #  time of a child that switches on (-X importtime under callgrind, 3.11)
            from importlib._abc import Loader as LoaderBase
        except ImportError:  # 3.9, where importlib.util imports importlib.abc anyway
            from importlib.abc import Loader as LoaderBase

        spec = importlib.util.find_spec("threading")
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        class Loader(LoaderBase):
            def create_module(self, spec: Any) -> Any:
                return loader.create_module(spec)

            def exec_module(self, module: Any) -> None:
                exec_module(module)
                sys.modules["threading"] = module
                importing = _imports_in_progress()
                if importing:
                    _start_after(importing)
                else:
                    start()

        spec.loader = Loader()
        return spec


def _imports_in_progress() -> list:
    """The specs of the modules being imported right now that switching on imports again: the
    standard library's (`import logging` imports threading half-way through), wrapt's and
    lockwatch's own; threading's aside."""
    names = getattr(sys, "stdlib_module_names", None)  # 3.10+
    specs = []
    for name, module in list(sys.modules.items()):
        spec = getattr(module, "__spec__", None)
        if name == "threading" or spec is None or not getattr(spec, "_initializing", False):
            continue
        top = name.partition(".")[0]
        if top in ("lockwatch", "wrapt") or (top in names if names is not None else _in_stdlib(spec)):
            specs.append(spec)
    return specs


def _in_stdlib(spec: Any) -> bool:
    """Python 3.9 has no sys.stdlib_module_names: a module is the standard library's if it is
    built in, frozen, or a file of the standard library's folder (outside site-packages). The
    program's own modules must not be waited for: the locks they create while being imported
    would be missed (a module that imports threading creates its locks right after)."""
    origin = getattr(spec, "origin", None)
    if origin in ("built-in", "frozen"):
        return True
    if not isinstance(origin, str):
        return False
    stdlib = os.path.dirname(os.__file__) + os.sep
    return origin.startswith(stdlib) and "-packages" + os.sep not in origin[len(stdlib):]


def _start_after(specs: list) -> None:
    """start() once the imports of ``specs`` are complete. Switching on imports wrapt and
    concurrent.futures, which import logging, inspect and more (and, when patching cannot defer
    it, asyncio, which imports subprocess): when one of those first imported threading, it was
    only half-initialized, importing it again failed (a circular import: "partially initialized
    module 'logging' has no attribute 'getLogger'") and lockwatch was not switched on. The import
    system marks a module complete by setting its spec's _initializing to False: that assignment
    is the signal (the spec's class is swapped for a watching subclass, then back)."""
    waiting = {id(spec) for spec in specs}

    def finished(spec: Any) -> None:
        waiting.discard(id(spec))
        if waiting:
            return
        parent, _, child = spec.name.rpartition(".")
        module = sys.modules.get(spec.name)
        if parent and module is not None and parent in sys.modules:
            # What the import system does right after: bind the submodule on its package
            # (`concurrent.futures`), which the imports of start() look up.
            setattr(sys.modules[parent], child, module)
        start()

    for spec in specs:
        _call_when_initialized(spec, finished)


def _call_when_initialized(spec: Any, callback: Any) -> None:
    base = type(spec)

    class Watched(base):  # type: ignore[misc, valid-type]
        def __setattr__(self, name: str, value: Any) -> None:
            object.__setattr__(self, name, value)  # ModuleSpec sets plain attributes
            if name == "_initializing" and not value:
                self.__class__ = base
                try:
                    callback(self)
                except Exception:  # never break an import for lockwatch's sake
                    pass

    Watched.__name__, Watched.__qualname__, Watched.__module__ = base.__name__, base.__qualname__, base.__module__
    spec.__class__ = Watched


def _main() -> None:
    from lockwatch.defaults import switched_on  # not settings: most processes never switch on

    if not switched_on(os.environ):
        return
    if sys.flags.isolated:
        return  # python -I: the environment must not change this process
    if "threading" in sys.modules:
        start()
    else:
        sys.meta_path.insert(0, _WhenThreadingIsImported())


_main()
