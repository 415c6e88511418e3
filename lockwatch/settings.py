"""Every user setting of lockwatch: its default, its one validator, the exit statuses, the environment."""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, Callable, Optional

# The exit statuses, the defaults and the LOCKWATCH switch are settings' own; they are written in
# defaults.py, which imports nothing, for `import lockwatch` and the start-up hook to read cheaply.
from .defaults import (  # noqa: F401  (re-exported: import them from here)
    DEFAULT_CONFIRM_PAUSE,
    DEFAULT_CONFIRM_RUNS,
    DEFAULT_DEADLOCK_TIMEOUT,
    DEFAULT_ON_DEADLOCK,
    DEFAULT_TOP,
    ENV_SWITCH,
    EXIT_DEADLOCK,
    EXIT_INTERRUPTED,
    EXIT_POTENTIAL_DEADLOCK,
    EXIT_USAGE,
    MAX_CONFIRM_RUNS,
    MAX_TOP,
    POLICIES,
    switched_on,
)
from .defaults import FALSE_WORDS as _FALSE
from .defaults import TRUE_WORDS as _TRUE
from .errors import UserError


class SettingsError(UserError, ValueError):
    """A setting lockwatch cannot use: str() is one line that names where the value came from."""


# -- validators: one per kind of value, each ``(value, where) -> value`` ---------------------------
def _seconds(value: Any) -> float:
    """``value`` as a finite number of seconds, or NaN when it is not one."""
    if isinstance(value, bool):
        return math.nan
    try:
        seconds = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        return math.nan
    return seconds if math.isfinite(seconds) else math.nan


def validate_seconds(value: Any, where: str) -> float:
    """A number of seconds >= 0 (0 switches the feature off), from a number or a string."""
    seconds = _seconds(value)
    if not seconds >= 0:
        raise SettingsError(f"{where}: {value!r} is not a number of seconds >= 0")
    return seconds


def validate_optional_seconds(value: Any, where: str) -> Optional[float]:
    """Seconds > 0 for a warning threshold, or None (or "") for no warning."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    seconds = _seconds(value)
    if not seconds > 0:
        raise SettingsError(f"{where}: {value!r} is not a number of seconds > 0")
    return seconds


def validate_policy(value: Any, where: str) -> str:
    policy = value.strip().lower() if isinstance(value, str) else value
    if policy not in POLICIES:
        raise SettingsError(f"{where}: {value!r} is not one of {', '.join(POLICIES)}")
    return str(policy)


def validate_top(value: Any, where: str) -> int:
    try:
        top = int(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        top = -1
    if isinstance(value, bool) or isinstance(value, float) or not 0 <= top <= MAX_TOP:
        raise SettingsError(f"{where}: {value!r} is not a number of rows from 0 to {MAX_TOP}")
    return top


def validate_runs(value: Any, where: str) -> int:
    """A number of confirmation runs, 1 to MAX_CONFIRM_RUNS."""
    try:
        runs = int(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        runs = 0
    if isinstance(value, (bool, float)) or not 1 <= runs <= MAX_CONFIRM_RUNS:
        raise SettingsError(f"{where}: {value!r} is not a number of runs from 1 to {MAX_CONFIRM_RUNS}")
    return runs


def validate_pause(value: Any, where: str) -> float:
    """Seconds > 0 (at most 60: a pause is short by design)."""
    seconds = _seconds(value)
    if not 0 < seconds <= 60:
        raise SettingsError(f"{where}: {value!r} is not a number of seconds above 0 and at most 60")
    return seconds


def validate_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SettingsError(f"{where}: {value!r} is not a boolean (use true or false)")


def validate_optional_bool(value: Any, where: str) -> Optional[bool]:
    """true or false, or None (or "", "auto") for "decide by itself"."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    try:
        return validate_bool(value, where)
    except SettingsError:
        raise SettingsError(f"{where}: {value!r} is not true, false or auto") from None


