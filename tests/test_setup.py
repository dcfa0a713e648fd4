"""Set-up as a new user does it: one ``migrate`` sets up both databases, and a simulator command
on a database not set up says in one line what to run; ``failover status`` prints no library
warnings."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from tests.sites import manage


@pytest.fixture
def fresh(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DIRAC_BACKEND", "SIMDIRAC_FAULTS"}}
    env.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'dashboard.sqlite3'}",
        SIMDIRAC_DATABASE_URL=f"sqlite:///{tmp_path / 'simdirac.sqlite3'}",
    )
    return env, tmp_path


def tables(path) -> set[str]:
    con = sqlite3.connect(path)
    try:
        return {name for (name,) in con.execute("select name from sqlite_master where type='table'")}
    finally:
        con.close()


SCENARIO = json.dumps({"transformations": [{"id": 1, "status": "Active", "type": "MCSimulation"}]})


@pytest.mark.parametrize("args", [("dump",), ("load", "-"), ("advance",), ("generate", "--load")])
def test_a_simulator_command_on_an_unmigrated_database_says_what_to_run(fresh, args):
    env, _ = fresh
    done = manage(env, "simdirac", *args, input=SCENARIO)
    assert done.returncode == 1
    assert done.stderr.strip() == ("CommandError: the simulated DIRAC's database (simdirac) is not set up: "
                                   "the database is not migrated; run python manage.py migrate")


def test_one_migrate_sets_up_both_databases(fresh):
    env, var = fresh
    done = manage(env, "migrate", "--noinput")
    assert done.returncode == 0, done.stderr
    assert "Database default:" in done.stdout and "Database simdirac:" in done.stdout
    assert "simdirac_simfile" in tables(var / "simdirac.sqlite3")
    assert "failover_cycle" in tables(var / "dashboard.sqlite3")
    assert "failover_cycle" not in tables(var / "simdirac.sqlite3")  # the router still keeps them apart
    loaded = manage(env, "simdirac", "generate", "--load")
    assert loaded.returncode == 0 and loaded.stdout.startswith("Generated and loaded"), loaded.stderr
    again = manage(env, "migrate", "--noinput", "--check")
    assert again.returncode == 0, again.stdout + again.stderr


def test_migrate_with_a_database_named_does_only_that_one(fresh):
    env, var = fresh
    done = manage(env, "migrate", "--database", "simdirac", "--noinput")
    assert done.returncode == 0, done.stderr
    assert "simdirac_simfile" in tables(var / "simdirac.sqlite3")
    assert "failover_cycle" not in tables(var / "dashboard.sqlite3")


def test_status_prints_no_library_warnings(fresh):
    env, _ = fresh
    assert manage(env, "migrate", "--noinput").returncode == 0
    done = manage(env, "failover", "status")
    assert done.returncode == 1  # no worker, beat or cycle yet
    assert done.stderr == ""
    assert "FAIL workers    no worker heartbeat yet" in done.stdout


# -- scripts/apt-get-wait: waits for a held lock instead of failing --------------------------------
# The real dpkg lock and apt-get are exercised by hand (see README); here a lock file of our own
# and a stand-in apt-get on PATH that records its arguments, so no other apt user is disturbed.


@pytest.fixture
def apt_env(tmp_path):
    import stat

    from tests.sites import ROOT

    lock = tmp_path / "lock-frontend"
    lock.touch()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apt-get"
    fake.write_text(f"#!/bin/sh\necho \"apt-get $*\" >> {tmp_path / 'ran'}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "APT_LOCK_FILES": str(lock)}
    return env, lock, tmp_path, ROOT / "scripts" / "apt-get-wait"


def hold(path):
    import fcntl

    fd = os.open(path, os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_apt_get_wait_waits_for_a_held_lock_then_runs(apt_env):
    import subprocess
    import threading

    env, lock, tmp, script = apt_env
    fd = hold(lock)
    released = threading.Event()

    def release():
        os.close(fd)
        released.set()

    timer = threading.Timer(3.0, release)
    timer.start()
    try:
        done = subprocess.run([str(script), "install", "-y", "swig"], env=env, capture_output=True, text=True,
                              timeout=120)
    finally:
        timer.cancel()
        if not released.is_set():
            os.close(fd)
    assert done.returncode == 0, done.stderr
    assert f"waiting for the apt/dpkg lock, held by pid {os.getpid()}" in done.stderr
    assert released.is_set()  # it ran only after the lock was let go
    ran = (tmp / "ran").read_text()
    assert ran.startswith("apt-get -o DPkg::Lock::Timeout=") and ran.rstrip().endswith("install -y swig")


def test_apt_get_wait_gives_up_after_apt_lock_wait_and_says_why(apt_env):
    import subprocess

    env, lock, tmp, script = apt_env
    fd = hold(lock)
    try:
        done = subprocess.run([str(script), "update"], env={**env, "APT_LOCK_WAIT": "2"}, capture_output=True,
                              text=True, timeout=60)
    finally:
        os.close(fd)
    assert done.returncode == 100
    assert f"still held by pid {os.getpid()}" in done.stderr and "giving up" in done.stderr
    assert not (tmp / "ran").exists()
