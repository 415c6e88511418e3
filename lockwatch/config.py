"""Project settings: the `[tool.lockwatch]` table of pyproject.toml, or a suppressions file."""
from __future__ import annotations

import fnmatch
import os
import re
import sys
from dataclasses import field
from typing import Any, Optional

from . import settings as settings_mod
from .errors import UserError
from .records import record
from .stacks import short_path, stable_path


class ConfigError(UserError):
    """A settings file lockwatch cannot use: str(exc) is one line naming the file and the entry."""


@record
class Suppression:
    """Ignore a potential deadlock: by its fingerprint, or when every lock of the cycle was
    created at a site matching one of ``sites`` (fnmatch patterns against "<file>:<line>", the
    file as the report shows it or as recorded: see site_forms)."""

    reason: str
    fingerprint: Optional[str] = None
    sites: list[str] = field(default_factory=list)
    source: str = ""

    def matches(self, fingerprint: str, lock_sites: list[str]) -> bool:
        if self.fingerprint is not None:
            return fingerprint == self.fingerprint
        return bool(lock_sites) and all(
            any(fnmatch.fnmatch(form, pat) for form in site_forms(site) for pat in self.sites)
            for site in lock_sites)

    def describe(self) -> str:
        """What the entry says and where it is, for the list of suppressions that matched nothing."""
        what = (f"fingerprint = {self.fingerprint!r}" if self.fingerprint is not None
                else "site = " + (repr(self.sites[0]) if len(self.sites) == 1 else repr(self.sites)))
        return f"{self.source}: {what} ({self.reason})"


def site_forms(site: str) -> list[str]:
    """A creation site "<file>:<line>" in each form a pattern may be written against: as the
    report shows it (relative to the working directory, `<stdlib>/...`, `<site-packages>/...`),
    as recorded (absolute), with forward slashes, and relative to its project (stable_path)."""
    filename, sep, line = site.rpartition(":")
    if not sep:
        return [site]
    forms = [site, site.replace(os.sep, "/"), short_path(site).replace(os.sep, "/"),
             f"{stable_path(filename)}:{line}"]
    return list(dict.fromkeys(forms))


_FINGERPRINT = re.compile(r"[0-9a-f]{12}\Z")


@record
class ProjectConfig:
    """What a settings file says: suppressions, a baseline, and the other settings it gives."""

    suppressions: list[Suppression] = field(default_factory=list)
    baseline: Optional[str] = None  # path, relative paths resolved against the file's directory
    source: Optional[str] = None
    # The other settings of settings.FIELDS given in the table, validated, by key ("json",
    # "deadlock_timeout", ...); paths resolved against the file's directory.
    settings: dict[str, Any] = field(default_factory=dict)

    def where(self, f: settings_mod.Field) -> str:
        return f"{self.source} [tool.lockwatch] {f.key}"


_PATH_KEYS = {"json", "html", "dot", "suppressions"}
_TOP_KEYS = {"suppress"} | set(settings_mod.FIELD_BY_KEY)
_ENTRY_KEYS = {"fingerprint", "site", "reason"}


_FILE_KEYS = {"suppress", "baseline"}  # what a suppressions file may hold


def parse(data: Any, source: str, keys: Optional[set[str]] = None) -> ProjectConfig:
    """Validate a `[tool.lockwatch]`-shaped table (only ``keys`` allowed, by default every
    setting). Unknown keys and malformed entries are errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: [tool.lockwatch] must be a table")
    allowed = _TOP_KEYS if keys is None else keys
    unknown = set(data) - allowed
    if unknown:
        raise ConfigError(f"{source}: unknown lockwatch setting(s) {', '.join(sorted(unknown))} "
                          f"(known: {', '.join(sorted(allowed))})")
    cfg = ProjectConfig(source=source)
    entries = data.get("suppress", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: suppress must be a list of tables")
    for i, entry in enumerate(entries, 1):
        where = f"{source}: suppress entry {i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table like {{fingerprint = \"...\", reason = \"...\"}}")
        unknown = set(entry) - _ENTRY_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
                              f"(known: {', '.join(sorted(_ENTRY_KEYS))})")
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError(f"{where} needs a reason (why this cycle is safe to ignore)")
        fp, site = entry.get("fingerprint"), entry.get("site")
        if (fp is None) == (site is None):
            raise ConfigError(f"{where} needs exactly one of fingerprint or site")
        if fp is not None and not (isinstance(fp, str) and _FINGERPRINT.match(fp.strip())):
            raise ConfigError(f"{where}: fingerprint must be the 12 hexadecimal digits a report gives "
                              "a potential deadlock")
        sites = [site] if isinstance(site, str) else site
        patterns_ok = isinstance(sites, list) and sites and all(isinstance(p, str) and p for p in sites)
        if site is not None and not patterns_ok:
            raise ConfigError(f"{where}: site must be a pattern or a list of patterns")
        cfg.suppressions.append(Suppression(reason=reason.strip(), fingerprint=fp.strip() if fp else None,
                                            sites=list(sites or []), source=where))
    baseline = data.get("baseline")
    if baseline is not None:
        if not isinstance(baseline, str) or not baseline:
            raise ConfigError(f"{source}: baseline must be a path")
        cfg.baseline = settings_mod.abspath_from(source, baseline)
    for key, raw in data.items():
        f = settings_mod.FIELD_BY_KEY.get(key)
        if f is None or key == "baseline":
            continue
        try:
            value = f.validate(raw, cfg.where(f))
        except settings_mod.SettingsError as exc:
            raise ConfigError(str(exc)) from None
        cfg.settings[key] = settings_mod.abspath_from(source, value) if key in _PATH_KEYS else value
    return cfg


def _read_toml(path: str) -> dict[str, Any]:
    # Imported here: most runs have no settings file to read (tomllib compiles its regular
    # expressions when imported).
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.9/3.10
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def find_pyproject(start: str) -> Optional[str]:
    """The nearest pyproject.toml from ``start`` upwards."""
    d = os.path.abspath(start)
    while True:
        candidate = os.path.join(d, "pyproject.toml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def _tool_table(data: dict[str, Any], path: str) -> Any:
    """[tool.lockwatch] of a TOML document, or None; a `tool` that is not a table is an error."""
    tool = data.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(f"{path}: tool must be a table ([tool.lockwatch])")
    return tool.get("lockwatch")


def load_project(start: str = ".") -> ProjectConfig:
    """`[tool.lockwatch]` of the nearest pyproject.toml; empty settings when there is none."""
    path = find_pyproject(start)
    if path is None:
        return ProjectConfig()
    table = _tool_table(_read_toml(path), path)
    return ProjectConfig() if table is None else parse(table, path)


def load_file(path: str) -> ProjectConfig:
    """A suppressions file: either a pyproject-style `[tool.lockwatch]` table or the same keys
    (``suppress = [...]``) at the top level."""
    data = _read_toml(path)
    table = _tool_table(data, path) if "tool" in data else data
    if table is None:
        raise ConfigError(f"{path} has no [tool.lockwatch] table (a suppressions file holds "
                          "suppress = [...], at the top level or under [tool.lockwatch])")
    return parse(table, path, _FILE_KEYS)


def combine(*configs: ProjectConfig) -> ProjectConfig:
    out = ProjectConfig()
    for c in configs:
        out.suppressions.extend(c.suppressions)
        out.baseline = c.baseline or out.baseline
        out.source = out.source or c.source
        out.settings.update(c.settings)
    return out
