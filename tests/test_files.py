"""Writing report files: no symlink followed, nothing half-written or left behind, devices and pipes
written into (never replaced), and one line with a non-zero status from every entry point."""
from __future__ import annotations

import errno
import os
import stat
import sys
import threading
from pathlib import Path

import pytest
from support import PACKAGE_DIR, PROJECT_ROOT, child_env, lockwatch, python, write

from lockwatch import files
from lockwatch.files import ReportWriteError, write_atomic

pytestmark = pytest.mark.timeout(300)

REPORT = PROJECT_ROOT / "tests" / "fixtures" / "report_golden" / "report.json"


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- write_atomic ------------------------------------------------------------------------------------


def test_a_symlink_planted_at_the_old_temporary_name_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    target = tmp_path / "out" / "report.json"
    target.parent.mkdir()
    planted = Path(f"{target}.{os.getpid()}.tmp")  # where lockwatch used to write
    planted.symlink_to(victim)
    write_atomic(str(target), "the report\n")
    assert victim.read_text() == "precious\n"
    assert planted.is_symlink() and os.readlink(planted) == str(victim)
    assert target.read_text() == "the report\n" and not target.is_symlink()
    assert listing(target.parent) == sorted(["report.json", planted.name])  # no temporary left


def test_a_failing_write_leaves_no_temporary_file_and_the_old_report(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.html"
    target.write_text("the old report\n")
    real_write = os.write
    calls = []

    def disk_full(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:10]))  # a partial write, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(ReportWriteError) as info:
        write_atomic(str(target), "x" * 100_000)
    assert str(info.value) == f"cannot write the report to {target}: {os.strerror(errno.ENOSPC)}"
    assert info.value.errno == errno.ENOSPC
    assert len(calls) == 2
    assert target.read_text() == "the old report\n"
    assert listing(tmp_path) == ["report.html"]


def test_a_new_report_is_readable_like_any_new_file_and_an_old_one_keeps_its_mode(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_atomic(str(tmp_path / "new.json"), "{}\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o640  # 0666 less the umask
    kept = tmp_path / "kept.json"
    kept.write_text("old")
    kept.chmod(0o604)
    write_atomic(str(kept), "new")
    assert kept.read_text() == "new" and stat.S_IMODE(kept.stat().st_mode) == 0o604


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_pipe_or_a_device_is_written_into_never_replaced(tmp_path: Path) -> None:
    # As root, replacing /dev/null (or /dev/stdout) by a regular file breaks the whole machine.
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_atomic(str(fifo), "through the pipe\n")
    reader.join(30)
    assert got == [b"through the pipe\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert listing(tmp_path) == ["pipe"]


@pytest.mark.skipif(os.name != "posix", reason="the candidates are tempfile's POSIX ones")
def test_the_childrens_folder_is_private_in_tempfiles_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """files.private_folder makes what tempfile.mkdtemp would: a new folder only its user can
    open, named prefix + something unpredictable, in $TMPDIR (or the next candidate that takes a
    folder); remove_folder removes it with what is in it, links not followed."""
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path / "no-such-folder"))
    monkeypatch.setenv("TEMP", str(tmp_path))
    made = [files.private_folder("lw-test-") for _ in range(3)]
    assert len(set(made)) == 3
    for path in made:
        assert os.path.dirname(path) == str(tmp_path) and os.path.basename(path).startswith("lw-test-")
        assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0
    tempfile.tempdir = None  # (tempfile caches its choice)
    try:
        assert os.path.dirname(tempfile.mkdtemp(dir=None)) == str(tmp_path)  # tempfile agrees
    finally:
        tempfile.tempdir = None
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "file").write_text("kept")
    os.symlink(keep, os.path.join(made[0], "link"))
    (Path(made[0]) / "child-1.json").write_text("{}")
    (Path(made[0]) / "sub").mkdir()
    (Path(made[0]) / "sub" / "x").write_text("x")
    files.remove_folder(made[0])
    files.remove_folder(made[0])  # gone already: nothing raised
    assert not os.path.exists(made[0]) and (keep / "file").read_text() == "kept"


def test_a_directory_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ReportWriteError, match=r"^cannot write the report to .*: Is a directory$"):
        write_atomic(str(tmp_path), "x")


