"""Reading lockwatch's JSON files (reports, baselines) with errors a user can act on."""
from __future__ import annotations

import json
from typing import Any


def read_json(path: str, what: str, error: type[Exception]) -> Any:
    """The parsed contents of ``path``; ``error`` with one line when it cannot be read or is not
    JSON (``what`` names what it should have been, e.g. "lockwatch report")."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:  # also UnicodeDecodeError: a binary file
        raise error(f"{path} is not a {what} (not JSON)") from None
    except RecursionError:  # [[[[...]]]]: json's C parser counts the depth against the recursion limit
        raise error(f"{path} is not a {what} (JSON nested too deeply)") from None
