"""Real processes for fleet tests: migrate, load a scenario, start Celery workers and beat.

Everything lives in a temporary VAR_DIR with SQLite files, so the worker processes and the test
share one database exactly as a deployment does, and nothing leaks between tests.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))


class Fleet:
    def __init__(self, var_dir: Path, broker_url: str = "filesystem://", **env):
        self.var = Path(var_dir)
        self.var.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "dashboard.settings",
            "VAR_DIR": str(self.var),
            "DATABASE_URL": f"sqlite:///{self.var / 'dashboard.sqlite3'}",
            "SIMDIRAC_DATABASE_URL": f"sqlite:///{self.var / 'simdirac.sqlite3'}",
            "CELERY_BROKER_URL": broker_url,
            "FAILOVER_TICK_SECONDS": "0.5",
            "DIRAC_RETRY_BACKOFF": "0.05",
            "LOG_LEVEL": "WARNING",
            **{k: str(v) for k, v in env.items()},
        }
        self.procs: dict[str, subprocess.Popen] = {}

    # -- commands -----------------------------------------------------------------------------
    def manage(self, *args: str, input: str | None = None, check: bool = True,
               timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, input=input,
            capture_output=True, text=True, timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def setup(self, scenario: dict, policy: dict) -> None:
        self.manage("migrate", "--noinput", "-v0")
        self.manage("migrate", "--database", "simdirac", "--noinput", "-v0")
        self.load(scenario)
        code = (
            "import json,sys; from failover.models import Policy; "
            "Policy.objects.update_or_create(name='default', defaults=json.loads(sys.stdin.read()))"
        )
        self.manage("shell", "-c", code, input=json.dumps(policy))

    def load(self, scenario: dict) -> None:
        self.manage("simdirac", "load", "-", input=json.dumps(scenario))

    def dump(self) -> dict:
        return json.loads(self.manage("simdirac", "dump").stdout)

    # -- processes ----------------------------------------------------------------------------
    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.var / f"{name}.log", "w")
        proc = subprocess.Popen(
            [CELERY, "-A", "dashboard", *args], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def start_worker(self, name: str = "w1", concurrency: int = 1, loglevel: str = "warning") -> subprocess.Popen:
        return self._start(
            name,
            ["worker", "-n", f"{name}@%h", "-c", str(concurrency), "-l", loglevel, "--without-gossip",
             "--without-mingle"],
        )

    def start_beat(self) -> subprocess.Popen:
        return self._start("beat", ["beat", "-l", "warning", "-s", str(self.var / "beat-schedule")])

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=60)

    def stop(self) -> None:
        for name in list(self.procs):
            proc = self.procs[name]
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.procs.pop(name, None)

    def log(self, name: str) -> str:
        return (self.var / f"{name}.log").read_text(errors="replace")

    # -- reading our database -----------------------------------------------------------------
    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        con = sqlite3.connect(self.var / "dashboard.sqlite3", timeout=30)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def wait_for(self, predicate, timeout: float = 60, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except sqlite3.OperationalError:
                pass  # tables not there yet, or busy
            time.sleep(0.2)
        names = [n for n in ("w1", "w2", "beat") if (self.var / f"{n}.log").exists()]
        logs = "\n".join(f"--- {n}\n{self.log(n)[-3000:]}" for n in names)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{logs}")

    def counters(self) -> dict:
        return {(t, lfn): n for t, lfn, n in self.query(
            "select transformation_id, lfn, count from failover_reassigncounter")}

    def flush_counts(self) -> dict:
        return dict(self.query("select transformation_id, flush_count from failover_transformationstate"))

    def finished_cycles(self) -> int:
        return self.query("select count(*) from failover_cycle where state != 'running'")[0][0]
