"""Install lockwatch's lock factories into the threading module, and restore the originals."""
from __future__ import annotations

import copyreg
import os
import sys
import threading
import types
from typing import Any

from . import proxies
from .stacks import is_internal, is_threading, wrapt_dir

_PKG_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
# wrapt is located without being imported: importing it imports concurrent.futures and logging,
# whose module-level locks must be created instrumented (see install()).
_WRAPT_DIR = wrapt_dir()


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


_factory_classes: Any = None


def _factory_types() -> Any:
    """wrapt FunctionWrappers whose isinstance() also accepts instrumented locks (on Python 3.13+
    ``threading.Lock`` is a class, and ``isinstance(x, threading.Lock)`` must stay true): one for
    a wrapped builtin or class (Lock), one for a wrapped Python function (RLock)."""
    global _factory_classes
    if _factory_classes is None:
        import wrapt

        class Factory(wrapt.FunctionWrapper):  # type: ignore[misc]
            def __instancecheck__(self, obj: Any) -> bool:
                wrapped = self.__wrapped__
                if not isinstance(wrapped, type):
                    return isinstance(obj, wrapped)  # a function: TypeError, as unpatched
                return isinstance(obj, wrapped) or isinstance(obj, self._self_proxy_type)

        class FunctionFactory(Factory):
            # wrapt's call of a wrapper around a Python function first looks for the function's
            # __self__ (it may be a method bound already), which costs a caught AttributeError
            # on every RLock() (~250 ns of ~1 us). threading.RLock is a plain function: do what
            # the wrapper does, directly.
            def __call__(self, *args: Any, **kwargs: Any) -> Any:
                return _rlock_for(self.__wrapped__, args, kwargs, _getframe(1))

        _factory_classes = Factory, FunctionFactory
    return _factory_classes


_originals: dict[str, Any] = {}


def installed() -> bool:
    return bool(_originals)


def install() -> None:
    """Replace the five factories in ``threading`` (idempotent). Code that already did
    ``from threading import Lock`` keeps the original: patch before such imports run."""
    if _originals:
        return
    for name in ("Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore"):
        _originals[name] = getattr(threading, name)
    lock_real, rlock_real = _originals["Lock"], _originals["RLock"]
    classes = {"Condition": proxies.Condition, "Semaphore": proxies.Semaphore,
               "BoundedSemaphore": proxies.BoundedSemaphore}
    # First plain factories, then import wrapt: the modules wrapt imports (concurrent.futures,
    # logging) create their module-level locks now, and those must be instrumented too.
    threading.Lock = lambda *a, **k: _make("Lock", lock_real, a, k, _getframe(1))  # type: ignore[misc]
    threading.RLock = lambda *a, **k: _make("RLock", rlock_real, a, k, _getframe(1))  # type: ignore[misc]
    for name, cls in classes.items():
        setattr(threading, name, cls)
    import wrapt

    factory, function_factory = _factory_types()
    lock = factory(lock_real, _lock_factory)
    lock._self_proxy_type = proxies.Lock
    rlock = (function_factory if isinstance(rlock_real, types.FunctionType) else factory)(rlock_real, _rlock_factory)
    rlock._self_proxy_type = proxies.RLock
    for name, value in {"Lock": lock, "RLock": rlock, **classes}.items():
        setattr(threading, name, _originals[name])
        wrapt.wrap_object(threading, name, lambda original, value=value: value)
    copyreg.dispatch_table.setdefault(proxies.OrigCondition, _reduce_condition)


def uninstall() -> None:
    """Put the original factories back (idempotent). Locks already created stay instrumented."""
    while _originals:
        name, original = _originals.popitem()
        setattr(threading, name, original)
    if copyreg.dispatch_table.get(proxies.OrigCondition) is _reduce_condition:
        del copyreg.dispatch_table[proxies.OrigCondition]


# A semaphore holds a real threading.Condition (threading makes it). Pickling one saves that
# Condition's class by name, and while threading.Condition is lockwatch's stand-in the lookup
# fails first ("not the same object as threading.Condition") where the real pickling fails on the
# Condition's lock. Reduced through a function of lockwatch's, it fails on the lock again;
# copy.copy (which builds the copy from the same reduction) still works as with the real one.
def _rebuild_condition(state: dict) -> Any:
    cond = proxies.OrigCondition.__new__(proxies.OrigCondition)
    cond.__dict__.update(state)
    return cond


def _reduce_condition(cond: Any) -> Any:
    return _rebuild_condition, (cond.__dict__,)
