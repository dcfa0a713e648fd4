"""Settings from the environment (dashboard/env.py): a bad value stops start-up naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from dashboard.env import env_bool, env_choice, env_database, env_float, env_int, env_list, env_str

ROOT = Path(__file__).resolve().parent.parent
VAR = "FD_TEST_SETTING"


@pytest.fixture
def setenv(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)

    def set_(value):
        if value is None:
            monkeypatch.delenv(VAR, raising=False)
        else:
            monkeypatch.setenv(VAR, value)

    return set_


# -- booleans -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        (None, "default"),
        ("1", True), ("true", True), ("True", True), ("YES", True), ("on", True), (" yes ", True),
        ("0", False), ("false", False), ("FALSE", False), ("no", False), ("Off", False), ("", False),
    ],
)  # fmt: skip
def test_it_parses_booleans(setenv, raw, expected):
    setenv(raw)
    if expected == "default":
        assert env_bool(VAR, True) is True
        assert env_bool(VAR, False) is False
    else:
        assert env_bool(VAR, not expected) is expected


@pytest.mark.parametrize("raw", ["maybe", "flase", "2", "y", "n", "truee", "-1"])
def test_it_rejects_a_bad_boolean(setenv, raw):
    setenv(raw)
    with pytest.raises(ImproperlyConfigured) as info:
        env_bool(VAR)
    assert str(info.value).startswith(f"{VAR}={raw!r} is not a boolean")


# -- numbers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [(None, 7), ("", 7), ("  ", 7), ("12", 12), (" 12 ", 12), ("0", 0), ("-3", -3)],
)
def test_it_parses_integers(setenv, raw, expected):
    setenv(raw)
    assert env_int(VAR, 7) == expected


@pytest.mark.parametrize("raw", ["abc", "1.5", "1e3", "12s", "0x10"])
def test_it_rejects_a_bad_integer(setenv, raw):
    setenv(raw)
    with pytest.raises(ImproperlyConfigured) as info:
        env_int(VAR, 7)
    assert str(info.value) == f"{VAR}={raw!r} is not an integer"


@pytest.mark.parametrize("raw, minimum", [("9", 10), ("-1", 0), ("0", 1)])
def test_it_rejects_an_integer_below_its_minimum(setenv, raw, minimum):
    setenv(raw)
    with pytest.raises(ImproperlyConfigured) as info:
        env_int(VAR, 900, minimum=minimum)
    assert str(info.value) == f"{VAR}={raw!r} must be at least {minimum}"


def test_it_accepts_an_integer_at_its_minimum(setenv):
    setenv("10")
    assert env_int(VAR, 900, minimum=10) == 10


@pytest.mark.parametrize("raw, expected", [(None, 0.5), ("2", 2.0), ("0.25", 0.25), ("1e-2", 0.01)])
def test_it_parses_floats(setenv, raw, expected):
    setenv(raw)
    assert env_float(VAR, 0.5, minimum=0) == expected


@pytest.mark.parametrize(
    "raw, message",
    [("fast", "is not a number"), ("-0.1", "must be at least 0"), ("1,5", "is not a number")],
)
def test_it_rejects_a_bad_float(setenv, raw, message):
    setenv(raw)
    with pytest.raises(ImproperlyConfigured) as info:
        env_float(VAR, 0.5, minimum=0)
    assert str(info.value) == f"{VAR}={raw!r} {message}"


# -- lists, strings, choices -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [(None, ["a"]), ("", []), ("x", ["x"]), (" x , y,,z ", ["x", "y", "z"]), (",", [])],
)
def test_it_parses_lists(setenv, raw, expected):
    setenv(raw)
    assert env_list(VAR, ["a"]) == expected


def test_it_reads_strings_as_they_are(setenv):
    assert env_str(VAR, "dflt") == "dflt"
    setenv(" spaced ")
    assert env_str(VAR, "dflt") == " spaced "


@pytest.mark.parametrize("raw, expected", [(None, "simulated"), ("dirac", "dirac"), (" simulated ", "simulated")])
def test_it_parses_choices(setenv, raw, expected):
    setenv(raw)
    assert env_choice(VAR, "simulated", ["simulated", "dirac"]) == expected


@pytest.mark.parametrize("raw", ["real", "DIRAC", "", "simulated,dirac"])
def test_it_rejects_a_bad_choice(setenv, raw):
    setenv(raw)
    with pytest.raises(ImproperlyConfigured) as info:
        env_choice(VAR, "simulated", ["simulated", "dirac"])
    assert str(info.value) == f"{VAR}={raw.strip()!r} is not one of: simulated, dirac"


# -- database URLs ------------------------------------------------------------------------------------


def test_it_parses_database_urls(setenv, tmp_path):
    db = tmp_path / "db.sqlite3"
    assert env_database(VAR, f"sqlite:///{db}")["NAME"] == str(db)
    setenv(f"sqlite:///{db}")
    config = env_database(VAR, "sqlite:///elsewhere")
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == str(db)
    setenv("postgres://user:pw@db.example.org:5433/failover")
    config = env_database(VAR, "sqlite:///elsewhere")
    assert (config["ENGINE"], config["HOST"], config["PORT"], config["NAME"], config["USER"]) == (
        "django.db.backends.postgresql",
        "db.example.org",
        5433,
        "failover",
        "user",
    )


@pytest.mark.parametrize("raw", ["not a url", "foo://bar/baz", "", "postgres://h:notaport/db"])
def test_it_rejects_a_bad_database_url(setenv, raw):
    setenv(raw)
    with pytest.raises(ImproperlyConfigured) as info:
        env_database(VAR, "sqlite:///x")
    assert str(info.value).startswith(f"{VAR}={raw!r} ")


# -- start-up as users run it -------------------------------------------------------------------------


def run_check(tmp_path, **overrides):
    env = {k: v for k, v in os.environ.items()
           if k not in {"DEBUG", "DIRAC_BACKEND", "FAILOVER_LOCK_SECONDS", "FAILOVER_LEASE_SECONDS",
                        "FAILOVER_STUCK_SECONDS"}}
    env.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'dashboard.sqlite3'}",
        SIMDIRAC_DATABASE_URL=f"sqlite:///{tmp_path / 'simdirac.sqlite3'}",
    )
    env.update(overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "name, value",
    [
        ("DEBUG", "maybe"),
        ("DIRAC_BACKEND", "real"),
        ("FAILOVER_LOCK_SECONDS", "5"),
        ("FAILOVER_LEASE_SECONDS", "1800"),  # not shorter than FAILOVER_STUCK_SECONDS (1800)
        ("DIRAC_RETRIES", "two"),
        ("DATABASE_URL", "nonsense"),
    ],
)
def test_it_stops_start_up_naming_the_variable(tmp_path, name, value):
    done = run_check(tmp_path, **{name: value})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"Configuration error: {name}=")


def test_it_starts_with_good_settings(tmp_path):
    done = run_check(tmp_path, DEBUG="yes", DIRAC_BACKEND="simulated")
    assert done.returncode == 0, done.stderr


# -- numbers that are not numbers, folders that cannot be, levels that do not exist ----------------


@pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "1_0", "\u0661\u0662", "0x1p3", "²"])
def test_it_rejects_what_float_takes_but_is_no_setting(setenv, raw):
    setenv(raw)
    with pytest.raises(ImproperlyConfigured) as info:
        env_float(VAR, 0.5, minimum=0)
    assert str(info.value) == f"{VAR}={raw!r} is not a number"


@pytest.mark.parametrize("raw", ["\u0661\u0662", "1_000", "²", "+-1", "nan"])
def test_it_rejects_what_int_takes_but_is_no_setting(setenv, raw):
    setenv(raw)
    with pytest.raises(ImproperlyConfigured) as info:
        env_int(VAR, 7)
    assert str(info.value) == f"{VAR}={raw!r} is not an integer"


def test_it_rejects_a_number_above_its_maximum(setenv):
    setenv("101")
    with pytest.raises(ImproperlyConfigured, match=r"must be at most 100$"):
        env_int(VAR, 7, maximum=100)
    setenv("100")
    assert env_int(VAR, 7, maximum=100) == 100
    setenv("1e300")
    with pytest.raises(ImproperlyConfigured, match=r"must be at most 3600$"):
        env_float(VAR, 1.0, maximum=3600)


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("SIMDIRAC_LATENCY_MS", "nan", "is not a number"),
        ("SIMDIRAC_LATENCY_MS", "inf", "is not a number"),
        ("DIRAC_RETRY_BACKOFF", "nan", "is not a number"),
        ("FAILOVER_TICK_SECONDS", "nan", "is not a number"),
        ("FAILOVER_TICK_SECONDS", "1e400", "is not a number"),
        ("FAILOVER_TICK_SECONDS", "1e30", "must be at most"),
        ("FAILOVER_STUCK_SECONDS", "99999999999999999999", "must be at most"),
        ("FAILOVER_KEEP_DAYS", "\u0669\u0660", "is not an integer"),
        ("DIRAC_RETRIES", "1000", "must be at most 20"),
        ("DIRAC_TIMEOUT", "5", "is below DIRAC's floor: its clients raise any timeout below 120 s"),
        ("DIRAC_TIMEOUT", "119.9", "is below DIRAC's floor"),
        ("DIRAC_CIRCUIT_FAILURES", "-1", "must be at least 0"),
        ("LOG_LEVEL", "LOUD", "is not a log level (use one of: DEBUG, INFO, WARNING, ERROR, CRITICAL)"),
        ("VAR_DIR", "/proc/nope", "is not a writable folder"),
        ("VAR_DIR", "/dev/null/var", "is not a writable folder"),
    ],
)
def test_each_bad_value_is_one_line_and_exit_1(tmp_path, name, value, message):
    done = run_check(tmp_path, **{name: value})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"Configuration error: {name}="), lines
    assert message in lines[0]


@pytest.mark.parametrize("level", ["info", "Warning", " DEBUG "])
def test_a_log_level_is_read_in_any_case(tmp_path, level):
    done = run_check(tmp_path, LOG_LEVEL=level)
    assert done.returncode == 0, done.stderr


def test_dirac_timeout_at_the_floor_is_accepted(tmp_path):
    assert run_check(tmp_path, DIRAC_TIMEOUT="120").returncode == 0


def test_a_read_only_var_dir_is_one_line(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    # root ignores permissions; a read-only bind is not at hand, so a file where a folder should be.
    (ro / "var").write_text("")
    done = run_check(tmp_path, VAR_DIR=str(ro / "var"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"Configuration error: VAR_DIR={str(ro / 'var')!r} is not a writable folder: File exists"]


# -- the database: unreachable, in a missing folder, not migrated ------------------------------------


def run_command(tmp_path, *args, **overrides):
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DIRAC_BACKEND", "SIMDIRAC_FAULTS"}}
    env.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'dashboard.sqlite3'}",
        SIMDIRAC_DATABASE_URL=f"sqlite:///{tmp_path / 'simdirac.sqlite3'}",
    )
    env.update(overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90
    )


COMMANDS = [
    ("failover", "cycle"),
    ("failover", "cycle", "--json"),
    ("failover", "policy"),
    ("failover", "import-config", "examples/seed-agent.cfg"),
    ("report", "4847"),
    ("simdirac", "dump"),
    ("simdirac", "advance"),
    ("users", "add", "bob", "--role", "viewer"),
    ("migrate", "--noinput"),
]


def database_cases(tmp_path):
    return {
        "unreachable": ({"DATABASE_URL": "postgres://failover:s3cret@127.0.0.1:9/failover",
                         "SIMDIRAC_DATABASE_URL": "postgres://failover:s3cret@127.0.0.1:9/sim"},
                        "127.0.0.1"),
        "missing folder": ({"DATABASE_URL": f"sqlite:///{tmp_path / 'no' / 'such' / 'db.sqlite3'}",
                            "SIMDIRAC_DATABASE_URL": f"sqlite:///{tmp_path / 'no' / 'such' / 'sim.sqlite3'}"},
                           "unable to open database file"),
        "not migrated": ({}, "the database is not migrated; run python manage.py migrate"),
    }


@pytest.mark.parametrize("case", ["unreachable", "missing folder", "not migrated"])
@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_a_database_problem_is_one_line_and_exit_1(tmp_path, case, command):
    overrides, message = database_cases(tmp_path)[case]
    if case == "not migrated" and command[0] == "migrate":
        pytest.skip("migrate is the cure")
    done = run_command(tmp_path, *command, FAILOVER_PASSWORD="pw-for-bob-1234", **overrides)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(("Database error: ", "CommandError: ")), lines
    assert message in lines[0]
    assert "s3cret" not in done.stderr