def test_every_format_is_tried_before_the_first_error_is_raised(tmp_path: Path) -> None:
    from support import load_report_fixture

    report = load_report_fixture().shop_report()
    paths = {"json": str(tmp_path / "gone" / "r.json"), "dot": str(tmp_path / "r.dot")}
    with pytest.raises(ReportWriteError, match="r.json: No such file or directory"):
        files.write_report_files(report, paths)
    assert (tmp_path / "r.dot").read_text().startswith("//")


# -- every entry point: one line, a non-zero status --------------------------------------------------

PROGRAM = """
    import shutil, sys, threading
    {enable}
    a, b = threading.Lock(), threading.Lock()
    with a:
        with b:
            pass
    shutil.rmtree(sys.argv[1])  # the report's folder is gone when the report is written
    print("program done")
"""


def one_error_line(stderr: str, path: Path) -> None:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert lines == [f"lockwatch: cannot write the report to {path}: No such file or directory"], stderr


def test_cli_run(tmp_path: Path) -> None:
    prog = write(tmp_path / "prog.py", PROGRAM.format(enable=""))
    gone = tmp_path / "gone"
    gone.mkdir()
    proc = lockwatch("-q", "--json", str(gone / "r.json"), str(prog), str(gone), cwd=tmp_path,
                     env=child_env(tmp_path / "tmp"))
    assert proc.returncode == 2
    assert proc.stdout == "program done\n"
    one_error_line(proc.stderr, gone / "r.json")


def test_api_at_exit(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    prog = write(tmp_path / "prog.py", PROGRAM.format(
        enable=f"import lockwatch; lockwatch.enable(json={str(gone / 'r.json')!r}, text=False)"))
    proc = python(str(prog), str(gone), cwd=tmp_path)
    assert proc.returncode == 120  # CPython's status for "could not flush at exit": not 0
    assert proc.stdout == "program done\n"
    one_error_line(proc.stderr, gone / "r.json")


def test_api_at_exit_keeps_the_status_of_a_failed_program(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    prog = write(tmp_path / "prog.py", PROGRAM.format(
        enable=f"import lockwatch; lockwatch.enable(json={str(gone / 'r.json')!r}, text=False)")
        + "    raise SystemError('the program failed')\n")
    proc = python(str(prog), str(gone), cwd=tmp_path)
    assert proc.returncode == 1
    assert "SystemError: the program failed" in proc.stderr
    assert f"lockwatch: cannot write the report to {gone / 'r.json'}: No such file or directory" in proc.stderr
    assert PACKAGE_DIR not in proc.stderr  # no traceback of lockwatch's


def test_startup_hook_at_exit(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    prog = write(tmp_path / "prog.py", PROGRAM.format(enable=""))
    proc = python(str(prog), str(gone), cwd=tmp_path,
                  env=child_env(LOCKWATCH="1", LOCKWATCH_JSON=str(gone / "r.json"), LOCKWATCH_TEXT="0"))
    assert proc.returncode == 120
    assert proc.stdout == "program done\n"
    one_error_line(proc.stderr, gone / "r.json")


def test_pytest_plugin(pytester: pytest.Pytester) -> None:
    gone = pytester.path / "gone"
    gone.mkdir()
    pytester.makepyfile(test_gone=f"""
        import shutil, threading
        def test_removes_the_report_folder():
            with threading.Lock():
                pass
            shutil.rmtree({str(gone)!r})
    """)
    result = pytester.runpytest_subprocess("--lockwatch", "--lockwatch-json", str(gone / "r.json"),
                                           "-p", "no:randomly", timeout=120)
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    assert "INTERNALERROR" not in out and "Traceback" not in out
    result.assert_outcomes(passed=1)
    assert out.count(f"lockwatch: cannot write the report to {gone / 'r.json'}: No such file or directory") == 1


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_report_command_on_a_full_disk(tmp_path: Path) -> None:
    """A real write failure half-way (the file size limit, as a full disk): one line, status 2,
    the old output intact and no temporary file left."""
    out = tmp_path / "out"
    out.mkdir()
    target = out / "page.html"
    target.write_text("the old page\n")
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
            "from lockwatch.cli import main\n"
            f"sys.exit(main(['report', {str(REPORT)!r}, '-f', 'html', '-o', {str(target)!r}]))\n")
    proc = python("-c", code, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"lockwatch report: error: cannot write the report to {target}: File too large\n"
    assert target.read_text() == "the old page\n"
    assert listing(out) == ["page.html"]
