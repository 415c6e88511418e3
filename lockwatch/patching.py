"""Install lockwatch's lock factories into the threading module, and restore the originals."""
from __future__ import annotations

import os
import sys
import threading
from typing import Any

import wrapt

from . import proxies
from .stacks import is_threading

_PKG_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_WRAPT_DIR = os.path.dirname(os.path.abspath(wrapt.__file__)) + os.sep


class _Factory(wrapt.FunctionWrapper):  # type: ignore[misc]
    """``threading.Lock`` / ``threading.RLock`` while lockwatch is on. On Python 3.13+
    ``threading.Lock`` is a class: ``isinstance(x, threading.Lock)`` stays true for both real and
    instrumented locks."""

    def __instancecheck__(self, obj: Any) -> bool:
        wrapped = self.__wrapped__
        if not isinstance(wrapped, type):
            return isinstance(obj, wrapped)  # a function: raises TypeError, as it did unpatched
        return isinstance(obj, wrapped) or isinstance(obj, self._self_proxy_type)


def _caller(depth: int = 2) -> Any:
    """The frame that called the factory, past wrapt's and lockwatch's own frames."""
    f = sys._getframe(depth)
    while f is not None:
        fn = f.f_code.co_filename
        if not (fn.startswith(_PKG_DIR) or fn.startswith(_WRAPT_DIR)):
            return f
        f = f.f_back
    return None


def _lock_factory(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    frame = _caller()
    if args or kwargs or frame is None or is_threading(frame.f_code.co_filename):
        # threading's own locks (Event, Thread start-up, Barrier, Semaphore internals) stay raw:
        # they would flood the graph and cost every thread start.
        return wrapped(*args, **kwargs)
    return proxies.Lock("Lock", frame)


def _rlock_factory(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    frame = _caller()
    if args or kwargs or frame is None or is_threading(frame.f_code.co_filename):
        return wrapped(*args, **kwargs)
    return proxies.RLock("RLock", frame)


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
    lock = _Factory(_originals["Lock"], _lock_factory)
    lock._self_proxy_type = proxies.Lock
    rlock = _Factory(_originals["RLock"], _rlock_factory)
    rlock._self_proxy_type = proxies.RLock
    replacements = {"Lock": lock, "RLock": rlock, "Condition": proxies.Condition,
                    "Semaphore": proxies.Semaphore, "BoundedSemaphore": proxies.BoundedSemaphore}
    for name, value in replacements.items():
        wrapt.wrap_object(threading, name, lambda original, value=value: value)


def uninstall() -> None:
    """Put the original factories back (idempotent). Locks already created stay instrumented."""
    while _originals:
        name, original = _originals.popitem()
        setattr(threading, name, original)