def validate_path(value: Any, where: str) -> Optional[str]:
    """A file path, or None for "not given" ("" too: an empty environment variable or ini value)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SettingsError(f"{where}: {value!r} is not a path")
    return value


# Field and Settings are written out rather than made by @dataclass(frozen=True): every process
# that switches lockwatch on imports this module, and dataclasses compiled their methods from text
# at each import, 14 M instructions of this module's 15 M (callgrind, 3.11; a bare interpreter's
# whole start-up is 39 M).
class Field:
    """One user setting: its validator, and its names in the environment and in [tool.lockwatch]."""

    __slots__ = ("name", "key", "env", "validate", "help")

    def __init__(self, name: str, key: str, env: str, validate: Callable[[Any, str], Any], help: str) -> None:
        self.name = name  # the attribute of Settings
        self.key = key  # the name in [tool.lockwatch], enable() and the pytest ini (with "lockwatch_")
        self.env = env  # the environment variable
        self.validate = validate
        self.help = help

    def __repr__(self) -> str:
        return f"Field({self.name!r}, {self.key!r}, {self.env!r})"


FIELDS: tuple[Field, ...] = (
    Field("json_path", "json", "LOCKWATCH_JSON", validate_path,
          "write the report as JSON (format lockwatch-report, version 2) to this path; %p becomes the pid"),
    Field("html_path", "html", "LOCKWATCH_HTML", validate_path,
          "write a self-contained HTML report to this path; %p becomes the pid"),
    Field("dot_path", "dot", "LOCKWATCH_DOT", validate_path,
          "write the lock-order graph in Graphviz DOT to this path; %p becomes the pid"),
    Field("text", "text", "LOCKWATCH_TEXT", validate_bool, "the text report on stderr at exit"),
    Field("color", "color", "LOCKWATCH_COLOR", validate_optional_bool,
          "colour in the text report: true, false, or auto (on a terminal, unless NO_COLOR; FORCE_COLOR forces it)"),
    Field("top", "top", "LOCKWATCH_TOP", validate_top, "rows in each contention table of the text report"),
    Field("show_library", "show_library", "LOCKWATCH_SHOW_LIBRARY", validate_bool,
          "list the standard library's and installed packages' locks and stack frames with the "
          "program's in the text and HTML reports (folded and counted by default)"),
    Field("deadlock_timeout", "deadlock_timeout", "LOCKWATCH_DEADLOCK_TIMEOUT", validate_seconds,
          "seconds threads must wait for each other before it is a real deadlock (0: no watchdog)"),
    Field("on_deadlock", "on_deadlock", "LOCKWATCH_ON_DEADLOCK", validate_policy,
          "after a real deadlock: exit, raise or report"),
    Field("warn_hold", "warn_hold", "LOCKWATCH_WARN_HOLD", validate_optional_seconds,
          "report a lock held longer than this many seconds, while it happens"),
    Field("warn_wait", "warn_wait", "LOCKWATCH_WARN_WAIT", validate_optional_seconds,
          "report a thread waiting longer than this many seconds for a lock, while it happens"),
    # No variable: a process switched on by the environment keeps its own exit status.
    Field("fail_on_cycle", "fail_on_cycle", "", validate_bool,
          "fail (exit status 86, or a failed test run) when a potential deadlock is found"),
    Field("suppressions_path", "suppressions", "LOCKWATCH_SUPPRESSIONS", validate_path,
          "a TOML file of potential deadlocks to ignore"),
    Field("baseline_path", "baseline", "LOCKWATCH_BASELINE", validate_path,
          "a baseline of known potential deadlocks: only new ones fail"),
    # No variables: confirming re-runs the program, which only `python -m lockwatch` and the
    # pytest plugin can do.
    Field("confirm", "confirm", "", validate_bool,
          "re-run the program with a steered schedule to confirm each potential deadlock"),
    Field("confirm_runs", "confirm_runs", "", validate_runs,
          "confirmation runs per potential deadlock, at most"),
    Field("confirm_pause", "confirm_pause", "", validate_pause,
          "seconds a steered thread waits, at most, for the other threads of the cycle"),
)
FIELD_BY_KEY = {f.key: f for f in FIELDS}


class Settings:
    """What the user asked of lockwatch, validated. Every entry point (the CLI, ``enable()``, the
    environment, ``[tool.lockwatch]``, the pytest plugin) builds one of these through ``resolve``.
    Read-only: ``replace()`` makes a changed copy. Equal when every setting is."""

    __slots__ = ("json_path", "html_path", "dot_path", "text", "color", "top", "show_library",
                 "deadlock_timeout", "on_deadlock", "warn_hold", "warn_wait", "fail_on_cycle",
                 "suppressions_path", "baseline_path", "confirm", "confirm_runs", "confirm_pause")
    json_path: Optional[str]
    html_path: Optional[str]
    dot_path: Optional[str]
    text: bool
    color: Optional[bool]  # None: on a terminal only (NO_COLOR, FORCE_COLOR honoured)
    top: int
    show_library: bool
    deadlock_timeout: float
    on_deadlock: str
    warn_hold: Optional[float]
    warn_wait: Optional[float]
    fail_on_cycle: bool
    suppressions_path: Optional[str]
    baseline_path: Optional[str]
    confirm: bool
    confirm_runs: int
    confirm_pause: float

    def __init__(self, *, json_path: Optional[str] = None, html_path: Optional[str] = None,
                 dot_path: Optional[str] = None, text: bool = True, color: Optional[bool] = None,
                 top: int = DEFAULT_TOP, show_library: bool = False,
                 deadlock_timeout: float = DEFAULT_DEADLOCK_TIMEOUT,
                 on_deadlock: str = DEFAULT_ON_DEADLOCK["api"], warn_hold: Optional[float] = None,
                 warn_wait: Optional[float] = None, fail_on_cycle: bool = False,
                 suppressions_path: Optional[str] = None, baseline_path: Optional[str] = None,
                 confirm: bool = False, confirm_runs: int = DEFAULT_CONFIRM_RUNS,
                 confirm_pause: float = DEFAULT_CONFIRM_PAUSE) -> None:
        values = locals()
        for name in Settings.__slots__:
            object.__setattr__(self, name, values[name])

    def _values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in Settings.__slots__}

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` (setting names); an unknown name is a TypeError."""
        return Settings(**{**self._values(), **changes})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Settings are read-only: cannot assign to {name!r} (use replace())")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Settings are read-only: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(tuple(self._values().values()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value!r}" for name, value in self._values().items())
        return f"Settings({inner})"

    def __reduce__(self) -> tuple[Any, ...]:  # copy and pickle: through __init__, not __setattr__
        return _settings_from, (self._values(),)

    @property
    def report_paths(self) -> dict[str, str]:
        """Format name -> path, for each report file asked for."""
        paths = {"json": self.json_path, "html": self.html_path, "dot": self.dot_path}
        return {fmt: path for fmt, path in paths.items() if path}

    @property
    def watchdog_wanted(self) -> bool:
        return bool(self.deadlock_timeout or self.warn_hold or self.warn_wait)


