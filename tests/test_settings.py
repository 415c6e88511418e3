"""Settings: one validator per value, one default each, the environment both ways, every entry point alike."""
from __future__ import annotations

import copy
import inspect
import pickle
import subprocess
import textwrap
from pathlib import Path

import pytest
from support import child_env, python

import lockwatch
from lockwatch import settings
from lockwatch.settings import (
    DEFAULT_DEADLOCK_TIMEOUT,
    DEFAULT_ON_DEADLOCK,
    DEFAULT_TOP,
    Settings,
    SettingsError,
    from_environ,
    resolve,
    to_environ,
)

# -- validators --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [("5", 5.0), (0, 0.0), (" 2.5 ", 2.5), (3, 3.0)])
def test_seconds_accepts_numbers_and_their_text(value: object, expected: float) -> None:
    assert settings.validate_seconds(value, "here") == expected


@pytest.mark.parametrize("value", ["abc", "-1", -0.5, "nan", "inf", True, None, [1]])
def test_seconds_rejects_with_the_origin_and_the_value(value: object) -> None:
    with pytest.raises(SettingsError) as info:
        settings.validate_seconds(value, "THE_ORIGIN")
    assert str(info.value) == f"THE_ORIGIN: {value!r} is not a number of seconds >= 0"


@pytest.mark.parametrize("value", ["0", 0, -1, "soon"])
def test_a_warning_threshold_must_be_positive(value: object) -> None:
    with pytest.raises(SettingsError, match=r"is not a number of seconds > 0"):
        settings.validate_optional_seconds(value, "w")
    assert settings.validate_optional_seconds("", "w") is None
    assert settings.validate_optional_seconds(None, "w") is None
    assert settings.validate_optional_seconds("0.25", "w") == 0.25


def test_policy_top_and_bool() -> None:
    assert settings.validate_policy(" Raise ", "p") == "raise"
    with pytest.raises(SettingsError, match=r"^p: 'panic' is not one of exit, raise, report$"):
        settings.validate_policy("panic", "p")
    assert settings.validate_top("7", "t") == 7
    for bad in ("-1", "1001", 2.5, True, "x"):
        with pytest.raises(SettingsError, match="is not a number of rows"):
            settings.validate_top(bad, "t")
    assert settings.validate_bool("Yes", "b") is True and settings.validate_bool("off", "b") is False
    with pytest.raises(SettingsError, match="is not a boolean"):
        settings.validate_bool("maybe", "b")


def test_a_settings_error_is_a_value_error_and_a_user_error() -> None:
    from lockwatch.errors import UserError

    assert issubclass(SettingsError, ValueError) and issubclass(SettingsError, UserError)


# -- resolve and the environment ---------------------------------------------------------------------


def test_defaults_are_defined_once() -> None:
    s = Settings()
    assert (s.deadlock_timeout, s.top, s.on_deadlock) == (DEFAULT_DEADLOCK_TIMEOUT, DEFAULT_TOP,
                                                          DEFAULT_ON_DEADLOCK["api"])
    assert s.report_paths == {} and s.text and not s.fail_on_cycle


def test_later_layers_win_and_none_means_not_given() -> None:
    low = ({"top": "3", "on_deadlock": "raise", "json": "a.json"}, lambda f: "low")
    high = ({"top": 9, "on_deadlock": None}, lambda f: "high")
    s = resolve(low, high)
    assert (s.top, s.on_deadlock, s.json_path) == (9, "raise", "a.json")


def test_resolve_names_the_layer_that_gave_the_bad_value() -> None:
    with pytest.raises(SettingsError, match=r"^high --top: 'x'"):
        resolve(({"top": "4"}, lambda f: "low"), ({"top": "x"}, lambda f: f"high --{f.key}"))


def test_environment_round_trip() -> None:
    s = Settings(json_path="/tmp/r-%p.json", dot_path="g.dot", text=False, top=12, deadlock_timeout=0.5,
                 on_deadlock="exit", warn_hold=1.5, baseline_path="b.json")
    env = to_environ(s)
    assert env["LOCKWATCH"] == "1"
    assert from_environ(env) == s
    assert from_environ(to_environ(Settings())) == Settings()


def test_every_setting_has_an_environment_variable_and_a_key() -> None:
    names = {f.name for f in settings.FIELDS}
    assert names == set(Settings.__slots__) == set(inspect.signature(Settings).parameters)
    with_env = [f for f in settings.FIELDS if f.env]
    assert all(f.env == "LOCKWATCH_" + f.key.upper() for f in with_env)
    # fail_on_cycle and --confirm: only the CLI and the pytest plugin decide a status or re-run a program
    assert {f.key for f in settings.FIELDS} - {f.key for f in with_env} == {"fail_on_cycle", "confirm", "confirm_runs",
                                                                          "confirm_pause"}


# -- the same bad value through every entry point -----------------------------------------------------

MESSAGE = "{bad!r} is not a number of seconds >= 0"  # TOML gives the number itself: -2, unquoted


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return python(*args, cwd=cwd, env=child_env(**env))


