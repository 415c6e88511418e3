"""The CI baseline: the potential deadlocks already known, so that only new ones fail a build."""
from __future__ import annotations

import json
from collections.abc import Sequence

from .errors import UserError
from .jsonfile import read_json
from .model import BaselineEntry, PotentialDeadlock, ReportError, check_header
from .stacks import stable_path

FORMAT = "lockwatch-baseline"
VERSION = 1


class BaselineError(UserError):
    """A baseline file lockwatch cannot use (one line for the user)."""


def read(path: str) -> dict[str, BaselineEntry]:
    """fingerprint -> what the baseline says of that cycle (locks, scope)."""
    data = read_json(path, "lockwatch baseline", BaselineError)
    check_header(data, path, FORMAT, VERSION, "lockwatch baseline", BaselineError,
                 " (write one with `lockwatch baseline`)")
    if "cycles" not in data:
        raise BaselineError(f"{path} is a damaged lockwatch baseline (it has no cycles list)")
    cycles = data["cycles"]
    if not isinstance(cycles, list):
        raise BaselineError(f"{path} is a damaged lockwatch baseline (cycles is not a list)")
    out = {}
    for i, entry in enumerate(cycles):
        # Every entry is checked: a baseline that lists something lockwatch cannot read would
        # otherwise let that cycle fail CI again, or hide a typo.
        try:
            found = BaselineEntry.from_dict(entry, f"cycles[{i}]", path)
        except ReportError as exc:
            raise BaselineError(str(exc).replace("lockwatch report", "lockwatch baseline")) from None
        out[found.fingerprint] = found
    return out


def render(potential_deadlocks: Sequence[PotentialDeadlock]) -> str:
    """A baseline of these potential deadlocks (sorted: stable diffs in version control)."""
    cycles = [BaselineEntry(p.fingerprint, [f"{lk.name} ({lk.kind}) {stable_path(lk.filename)}:{lk.line}"
                                            for lk in p.locks], p.scope, p.triage).to_dict()
              for p in sorted(potential_deadlocks, key=lambda p: p.fingerprint)]
    return json.dumps({"format": FORMAT, "version": VERSION, "cycles": cycles}, indent=2) + "\n"
