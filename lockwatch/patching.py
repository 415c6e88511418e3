"""Install lockwatch's lock factories into the threading module, and restore the originals."""
from __future__ import annotations

import copy
import copyreg
import importlib
import os
import sys
import threading
import types
from typing import Any

from . import primitives, proxies, recorder, waits
from .stacks import is_internal, is_threading, wrapt_dir

# Importing wrapt, and when.
#
# `import wrapt` (2.x) imports far more than wrapt: wrapt.synchronization imports asyncio, which
# imports concurrent.futures, logging, socket, ssl and subprocess; wrapt.importer imports
# importlib.metadata (email, zipfile, csv, pathlib...). Measured with `python -X importtime -c
# "import wrapt"` (wrapt 2.5.2): 130-175 modules beyond a bare interpreter's on 3.9-3.13,
# 63-87 ms (`import threading` alone: 7-19 ms). wrapt 1.14-1.17 imports only inspect, threading
# and the like (31 ms). Importing less of wrapt is not possible: `import wrapt.wrappers` (or any
# wrapt.*) runs wrapt/__init__.py first, and wrapt 2's C extension, loaded on its own, imports
# wrapt.exceptions, hence the package, and makes types of its own (multi-phase init) that the
# real wrapt.FunctionWrapper is not. But those two modules wait (_import_wrapt): wrapt uses
# them only inside functions lockwatch never calls (asyncio.run in sync_to_async, entry_points
# in discover_post_import_hooks), and they are 188 M of the 289 M instructions `import wrapt`
# costs (callgrind, 3.11; python -c "pass" is 39 M).
#
# Hence an order, and the things that depend on it:
# - lockwatch imports wrapt only when it switches on (install()), never at import: importing
#   lockwatch patches nothing and imports nothing heavy;
# - install() puts plain factories in place *before* importing wrapt, so that logging._lock,
#   concurrent.futures.thread._global_shutdown_lock and the other module-level locks of what wrapt
#   imports are instrumented (user code uses them later), then wraps the originals with wrapt;
# - what those imports did with their locks is lockwatch's doing, not the program's: the session
#   forgets it after the first install (session.py, recorder.forget_activity()), and the CLI
#   shuts down a logging that only lockwatch imported (cli.py, _logging_shutdown_of_lockwatch);
# - the LOCKWATCH=1 start-up hook waits for standard-library imports in progress before
#   switching on, since wrapt's imports would import them again half-initialised (_startup.py);
# - wrapt's directory is found without importing wrapt (stacks.wrapt_dir), so that its frames
#   (its pure-Python fallback's __call__) count as internal.
#
# Importing wrapt later still, when the program first needs a lock, cannot be exact, so `python -m
# lockwatch` pays for it before the program starts (wrapt 2.5.2: ~100 M instructions without
# asyncio and importlib.metadata, of an empty script's ~210 M under the CLI, against 39 M for the
# script alone; callgrind, 3.11; see benchmarks/startup.py). threading.Lock must be one object, a
# wrapt wrapper, from the program's first instruction on (`from threading import Lock` binds it, C
# code reads it): a stand-in swapped for the wrapper later changes its identity, and a wrapper
# needs wrapt's types, so the package. Leaving the names out of threading's namespace until asked
# for (a module __getattr__) breaks threading, whose own code reads Lock and RLock as globals.
# Switching on when the program first imports threading, as LOCKWATCH=1 does, needs a process
# where lockwatch has not imported threading itself (the CLI has: click, the runner, the
# recorder), and the program's first import of threading is often inside a standard-library import
# (logging, subprocess, queue, concurrent.futures) that wrapt's imports need complete: the locks
# made until it completes would be missed, or see the plain factory. It would be exact only for a
# program that never imports threading.
_WRAPT_DIR = wrapt_dir()
_PKG_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


_getframe = sys._getframe
_new_lock = proxies.new_lock
_new_rlock = proxies.new_rlock


def _make(kind: str, real: Any, args: tuple, kwargs: dict, frame: Any) -> Any:
    """A lock for the factory's caller ``frame``: instrumented, or the real one (made with
    arguments, or by threading, wrapt or lockwatch)."""
    # Past the pure-Python fallback of wrapt's __call__ (its C extension has no frame).
    while frame is not None and frame.f_code.co_filename.startswith(_WRAPT_DIR) and frame.f_code.co_name == "__call__":
        frame = frame.f_back
    filename = frame.f_code.co_filename if frame is not None else ""
    if (args or kwargs or frame is None or is_threading(filename) or filename.startswith(_PKG_DIR)
            or filename.startswith(_WRAPT_DIR)):
        # threading's own locks (Event, Thread start-up, Barrier, Semaphore internals) stay raw:
        # they would flood the graph and cost every thread start; so do lockwatch's and wrapt's.
        return real(*args, **kwargs)
    return _new_lock(frame) if kind == "Lock" else _new_rlock(frame)


