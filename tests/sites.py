"""A migrated installation in a temporary folder, for commands run as users run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    var = tmp_path_factory.mktemp("var")
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DIRAC_BACKEND", "SIMDIRAC_FAULTS"}}
    env.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        VAR_DIR=str(var),
        DATABASE_URL=f"sqlite:///{var / 'dashboard.sqlite3'}",
        SIMDIRAC_DATABASE_URL=f"sqlite:///{var / 'simdirac.sqlite3'}",
    )
    for args in (["migrate", "--noinput"], ["migrate", "--database", "simdirac", "--noinput"]):
        done = manage(env, *args)
        assert done.returncode == 0, done.stderr
    return env, var


def manage(env, *args, input=None):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, input=input,
    )
