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
@nox.parametrize("core", ["c", "python"])
def tests(session: nox.Session, core: str) -> None:
    """The README's test command: install with the test extra (which builds the C core), run
    pytest; once per core: the compiled one (lockwatch._core, which must have been built here)
    and the pure-Python one (LOCKWATCH_PURE_PYTHON=1, kept in the children the tests start)."""
    session.install("-e", ".[test]")
    env = {"LOCKWATCH_PURE_PYTHON": "1" if core == "python" else ""}
    # Fails if the C core did not build: CI must test it, not silently the fallback twice.
    session.run("python", "-c", f"import lockwatch.proxies as p; assert p.CORE == {core!r}, p.CORE", env=env)
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup",
                *session.posargs, env=env)


@nox.session(python=PRESENT[-1:] or None)
def lint(session: nox.Session) -> None:
    """mypy (the package ships py.typed) and ruff, configured in pyproject.toml."""
    session.install("-e", ".[lint]")
    session.run("mypy")
    session.run("ruff", "check", ".")
