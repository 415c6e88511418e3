"""Tests for lockwatch.runner: a program run by ProgramRunner behaves as under plain python."""

from __future__ import annotations

import os
import socket
import subprocess
import textwrap
import zipfile
from pathlib import Path

import pytest
from support import PACKAGE_DIR, python, write

from lockwatch.runner import NoSource, ProgramRunner

pytestmark = pytest.mark.timeout(120)


# Runs `python -c DRIVER [-m] target args...` the way the lockwatch CLI will.  Like a console
# script, the driver starts with its own directory (not the cwd) as sys.path[0].
DRIVER = textwrap.dedent(
    """
    import os, sys
    sys.path[0] = os.path.dirname(sys.executable)
    from lockwatch.runner import ProgramRunner
    as_module = sys.argv[1] == "-m"
    target, *args = sys.argv[2:] if as_module else sys.argv[1:]
    runner = ProgramRunner(target, args, as_module)
    runner.prepare()
    sys.exit(runner.run())
    """
)

# Prints everything python sets up for the main module, so runs can be compared line by line.
PROBE = textwrap.dedent(
    '''
    """Probe docstring."""
    import inspect
    import os
    import pickle
    import sys

    import __main__


    class Point:
        def __init__(self, x):
            self.x = x


    def annotated() -> int:
        return 0


    print("argv", sys.argv)
    print("path0", sys.path[0])
    print("path head", sys.path[:2])
    print("name", __name__)
    print("file", __file__)
    print("spec is None", __spec__ is None)
    print("spec name", getattr(__spec__, "name", None))
    print("package", repr(__package__))
    print("cached", repr(__cached__))
    print("loader", type(__loader__).__name__)
    print("doc", repr(__doc__))
    print("builtins", __builtins__ is __import__("builtins"))
    print("globals", sorted(k for k in globals() if k.startswith("__")))
    print("import __main__ is this module", __main__.__dict__ is globals())
    print("annotations not stringified", annotated.__annotations__)
    print("getsource", inspect.getsource(annotated).splitlines()[0])
    copy = pickle.loads(pickle.dumps(Point(7)))
    print("pickle", type(copy) is Point, copy.x)
    if __name__ == "__main__":
        print("ran as main")
    '''
)


