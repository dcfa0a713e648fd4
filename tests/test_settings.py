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