# Every lock a program makes comes through these. The common case (the caller is the program's
# own code, no arguments) is written out; anything else takes _make().
def _lock_factory(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    frame = _getframe(1)  # wrapt's C extension calls this from the factory's caller
    if args or kwargs or is_internal(frame.f_code.co_filename):
        return _make("Lock", wrapped, args, kwargs, frame)
    return _new_lock(frame, True)


def _rlock_factory(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    return _rlock_for(wrapped, args, kwargs, _getframe(1))


def _rlock_for(wrapped: Any, args: tuple, kwargs: dict, frame: Any) -> Any:
    if args or kwargs or is_internal(frame.f_code.co_filename):
        return _make("RLock", wrapped, args, kwargs, frame)
    return _new_rlock(frame, True)


def _site_verdict(frame: Any, kind: str) -> Any:
    """What a lock made without arguments by ``frame``'s current instruction is, for the compiled
    core's factories to cache by that instruction: its Site; False for a real lock (threading's
    and lockwatch's own code, as _make decides); None when more than the instruction decides (a
    factory function's caller, wrapt's pure-Python frames): those calls take the wrappers above."""
    filename = frame.f_code.co_filename
    if is_threading(filename) or filename.startswith(_PKG_DIR):
        return False
    if is_internal(filename):
        return None
    return recorder.instruction_site(frame, kind)


# The compiled core's versions of _lock_factory, _rlock_factory and of the RLock factory class's
# __call__ (lockwatch/_core.c, "creation"): the same locks, made without Python code for an
# instruction seen before. None with the pure-Python core.
_compiled = proxies.compiled_factories(_lock_factory, _rlock_factory, _site_verdict)
_lock_wrapper: Any = _compiled[0] if _compiled is not None else _lock_factory
_rlock_wrapper: Any = _compiled[1] if _compiled is not None else _rlock_factory
_ours_wrappers = (_lock_factory, _rlock_factory, _lock_wrapper, _rlock_wrapper)


def make_instances_of(lock_cls: type[Any], rlock_cls: type[Any]) -> None:
    """The compiled factories make instances of these subclasses of proxies.Lock and RLock from now
    on (a confirmation run's steered locks, confirm.install_steering, which replaces _new_lock
    and _new_rlock for the calls the Python wrappers make)."""
    proxies.compiled_factories(_lock_factory, _rlock_factory, _site_verdict, lock_cls, rlock_cls)

_factory_classes: tuple[type[Any], type[Any], type[Any], type[Any] | None] | None = None


def _factory_types() -> tuple[type[Any], type[Any], type[Any], type[Any] | None]:
    """lockwatch's subclasses of wrapt.FunctionWrapper (defined on first use: wrapt is imported
    late, see the top): for Lock and for RLock when the original is a class, whose isinstance()
    also accepts instrumented locks (on Python 3.13+ ``threading.Lock`` is a class, and
    ``isinstance(x, threading.Lock)`` must stay true); for RLock when it is a Python function;
    and, with the compiled core, for Lock when it is a builtin (None with the pure-Python core).
    Each derives from FunctionWrapper directly: before 3.11, wrapt's C __call__ finds its module
    state by walking the type's MRO, and each level of subclass costs ~120-250 ns per call (a
    compiled __call__ replaces that call)."""
    global _factory_classes
    if _factory_classes is None:
        _import_wrapt()
        import wrapt  # now in sys.modules

        def instancecheck(self: Any, obj: Any) -> bool:
            return isinstance(obj, self.__wrapped__) or isinstance(obj, self._self_proxy_type)

        # pickle and copy see a factory as they see the original (see _reduce_factory); the
        # methods cost nothing per call (wrapt's own raise NotImplementedError).
        def reduce_ex(self: Any, protocol: Any) -> Any:
            return _reduce_factory(self)

        def copy_self(self: Any, *memo: Any) -> Any:
            return self

        class LockClassFactory(wrapt.FunctionWrapper):
            _self_proxy_type = proxies.Lock  # what the factory makes: isinstance() accepts it too
            __instancecheck__ = instancecheck
            __reduce_ex__ = reduce_ex
            __copy__ = __deepcopy__ = copy_self

            if _compiled is not None:
                __call__ = _compiled[3]  # _lock_factory(self.__wrapped__, None, ...), compiled

        class RLockClassFactory(wrapt.FunctionWrapper):
            _self_proxy_type = proxies.RLock
            __instancecheck__ = instancecheck
            __reduce_ex__ = reduce_ex
            __copy__ = __deepcopy__ = copy_self

        class RLockFunctionFactory(wrapt.FunctionWrapper):
            __reduce_ex__ = reduce_ex
            __copy__ = __deepcopy__ = copy_self

            # wrapt's call of a wrapper around a Python function first looks for the function's
            # __self__ (it may be a method bound already), which costs a caught AttributeError
            # on every RLock() (see install()). threading.RLock is a plain function: do what the
            # wrapper (_rlock_factory) does, directly.
            def __call__(self, *args: Any, **kwargs: Any) -> Any:
                return _rlock_for(self.__wrapped__, args, kwargs, _getframe(1))

            if _compiled is not None:
                __call__ = _compiled[2]  # noqa: F811  (the same, compiled: no Python frame)

        lock_builtin: type[Any] | None = None
        if _compiled is not None:
            # wrapt's call costs ~700 instructions of ~2,400 per Lock() (callgrind, 3.11: see
            # _core.c, factory_method); its own type is kept with the pure-Python core, whose
            # wrapper is Python code anyway.
            lock_call = _compiled[3]

            class LockBuiltinFactory(wrapt.FunctionWrapper):
                __reduce_ex__ = reduce_ex
                __copy__ = __deepcopy__ = copy_self
                __call__ = lock_call

            lock_builtin = LockBuiltinFactory
        _factory_classes = LockClassFactory, RLockClassFactory, RLockFunctionFactory, lock_builtin
    return _factory_classes


def _wrapper_type(original: Any, class_type: type[Any], function_type: type[Any] | None = None,
                  builtin_type: type[Any] | None = None) -> type[Any]:
    """The FunctionWrapper type that wraps ``original``: ``class_type`` for a class (3.13+ Lock),
    ``function_type`` (if any) for a Python function, ``builtin_type`` (if any) for a builtin,
    else wrapt's own, as wrap_function_wrapper uses (a wrapped function or builtin fails
    isinstance() with the same TypeError as unpatched)."""
    _import_wrapt()
    import wrapt

    if isinstance(original, type):
        return class_type
    if function_type is not None and isinstance(original, types.FunctionType):
        return function_type
    if builtin_type is not None and isinstance(original, types.BuiltinFunctionType):
        return builtin_type
    return wrapt.FunctionWrapper


# What wrapt 2 imports only for features lockwatch never uses: (the module, the wrapt module that
# uses it, the global name it is bound to there). Imported when wrapt first uses it.
_WRAPT_DEFERRED = (("asyncio", "wrapt.synchronization", "asyncio"),
                   ("importlib.metadata", "wrapt.importer", "importlib"))


class _ImportedOnFirstUse:
    """Stands in a module's global for a module imported while wrapt was, but not used yet. Its
    first attribute lookup imports ``module`` (the import system's, the one the program's
    ``import`` gets), binds the global to ``binds`` (the module itself, or the package that
    `import package.module` binds) and answers from it."""

    def __init__(self, owner: types.ModuleType, global_name: str, module: str, binds: str) -> None:
        self._owner, self._global, self._module, self._binds = owner, global_name, module, binds

    def __getattr__(self, attr: str) -> Any:
        importlib.import_module(self._module)
        real = importlib.import_module(self._binds)
        setattr(self._owner, self._global, real)
        return getattr(real, attr)


def _import_wrapt() -> Any:
    """``import wrapt``, without the modules it imports only for what lockwatch never uses (see
    the top): while wrapt is imported, empty modules stand in for those in sys.modules; then
    they leave it (the program imports the real ones as if lockwatch were not there), and every
    global bound to one meanwhile (wrapt.synchronization's asyncio), and wrapt.importer's
    importlib (`import importlib.metadata` binds the package), becomes an _ImportedOnFirstUse.
    Only while this is the only thread (another one's import would find a stand-in); a failure
    (another wrapt, which uses them at import) falls back to importing everything."""
    wrapt = sys.modules.get("wrapt")
    if wrapt is not None:
        return wrapt
    deferred = [entry for entry in _WRAPT_DEFERRED if entry[0] not in sys.modules]
    count = getattr(sys.modules["_thread"], "_count", None)  # threads started, but the main one
    if not deferred or count is None or count() != 0 or threading.active_count() != 1:
        import wrapt

        return wrapt
    stand_ins = {name: types.ModuleType(name) for name, _, _ in deferred}
    before = set(sys.modules)
    sys.modules.update(stand_ins)
    try:
        import wrapt
    except Exception:
        wrapt = None
    finally:
        for name, stand_in in stand_ins.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
    by_id = {id(stand_in): name for name, stand_in in stand_ins.items()}
    for module_name in set(sys.modules) - before:
        module = sys.modules[module_name]
        for key, value in list(getattr(module, "__dict__", {}).items()):
            if id(value) in by_id:
                setattr(module, key, _ImportedOnFirstUse(module, key, by_id[id(value)], by_id[id(value)]))
    if wrapt is not None:
        for name, owner_name, global_name in deferred:
            owner = sys.modules.get(owner_name)
            bound = getattr(owner, global_name, None)
            if owner is not None and global_name != name and bound is sys.modules[global_name]:
                setattr(owner, global_name, _ImportedOnFirstUse(owner, global_name, name, global_name))
        return wrapt
    # wrapt used one of them at import: forget this wrapt and import it the plain way (the
    # standard library's modules imported meanwhile are whole: they stay).
    for name in [n for n in sys.modules if n == "wrapt" or n.startswith("wrapt.")]:
        if name not in before:
            del sys.modules[name]
    import wrapt

    return wrapt


_NAMES = ("Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore")
_originals: dict[str, Any] = {}


def installed() -> bool:
    return bool(_originals)


def install() -> None:
    """Replace the five factories in ``threading`` (idempotent). Code that already did
    ``from threading import Lock`` keeps the original: patch before such imports run."""
    if _originals:
        return
    for name in _NAMES:
        _originals[name] = getattr(threading, name)
    lock_real, rlock_real = _originals["Lock"], _originals["RLock"]
    # Condition and the semaphores are replaced by subclasses of threading's classes, not wrapped:
    # user code subclasses them and passes them to isinstance(), which a subclass keeps working
    # (primitives._Mirror), and an instance costs less than a proxy would.
    classes = {"Condition": primitives.Condition, "Semaphore": primitives.Semaphore,
               "BoundedSemaphore": primitives.BoundedSemaphore}
    # First plain factories, then import wrapt (see the top): the modules it imports create their
    # module-level locks now, and those must be instrumented too.
    threading.Lock = lambda *a, **k: _make("Lock", lock_real, a, k, _getframe(1))  # type: ignore[assignment]
    threading.RLock = lambda *a, **k: _make("RLock", rlock_real, a, k, _getframe(1))  # type: ignore[assignment]
    for name, cls in classes.items():
        setattr(threading, name, cls)
    wrapt = _import_wrapt()

    # Then each original back, wrapped the wrapt way: wrap_object hands the original to a
    # FunctionWrapper type, whose wrapper gets (wrapped, instance, args, kwargs) for every lock.
    # Creation, ns per Lock()/RLock() (benchmarks/wrapt_constructs.py, wrapt 2.5.2, median of 9
    # rounds on the project machine; raw Lock 37-55, raw RLock 86-114):
    #                                 3.9     3.10    3.11    3.12    3.13
    #   Lock, wrapt.FunctionWrapper   1,284   1,243     814     991     965
    #   Lock, a subclass of it        1,521   1,459     844   1,022     969
    #   Lock, no wrapper (floor)      1,102   1,019     647     748     765
    #   RLock, wrapt's C __call__     1,727   1,770   1,349   1,614   1,548
    #   RLock, a Python __call__      1,746   1,645     978   1,196   1,139
    #   RLock, no wrapper (floor)     1,286   1,143     736     895     894
    # Hence wrapt's own FunctionWrapper for a factory that is a builtin (a subclass costs ~230 ns
    # more before 3.11), a subclass only where isinstance() needs it (a class: Lock on 3.13+), and
    # a Python __call__ for the RLock function (it skips wrapt's __self__ lookup). With the
    # compiled core every factory's __call__ is compiled (_core.c, factory_method): wrapt's call
    # does not run, so the builtin Lock's factory is a subclass too (Lock() in a loop: 2,383 ->
    # 1,798 instructions, callgrind, 3.11).
    class_lock, class_rlock, function_rlock, builtin_lock = _factory_types()
    threading.Lock, threading.RLock = lock_real, rlock_real
    wrapt.wrap_object(threading, "Lock", _wrapper_type(lock_real, class_lock, None, builtin_lock), (_lock_wrapper,))
    wrapt.wrap_object(threading, "RLock", _wrapper_type(rlock_real, class_rlock, function_rlock), (_rlock_wrapper,))
    copyreg.dispatch_table.setdefault(primitives.OrigCondition, _reduce_condition)
    # Joins, Events, Barriers, Queues and thread pools: their methods wrapped at the class level
    # (waits.py says why not replaced like the factories above).
    waits.install()
    # A factory that is wrapt's own FunctionWrapper (Lock before 3.13) has no method of
    # lockwatch's: pickle and copy find it through their dispatch tables, looked up by exact type
    # before the proxy's methods, at no cost per call (a subclass defining them would cost ~230 ns
    # per Lock() on 3.9/3.10). Other wrappers of that type keep wrapt's behaviour.
    copyreg.dispatch_table.setdefault(wrapt.FunctionWrapper, _reduce_wrapper)
    _copy_dispatch().setdefault(wrapt.FunctionWrapper, _copy_wrapper)
    _deepcopy_dispatch().setdefault(wrapt.FunctionWrapper, _deepcopy_wrapper)


def uninstall() -> None:
    """Put the original factories back (idempotent). Locks already created stay instrumented.
    (wrapt 2's unwrap_object would do this too; wrapt 1 has none, so lockwatch keeps them.)"""
    waits.uninstall()
    while _originals:
        name, original = _originals.popitem()
        setattr(threading, name, original)
    for table, function in ((copyreg.dispatch_table, _reduce_condition), (copyreg.dispatch_table, _reduce_wrapper),
                            (_copy_dispatch(), _copy_wrapper), (_deepcopy_dispatch(), _deepcopy_wrapper)):
        for key, value in list(table.items()):
            if value is function:
                del table[key]


# pickle and copy of the factories: as of the originals. Pickling threading.Lock pickles what it
# is (a reference by name to _thread.allocate_lock, or the _thread.lock class on 3.13+), so that
# multiprocessing's spawn and forkserver start methods, which pickle a Manager's registry
# (SyncManager.register("Lock", threading.Lock)), work; threading.RLock, a Python function, is
# pickled as "threading.RLock", which is the factory itself. copy and deepcopy return the
# factory, as they return functions and classes. Instances raise the real lock's TypeError
# (proxies._Tracked.__reduce_ex__).
class _Module:
    """Pickled as importlib.import_module(name): unpickling needs no lockwatch."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __reduce__(self) -> Any:
        return importlib.import_module, (self.name,)


def _reduce_factory(factory: Any) -> Any:
    original = factory.__wrapped__
    module, name = original.__module__, original.__qualname__
    if getattr(sys.modules.get(module), name, None) is factory:
        return name  # the factory is what the name means (threading.RLock): by name, as plain
    return getattr, (_Module(module), name)


def _ours(wrapper: Any) -> bool:
    return getattr(wrapper, "_self_wrapper", None) in _ours_wrappers


def _reduce_wrapper(wrapper: Any) -> Any:
    if _ours(wrapper):
        return _reduce_factory(wrapper)
    return wrapper.__reduce__()  # wrapt's: NotImplementedError


def _copy_wrapper(wrapper: Any) -> Any:
    return wrapper if _ours(wrapper) else wrapper.__copy__()


def _deepcopy_wrapper(wrapper: Any, memo: Any) -> Any:
    return wrapper if _ours(wrapper) else wrapper.__deepcopy__(memo)


def _copy_dispatch() -> dict[Any, Any]:
    return getattr(copy, "_copy_dispatch", {})  # copy.copy() looks it up first, by exact type


def _deepcopy_dispatch() -> dict[Any, Any]:
    return getattr(copy, "_deepcopy_dispatch", {})


# A semaphore holds a real threading.Condition (threading makes it). Pickling one saves that
# Condition's class by name, and while threading.Condition is lockwatch's stand-in the lookup
# fails first ("not the same object as threading.Condition") where the real pickling fails on the
# Condition's lock. Reduced through a function of lockwatch's, it fails on the lock again;
# copy.copy (which builds the copy from the same reduction) still works as with the real one.
def _rebuild_condition(state: dict[str, Any]) -> Any:
    cond = primitives.OrigCondition.__new__(primitives.OrigCondition)
    cond.__dict__.update(state)
    return cond


def _reduce_condition(cond: Any) -> Any:
    return _rebuild_condition, (cond.__dict__,)