def run_python(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python [-m] target args...`"""
    return python(*args, cwd=cwd, timeout=60)


def run_runner(args: list[str], cwd: Path, driver: str = DRIVER) -> subprocess.CompletedProcess[str]:
    """The same command line, but run by ProgramRunner inside another python program."""
    return python("-c", driver, *args, cwd=cwd, timeout=60)


def lines(output: str) -> dict[str, str]:
    """'key value' lines of the probe's output, by key."""
    found = {}
    for line in output.splitlines():
        for key in ("argv", "path0", "name", "file", "spec is None", "package"):
            if line.startswith(key + " "):
                found.setdefault(key, line[len(key) + 1 :])
    return found


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """tmp/sub/probe.py, tmp/sub/pkg/{__init__,__main__}.py and tmp/appdir/__main__.py."""
    write(tmp_path / "sub" / "probe.py", PROBE)
    write(tmp_path / "sub" / "pkg" / "__init__.py", "")
    write(tmp_path / "sub" / "pkg" / "__main__.py", PROBE)
    write(tmp_path / "appdir" / "__main__.py", PROBE)
    return tmp_path


def assert_same_run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    expected = run_python(args, cwd)
    actual = run_runner(args, cwd)
    assert expected.returncode == 0, expected.stderr
    assert actual.stderr == ""
    assert actual.stdout == expected.stdout
    assert actual.returncode == 0
    return actual


# -- the program sees what python gives it -------------------------------------------------


def test_script_sees_what_python_gives_it(project: Path) -> None:
    result = assert_same_run(["sub/probe.py", "a", "b"], project)
    got = lines(result.stdout)
    assert got["argv"] == "['sub/probe.py', 'a', 'b']"
    assert got["path0"] == os.path.realpath(project / "sub")  # replaced the driver's '' entry
    assert got["name"] == "__main__"
    assert got["file"] == str(project / "sub" / "probe.py")
    assert got["spec is None"] == "True"
    assert got["package"] == "None"
    assert "import __main__ is this module True" in result.stdout
    assert "annotations not stringified {'return': <class 'int'>}" in result.stdout
    assert "pickle True 7" in result.stdout
    assert "ran as main" in result.stdout


def test_symlinked_script_gets_the_real_directory_on_sys_path(project: Path) -> None:
    (project / "link.py").symlink_to(project / "sub" / "probe.py")
    result = assert_same_run(["link.py"], project)
    assert lines(result.stdout)["path0"] == os.path.realpath(project / "sub")


def test_module(project: Path) -> None:
    result = assert_same_run(["-m", "probe", "x"], project / "sub")
    got = lines(result.stdout)
    assert got["argv"] == repr([str(project / "sub" / "probe.py"), "x"])
    assert got["path0"] == str(project / "sub")  # the cwd
    assert got["name"] == "__main__"
    assert got["spec is None"] == "False"
    assert got["package"] == "''"
    assert "spec name probe" in result.stdout
    assert "pickle True 7" in result.stdout


def test_package_runs_its_main(project: Path) -> None:
    result = assert_same_run(["-m", "pkg", "y"], project / "sub")
    got = lines(result.stdout)
    assert got["file"] == str(project / "sub" / "pkg" / "__main__.py")
    assert got["argv"] == repr([got["file"], "y"])
    assert got["package"] == "'pkg'"
    assert "spec name pkg.__main__" in result.stdout
    assert "ran as main" in result.stdout


def test_directory_with_main(project: Path) -> None:
    result = assert_same_run(["appdir", "z"], project)
    got = lines(result.stdout)
    assert got["argv"] == "['appdir', 'z']"
    assert got["path0"] == str(project / "appdir")
    assert got["spec is None"] == "False"


def test_zipfile_with_main(project: Path) -> None:
    with zipfile.ZipFile(project / "app.zip", "w") as zf:
        zf.write(project / "appdir" / "__main__.py", "__main__.py")
    result = assert_same_run(["app.zip"], project)
    assert lines(result.stdout)["path0"] == str(project / "app.zip")
    assert "loader zipimporter" in result.stdout


def test_zipfile_after_a_shebang_with_a_long_comment(project: Path) -> None:
    """A zip application as zipapp writes it (a shebang line first), with the longest comment a
    zip file can have: the runner's cheap look for the end-of-zip record before importing zipfile
    finds it as far from the end as zipfile looks."""
    app = project / "app.pyz"
    with zipfile.ZipFile(app, "w") as zf:
        zf.write(project / "appdir" / "__main__.py", "__main__.py")
        zf.comment = b"c" * 65535
    app.write_bytes(b"#!/usr/bin/env python3\n" + app.read_bytes())
    result = assert_same_run(["app.pyz"], project)
    assert lines(result.stdout)["path0"] == str(app)
    assert "loader zipimporter" in result.stdout


def test_caller_state_is_restored(project: Path) -> None:
    driver = DRIVER.replace(
        "sys.exit(runner.run())",
        textwrap.dedent(
            """
            before = (list(sys.argv), list(sys.path), sys.modules["__main__"])
            status = runner.run()
            after = (list(sys.argv), list(sys.path), sys.modules["__main__"])
            print("restored", before == after, "status", status)
            print("program's import kept", "json" in sys.modules)
            """
        ),
    )
    write(project / "prog.py", "import sys, json; sys.argv.append('x'); sys.path.insert(0, '/nowhere')")
    result = run_runner(["prog.py"], project, driver=driver)
    assert result.stdout.splitlines() == ["restored True status 0", "program's import kept True"]


# -- exit status and error reports ----------------------------------------------------------


@pytest.mark.parametrize(
    "body, status, stderr",
    [
        ("import sys; sys.exit(3)", 3, ""),
        ("import sys; sys.exit()", 0, ""),
        ("raise SystemExit(True)", 1, ""),
        ("import sys; sys.exit('fatal: msg')", 1, "fatal: msg\n"),
        ("print('done')", 0, ""),
    ],
)
def test_exit_status(tmp_path: Path, body: str, status: int, stderr: str) -> None:
    write(tmp_path / "prog.py", body)
    expected = run_python(["prog.py"], tmp_path)
    actual = run_runner(["prog.py"], tmp_path)
    assert (expected.returncode, expected.stderr) == (status, stderr)
    assert (actual.returncode, actual.stderr, actual.stdout) == (status, stderr, expected.stdout)


CRASH = """\
def inner():
    raise ValueError("boom")

def outer():
    inner()

print("before")
outer()
"""


def test_uncaught_exception_traceback_is_pythons(tmp_path: Path) -> None:
    write(tmp_path / "crash.py", CRASH)
    expected = run_python(["crash.py"], tmp_path)
    actual = run_runner(["crash.py"], tmp_path)
    assert actual.returncode == expected.returncode == 1
    assert actual.stdout == "before\n"
    assert actual.stderr == expected.stderr  # byte for byte: no runner frames
    assert actual.stderr.startswith("Traceback (most recent call last):\n")
    assert f'File "{tmp_path / "crash.py"}", line 8, in <module>' in actual.stderr
    assert ", in inner" in actual.stderr and "ValueError: boom" in actual.stderr
    assert "runner.py" not in actual.stderr and PACKAGE_DIR not in actual.stderr


def test_uncaught_exception_in_module(tmp_path: Path) -> None:
    write(tmp_path / "crash.py", CRASH)
    expected = run_python(["-m", "crash"], tmp_path)
    actual = run_runner(["-m", "crash"], tmp_path)
    assert actual.returncode == expected.returncode == 1
    # python -m also shows two "<frozen runpy>" frames; the program's frames are the same.
    program_part = expected.stderr[expected.stderr.index(f'  File "{tmp_path}') :]
    assert actual.stderr == "Traceback (most recent call last):\n" + program_part
    assert "runner.py" not in actual.stderr


def test_excepthook_set_by_the_program_is_used(tmp_path: Path) -> None:
    write(
        tmp_path / "hooked.py",
        """
        import sys
        sys.excepthook = lambda t, v, tb: print("hooked", t.__name__, tb.tb_frame.f_code.co_filename)
        raise KeyError(1)
        """,
    )
    expected = run_python(["hooked.py"], tmp_path)
    actual = run_runner(["hooked.py"], tmp_path)
    assert expected.stdout == f"hooked KeyError {tmp_path / 'hooked.py'}\n"
    assert (actual.stdout, actual.returncode) == (expected.stdout, 1)


def test_keyboard_interrupt_prints_traceback_and_returns_130(tmp_path: Path) -> None:
    write(tmp_path / "ctrlc.py", "def work():\n    raise KeyboardInterrupt\nwork()\n")
    expected = run_python(["ctrlc.py"], tmp_path)
    actual = run_runner(["ctrlc.py"], tmp_path)
    assert actual.returncode == 130
    assert expected.returncode in (130, -2)  # python kills itself with SIGINT
    assert actual.stderr == expected.stderr
    assert actual.stderr.endswith("KeyboardInterrupt\n") and "in work" in actual.stderr


def test_syntax_error_is_reported_like_python(tmp_path: Path) -> None:
    write(tmp_path / "bad.py", "print('never')\ndef broken(:\n    pass\n")
    expected = run_python(["bad.py"], tmp_path)
    actual = run_runner(["bad.py"], tmp_path)
    assert actual.returncode == expected.returncode == 1
    assert actual.stdout == ""  # nothing ran
    assert actual.stderr == expected.stderr
    assert f'File "{tmp_path / "bad.py"}", line 2' in actual.stderr
    assert "SyntaxError" in actual.stderr and "Traceback" not in actual.stderr


def test_syntax_error_in_module(tmp_path: Path) -> None:
    write(tmp_path / "bad.py", "x = = 1\n")
    actual = run_runner(["-m", "bad"], tmp_path)
    assert actual.returncode == 1
    assert actual.stderr.rstrip().endswith("SyntaxError: invalid syntax")
    assert "runner.py" not in actual.stderr


def test_parent_package_failing_is_a_crash_not_nosource(tmp_path: Path) -> None:
    write(tmp_path / "brokenpkg" / "__init__.py", "raise RuntimeError('init failed')\n")
    write(tmp_path / "brokenpkg" / "mod.py", "print('never')\n")
    expected = run_python(["-m", "brokenpkg.mod"], tmp_path)
    actual = run_runner(["-m", "brokenpkg.mod"], tmp_path)
    assert actual.returncode == expected.returncode == 1
    assert actual.stderr.endswith("RuntimeError: init failed\n")
    assert f'File "{tmp_path / "brokenpkg" / "__init__.py"}", line 1' in actual.stderr
    assert "runner.py" not in actual.stderr and actual.stdout == ""


def test_future_import_of_the_runner_does_not_leak(tmp_path: Path) -> None:
    # runner.py uses `from __future__ import annotations`; the program must not inherit it.
    write(tmp_path / "ann.py", "def f(x: int): pass\nprint(f.__annotations__)\n")
    actual = run_runner(["ann.py"], tmp_path)
    assert actual.stdout == "{'x': <class 'int'>}\n"


# -- threads: like the interpreter, wait for the program's non-daemon threads ---------------


def test_waits_for_non_daemon_threads(tmp_path: Path) -> None:
    write(
        tmp_path / "threads.py",
        """
        import sys, threading, time
        from concurrent.futures import ThreadPoolExecutor

        def late():
            time.sleep(0.5)
            sys.stdout.write("worker done\\n")  # one write: print() may interleave across threads

        threading.Thread(target=late).start()
        pool = ThreadPoolExecutor(2)  # never shut down: python still exits
        pool.submit(sys.stdout.write, "pool task\\n")
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()  # not waited for
        sys.stdout.write("main done\\n")
        """,
    )
    driver = DRIVER.replace("sys.exit(runner.run())", "status = runner.run(); print('run returned', status)")
    actual = run_runner(["threads.py"], tmp_path, driver=driver)
    assert actual.returncode == 0, actual.stderr
    out = actual.stdout.splitlines()
    assert sorted(out[:3]) == ["main done", "pool task", "worker done"]
    assert out[3:] == ["run returned 0"]


# -- NoSource --------------------------------------------------------------------------------


def test_missing_file_raises_nosource(tmp_path: Path) -> None:
    runner = ProgramRunner(str(tmp_path / "nope.py"), [], as_module=False)
    with pytest.raises(NoSource) as info:
        runner.prepare()
    assert str(info.value) == f"No file to run: {str(tmp_path / 'nope.py')!r}"


def test_unreadable_file_raises_nosource(tmp_path: Path) -> None:
    # A unix socket exists but cannot be opened, even by root (a chmod 0 file can be).
    path = tmp_path / "sock.py"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(NoSource) as info:
            ProgramRunner(str(path), [], as_module=False).prepare()
    assert str(info.value) == f"Cannot read file to run: {str(path)!r} (No such device or address)"


def test_directory_without_main_raises_nosource(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoSource, match="can't find '__main__' module in"):
        ProgramRunner(str(tmp_path / "empty"), [], as_module=False).prepare()


@pytest.mark.parametrize(
    "module, message",
    [
        ("no_such_module_xyz", "No module named no_such_module_xyz"),
        ("json.no_such_sub", "No module named json.no_such_sub"),
        ("no_such_pkg_xyz.sub", "Error while finding module specification for 'no_such_pkg_xyz.sub'"),
        ("json", "No module named json.__main__; 'json' is a package and cannot be directly executed"),
    ],
)
def test_missing_module_raises_nosource_with_pythons_message(tmp_path: Path, module: str, message: str) -> None:
    with pytest.raises(NoSource) as info:
        ProgramRunner(module, [], as_module=True).prepare()
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
    # python -m says the same thing.
    expected = run_python(["-m", module], tmp_path)
    assert expected.returncode == 1
    assert expected.stderr.strip().endswith(": " + str(info.value))


def test_prepare_runs_none_of_the_program(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    write(tmp_path / "prog.py", f"open({str(marker)!r}, 'w').close()\n")
    runner = ProgramRunner(str(tmp_path / "prog.py"), [], as_module=False)
    runner.prepare()
    assert not marker.exists()