def resolve(*layers: tuple[Mapping[str, Any], Callable[[Field], str]], base: Optional[Settings] = None
            ) -> Settings:
    """Settings from ``base`` (the defaults) overridden by each layer in turn, lowest precedence
    first. A layer is (values by key, where(field) -> the name of that value's origin for errors);
    a value of None means "not given there". Unknown keys are the caller's to reject."""
    values: dict[str, Any] = {}
    for given, where in layers:
        for key, raw in given.items():
            field = FIELD_BY_KEY.get(key)
            if field is None or raw is None:
                continue
            values[field.name] = field.validate(raw, where(field))
    return (base or Settings()).replace(**values)


def _settings_from(values: dict[str, Any]) -> Settings:
    return Settings(**values)


# -- the environment, both ways -------------------------------------------------------------------
def env_where(field: Field) -> str:
    return field.env


def environ_values(environ: Mapping[str, str]) -> dict[str, str]:
    """The raw values of the LOCKWATCH_* variables set, by setting key (empty means "not given")."""
    return {f.key: environ[f.env] for f in FIELDS if f.env and environ.get(f.env, "").strip()}


def from_environ(environ: Mapping[str, str], base: Optional[Settings] = None) -> Settings:
    """The settings that LOCKWATCH_* variables ask for."""
    return resolve((environ_values(environ), env_where), base=base)


def to_environ(settings: Settings) -> dict[str, str]:
    """The variables that make a child process (through the start-up hook) run with ``settings``:
    ``from_environ(to_environ(s)) == s``. Includes LOCKWATCH=1."""
    env = {ENV_SWITCH: "1"}
    for f in FIELDS:
        if not f.env:
            continue
        value = getattr(settings, f.name)
        if value is None:
            env[f.env] = ""
        elif isinstance(value, bool):
            env[f.env] = "1" if value else "0"
        else:
            env[f.env] = str(value)
    return env


def abspath_from(base_file: str, path: Optional[str]) -> Optional[str]:
    """A path written in a settings file, relative to that file's folder."""
    if path is None or os.path.isabs(path):
        return path
    return os.path.join(os.path.dirname(os.path.abspath(base_file)), path)
