"""The test suite on every supported Python present on this machine, and the linters: `nox` (see .ci/run)."""
from __future__ import annotations

import shutil

import nox

SUPPORTED = ["3.9", "3.10", "3.11", "3.12", "3.13"]
# Only the interpreters that exist here (CI treats a missing interpreter as an error).
PRESENT = [v for v in SUPPORTED if shutil.which(f"python{v}")]

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = False


@nox.session(python=PRESENT)
def tests(session: nox.Session) -> None:
    """The README's test command: install with the test extra, run pytest."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", *session.posargs)


@nox.session(python=PRESENT[-1:] or None)
def lint(session: nox.Session) -> None:
    """mypy (the package ships py.typed) and ruff, configured in pyproject.toml."""
    session.install("-e", ".[lint]")
    session.run("mypy")
    session.run("ruff", "check", ".")