# A negative timeout, and the non-finite ones that once switched the watchdog off silently.
@pytest.mark.parametrize("BAD", ["-2", "nan", "inf"])
def test_same_bad_value_same_message_from_every_entry_point(tmp_path: Path, lockwatch_off: None,
                                                            BAD: str) -> None:
    (tmp_path / "prog.py").write_text("import threading\nprint('RAN')\n")
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    assert True\n")
    said = {}
    # the command line
    r = _run(["-m", "lockwatch", "--deadlock-timeout", BAD, "prog.py"], tmp_path)
    assert r.returncode == 2 and "RAN" not in r.stdout, r
    said["--deadlock-timeout"] = r.stderr
    # enable()
    with pytest.raises(ValueError) as info:
        lockwatch.enable(deadlock_timeout=BAD, report_at_exit=False)  # type: ignore[arg-type]
    said["enable(deadlock_timeout=...)"] = str(info.value)
    # the environment (the start-up hook warns, and the program runs unwatched)
    r = _run(["prog.py"], tmp_path, LOCKWATCH="1", LOCKWATCH_DEADLOCK_TIMEOUT=BAD)
    assert r.returncode == 0 and "RAN" in r.stdout, r
    said["LOCKWATCH_DEADLOCK_TIMEOUT"] = r.stderr
    # pytest, command line then ini
    r = _run(["-m", "pytest", "-p", "no:cacheprovider", "--lockwatch", "--lockwatch-deadlock-timeout", BAD],
             tmp_path)
    assert r.returncode == 4, r
    said["--lockwatch-deadlock-timeout"] = r.stderr
    (tmp_path / "pytest.ini").write_text(f"[pytest]\nlockwatch_deadlock_timeout = {BAD}\n")
    r = _run(["-m", "pytest", "-p", "no:cacheprovider", "--lockwatch"], tmp_path)
    assert r.returncode == 4, r
    said["ini option lockwatch_deadlock_timeout"] = r.stderr
    (tmp_path / "pytest.ini").unlink()
    # [tool.lockwatch], read by the CLI and by pytest
    (tmp_path / "pyproject.toml").write_text(f"[tool.lockwatch]\ndeadlock_timeout = {BAD}\n")
    r = _run(["-m", "lockwatch", "prog.py"], tmp_path)
    assert r.returncode == 2 and "RAN" not in r.stdout, r
    said["[tool.lockwatch] deadlock_timeout"] = r.stderr
    r = _run(["-m", "pytest", "-p", "no:cacheprovider", "--lockwatch"], tmp_path)
    assert r.returncode == 4, r
    said["[tool.lockwatch] deadlock_timeout (pytest)"] = r.stderr

    message = MESSAGE.format(bad=BAD)
    for origin, text in said.items():
        text = text.replace(f": {BAD} is", f": {BAD!r} is")
        lines = [line for line in text.splitlines() if message in line]
        assert len(lines) == 1, (origin, text)
        assert origin.replace(" (pytest)", "") + ": " + message in lines[0], (origin, lines[0])
        assert "Traceback" not in text, (origin, text)


# -- [tool.lockwatch] takes every setting ------------------------------------------------------------------


def test_pyproject_settings_reach_the_cli(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent("""
        [tool.lockwatch]
        json = "out/report.json"
        text = false
        fail_on_cycle = true
    """))
    (tmp_path / "out").mkdir()
    (tmp_path / "prog.py").write_text(textwrap.dedent("""
        import threading
        a, b = threading.Lock(), threading.Lock()
        def one():
            with a:
                with b:
                    pass
        def two():
            with b:
                with a:
                    pass
        for f in (one, two):
            t = threading.Thread(target=f); t.start(); t.join()
    """))
    r = _run(["-m", "lockwatch", "prog.py"], tmp_path)
    assert r.returncode == settings.EXIT_POTENTIAL_DEADLOCK, r
    # text = false: no report, only the line that says why the status is 86
    assert r.stderr.startswith("lockwatch: exit status 86 (--fail-on-cycle)") and r.stderr.count("\n") == 1, r
    assert (tmp_path / "out" / "report.json").exists()
    # the command line wins over the file
    r = _run(["-m", "lockwatch", "--top", "1", "prog.py"], tmp_path)
    assert r.returncode == settings.EXIT_POTENTIAL_DEADLOCK, r


def test_pyproject_unknown_setting_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.lockwatch]\ndeadlock_timout = 3\n")
    (tmp_path / "prog.py").write_text("print('RAN')\n")
    r = _run(["-m", "lockwatch", "prog.py"], tmp_path)
    assert r.returncode == 2 and r.stdout == "", r
    assert r.stderr.count("\n") == 1 and "unknown lockwatch setting(s) deadlock_timout" in r.stderr, r.stderr


def test_settings_are_read_only_values() -> None:
    s = Settings(top=12, json_path="r.json")
    with pytest.raises(AttributeError, match="read-only"):
        s.top = 3  # type: ignore[misc]
    with pytest.raises(AttributeError, match="read-only"):
        del s.text
    with pytest.raises(TypeError):
        s.replace(no_such_setting=1)
    changed = s.replace(top=3)
    assert (changed.top, changed.json_path, s.top) == (3, "r.json", 12)
    assert s == Settings(json_path="r.json", top=12) != changed
    assert hash(s) == hash(Settings(json_path="r.json", top=12))
    assert copy.copy(s) == s == pickle.loads(pickle.dumps(s))
    assert repr(Settings()).startswith("Settings(json_path=None, html_path=None, dot_path=None, text=True, ")
    with pytest.raises(TypeError):
        Settings("r.json")  # type: ignore[misc]  # keywords only
