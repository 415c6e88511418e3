"""Switch lockwatch on at interpreter start-up when LOCKWATCH is set (imported by pylockwatch.pth)."""
from __future__ import annotations

import os
import sys
from typing import Any, Optional

# LOCKWATCH=1                  switch on (when threading is first imported), with the text
#                              report on stderr at exit; not in isolated mode (python -I)
# LOCKWATCH_JSON=PATH          also write the JSON report; %p in PATH becomes the process id
# LOCKWATCH_HTML=PATH          also write the HTML report (%p as above)
# LOCKWATCH_TEXT=0             no text report on stderr
# LOCKWATCH_DEADLOCK_TIMEOUT=S seconds before threads waiting for each other are a deadlock (0: off)
# LOCKWATCH_ON_DEADLOCK=P      report | raise | exit
# LOCKWATCH_WARN_HOLD=S, LOCKWATCH_WARN_WAIT=S   long-hold / long-wait alerts
ENV_HELP = __doc__

_FALSE = ("", "0", "false", "no", "off")


def _seconds(name: str) -> Optional[float]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    value = float(raw)  # ValueError is reported by the caller
    if value < 0:
        raise ValueError(f"{name}={raw!r} is negative")
    return value


def settings_from_environ() -> dict[str, Any]:
    """The keyword arguments of lockwatch.enable() that the environment asks for."""
    kwargs: dict[str, Any] = {
        "report_at_exit": True,
        "json": os.environ.get("LOCKWATCH_JSON") or None,
        "html": os.environ.get("LOCKWATCH_HTML") or None,
        "text": os.environ.get("LOCKWATCH_TEXT", "1").strip().lower() not in _FALSE,
    }
    timeout = _seconds("LOCKWATCH_DEADLOCK_TIMEOUT")
    if timeout is not None:
        kwargs["deadlock_timeout"] = timeout
    policy = os.environ.get("LOCKWATCH_ON_DEADLOCK")
    if policy:
        kwargs["on_deadlock"] = policy.strip()
    for key, name in (("warn_hold", "LOCKWATCH_WARN_HOLD"), ("warn_wait", "LOCKWATCH_WARN_WAIT")):
        value = _seconds(name)
        if value:
            kwargs[key] = value
    return kwargs


def start() -> None:
    try:
        import lockwatch

        if lockwatch.current_session() is not None:
            return  # the .pth ran twice (a venv's lib64 symlink): already on
        lockwatch.enable(**settings_from_environ())
    except Exception as exc:  # never break a program for lockwatch's sake
        sys.stderr.write(f"lockwatch: not switched on ({type(exc).__name__}: {exc})\n")


class _WhenThreadingIsImported:
    """A meta path finder that switches lockwatch on right after ``threading`` is first imported,
    so that a process that never uses threads is not made to import it (some programs and test
    suites check what is imported at start-up)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "threading":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec("threading")
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        class Loader:
            def create_module(self, spec: Any) -> Any:
                return loader.create_module(spec)

            def exec_module(self, module: Any) -> None:
                exec_module(module)
                sys.modules["threading"] = module
                start()

        spec.loader = Loader()
        return spec


def _main() -> None:
    if os.environ.get("LOCKWATCH", "0").strip().lower() in _FALSE:
        return
    if sys.flags.isolated:
        return  # python -I: the environment must not change this process
    if "threading" in sys.modules:
        start()
    else:
        sys.meta_path.insert(0, _WhenThreadingIsImported())


_main()
