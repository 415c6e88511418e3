"""The distributions carry the licence the metadata names: LICENSE in the sdist and the wheel."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from support import PROJECT_ROOT

# One worker runs this module (nox: --dist loadgroup), so the distributions are built once.
pytestmark = [pytest.mark.timeout(900), pytest.mark.xdist_group("packaging")]


def _copy_of_project(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    shutil.copytree(PROJECT_ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".nox", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache", "*.so"))
    return source


@pytest.fixture(scope="module")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sdist and the wheel `python -m build` makes of a copy of the project (the wheel is
    built from the sdist, as pip would build it from PyPI): built once for the tests below."""
    pytest.importorskip("build")  # the test extra installs it
    tmp_path = tmp_path_factory.mktemp("dist")
    out = tmp_path / "dist"
    proc = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(_copy_of_project(tmp_path))],
                          capture_output=True, text=True, timeout=840)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [sdist] = out.glob("*.tar.gz")
    [wheel] = out.glob("*.whl")
    return sdist, wheel


def test_license_file_is_in_the_sdist_and_the_wheel(distributions: tuple[Path, Path]) -> None:
    sdist, wheel = distributions
    license_text = (PROJECT_ROOT / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License\n")
    with tarfile.open(sdist) as tar:
        [member] = [m for m in tar.getmembers() if m.name.endswith("/LICENSE") and m.name.count("/") == 1]
        extracted = tar.extractfile(member)
        assert extracted is not None and extracted.read().decode("utf-8") == license_text
    with zipfile.ZipFile(wheel) as whl:
        [name] = [n for n in whl.namelist() if n.endswith("/LICENSE") and ".dist-info/" in n]
        assert whl.read(name).decode("utf-8") == license_text
        metadata = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
        meta = whl.read(metadata).decode("utf-8")
    assert "License: MIT" in meta or "License-Expression: MIT" in meta
    assert "License-File: LICENSE" in meta


def test_without_a_compiler_the_install_falls_back_to_the_pure_python_core(tmp_path: Path) -> None:
    """`CC=false pip install .`: the C core does not build, and the install still succeeds, with
    the start-up hook at the root of site-packages and lockwatch on its pure-Python core."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    env = {**os.environ, "CC": "false"}
    env.pop("LOCKWATCH_PURE_PYTHON", None)
    proc = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", str(_copy_of_project(tmp_path))],
                          capture_output=True, text=True, timeout=840, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert (Path(site) / "pylockwatch.pth").is_file()
    assert not [p for p in (Path(site) / "lockwatch").iterdir() if p.name.startswith("_core")]
    core = subprocess.run([str(py), "-c", "import lockwatch.proxies as p; print(p.CORE)"],
                          capture_output=True, text=True, cwd=tmp_path, env=env)
    assert core.stdout == "python\n", core.stderr


def test_the_wheel_carries_the_c_core_where_a_compiler_exists(distributions: tuple[Path, Path]) -> None:
    if not shutil.which(os.environ.get("CC") or "cc"):
        pytest.skip("no C compiler here")
    _, wheel = distributions
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
    assert "pylockwatch.pth" in names
    assert [n for n in names if n.startswith("lockwatch/_core") and n.endswith((".so", ".pyd"))]
    assert "lockwatch/renderers/html/report.css" in names and "lockwatch/py.typed" in names
    assert "lockwatch/_core.c" not in names
