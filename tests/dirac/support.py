"""Helpers for tests that disturb the real DIRAC services started by services.sh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def dashboard_site(tmp_path: Path, policy: dict, *, timeout: int = 180, **settings: str):
    """A migrated dashboard in ``tmp_path`` driving the real DIRAC, with ``policy`` stored.

    Returns ``manage(*args, input=None, **extra_env)``, which runs ``manage.py`` there and returns
    the finished process; ``manage.env`` is its environment and ``manage.db`` its SQLite file.
    """
    db = tmp_path / "db.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{db}",
        "SIMDIRAC_DATABASE_URL": f"sqlite:///{tmp_path / 'sim.sqlite3'}",
        "DIRAC_BACKEND": "dirac",
        **settings,
    }

    def manage(*args, input=None, **extra):
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO, env={**env, **extra}, input=input,
            capture_output=True, text=True, timeout=timeout,
        )

    assert manage("migrate", "-v0").returncode == 0
    code = ("import json,sys; from failover.models import Policy; "
            "Policy.objects.create(name='default', **json.loads(sys.stdin.read()))")
    assert manage("shell", "-c", code, input=json.dumps(policy)).returncode == 0
    manage.env, manage.db = env, db
    return manage


@contextmanager
def stopped_service(name: str = "WorkloadManagement_JobMonitoring"):
    """Stop one DIRAC service process (by the pid services.sh recorded), start it again after."""
    root = Path(os.environ["DIRAC_TEST_ROOT"])
    pid = int((root / "run" / f"{name}.pid").read_text())
    os.kill(pid, 15)
    try:
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        yield
    finally:
        subprocess.run([str(HERE / "services.sh"), "start"], check=True, capture_output=True)
