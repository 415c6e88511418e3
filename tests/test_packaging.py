"""The distributions carry the licence the metadata names: LICENSE in the sdist and the wheel."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from support import PROJECT_ROOT

pytestmark = pytest.mark.timeout(900)


def test_license_file_is_in_the_sdist_and_the_wheel(tmp_path: Path) -> None:
    pytest.importorskip("build")  # the test extra installs it
    license_text = (PROJECT_ROOT / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License\n")
    # Build from a copy: the checkout stays as it is (no build/ or dist/ left behind).
    source = tmp_path / "src"
    shutil.copytree(PROJECT_ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".nox", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache"))
    out = tmp_path / "dist"
    # sdist, then the wheel built from that sdist (what pip does with a source release)
    proc = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(source)],
                          capture_output=True, text=True, timeout=840)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [sdist] = out.glob("*.tar.gz")
    [wheel] = out.glob("*.whl")
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
