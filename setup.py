"""Build script: everything but the two things pyproject.toml cannot say.

1. The optional C core, ``lockwatch._core`` (lockwatch/_core.c): built where a C compiler and
   CPython's headers exist; where the build fails (no compiler, ``CC=false``, a free-threaded or
   non-CPython interpreter) the install goes on without it and lockwatch runs its pure-Python
   core (lockwatch/proxies.py). Editable installs (``pip install -e .``) build it in place.
2. The start-up hook ``startup/pylockwatch.pth``, installed at the root of site-packages (wheel
   and editable installs): every Python process runs it at start-up, and it imports lockwatch
   only when the LOCKWATCH environment variable is set.
"""
from __future__ import annotations

import os
import platform
import shutil

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

PTH = os.path.join("startup", "pylockwatch.pth")


class BuildPyWithPth(build_py):
    """build_py, and the .pth file at the root of the build (so at the root of the wheel)."""

    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            self.copy_file(PTH, os.path.join(self.build_lib, os.path.basename(PTH)))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if not self.editable_mode:
            outputs.append(os.path.join(self.build_lib, os.path.basename(PTH)))
        return outputs


cmdclass: dict = {"build_py": BuildPyWithPth}

try:
    from setuptools.command.editable_wheel import editable_wheel
except ImportError:  # setuptools < 64: no PEP 660 editable installs
    pass
else:
    class EditableWheelWithPth(editable_wheel):
        """An editable install gets the start-up hook too (next to its own __editable__ .pth)."""

        def _run_build_commands(self, dist_name, unpacked_wheel, build_lib, tmp_dir):  # type: ignore[no-untyped-def]
            result = super()._run_build_commands(dist_name, unpacked_wheel, build_lib, tmp_dir)
            shutil.copy(PTH, os.path.join(unpacked_wheel, os.path.basename(PTH)))
            return result

    cmdclass["editable_wheel"] = EditableWheelWithPth

ext_modules = []
if platform.python_implementation() == "CPython" and not os.environ.get("LOCKWATCH_NO_EXTENSION"):
    # optional=True: a failed compile is a warning, and the install goes on without it.
    ext_modules.append(Extension("lockwatch._core", ["lockwatch/_core.c"], optional=True))

setup(cmdclass=cmdclass, ext_modules=ext_modules)
