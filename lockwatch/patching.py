"""Install lockwatch's lock factories into the threading module, and restore the originals."""
from __future__ import annotations

import os
import sys
import threading
from typing import Any

from . import proxies
from .stacks import is_threading, wrapt_dir

_PKG_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
# wrapt is located without being imported: importing it imports concurrent.futures and logging,
# whose module-level locks must be created instrumented (see install()).
_WRAPT_DIR = wrapt_dir()


def _creator() -> Any:
    """The frame that called the factory (past the pure-Python fallback of wrapt's __call__)."""
    f = sys._getframe(3)  # _creator <- _make <- the factory (lambda or wrapt wrapper) <- caller
    while f is not None and f.f_code.co_filename.startswith(_WRAPT_DIR) and f.f_code.co_name == "__call__":
        f = f.f_back
    return f


def _make(kind: str, real: Any, args: tuple, kwargs: dict) -> Any:
    frame = _creator()
    filename = frame.f_code.co_filename if frame is not None else ""
    if (args or kwargs or frame is None or is_threading(filename) or filename.startswith(_PKG_DIR)
            or filename.startswith(_WRAPT_DIR)):
        # threading's own locks (Event, Thread start-up, Barrier, Semaphore internals) stay raw:
        # they would flood the graph and cost every thread start; so do lockwatch's and wrapt's.
        return real(*args, **kwargs)
    return proxies.new_lock(frame) if kind == "Lock" else proxies.RLock("RLock", frame)


def _lock_factory(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    return _make("Lock", wrapped, args, kwargs)


def _rlock_factory(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    return _make("RLock", wrapped, args, kwargs)


_factory_class: Any = None


def _factory_type() -> Any:
    """A wrapt FunctionWrapper whose isinstance() also accepts instrumented locks: on Python 3.13+
    ``threading.Lock`` is a class, and ``isinstance(x, threading.Lock)`` must stay true."""
    global _factory_class
    if _factory_class is None:
        import wrapt

        class Factory(wrapt.FunctionWrapper):  # type: ignore[misc]
            def __instancecheck__(self, obj: Any) -> bool:
                wrapped = self.__wrapped__
                if not isinstance(wrapped, type):
                    return isinstance(obj, wrapped)  # a function: TypeError, as unpatched
                return isinstance(obj, wrapped) or isinstance(obj, self._self_proxy_type)

        _factory_class = Factory
    return _factory_class


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
    threading.Lock = lambda *a, **k: _make("Lock", lock_real, a, k)  # type: ignore[misc]
    threading.RLock = lambda *a, **k: _make("RLock", rlock_real, a, k)  # type: ignore[misc]
    for name, cls in classes.items():
        setattr(threading, name, cls)
    import wrapt

    factory = _factory_type()
    lock = factory(lock_real, _lock_factory)
    lock._self_proxy_type = proxies.Lock
    rlock = factory(rlock_real, _rlock_factory)
    rlock._self_proxy_type = proxies.RLock
    for name, value in {"Lock": lock, "RLock": rlock, **classes}.items():
        setattr(threading, name, _originals[name])
        wrapt.wrap_object(threading, name, lambda original, value=value: value)


def uninstall() -> None:
    """Put the original factories back (idempotent). Locks already created stay instrumented."""
    while _originals:
        name, original = _originals.popitem()
        setattr(threading, name, original)
