"""Soak test of ``make run``: /health/ polled every second, the worker SIGKILLed now and then.

    .venv/bin/python -m benchmarks.soak_run --minutes 30 --kill-at 10 20 --bind 127.0.0.1:8711

It starts ``python -m dashboard.run`` in a fresh VAR_DIR (``--var``, default a temporary folder),
polls ``http://BIND/health/`` once a second on loopback (each request in its own thread with a
10 s timeout, at most 8 in flight), and at each ``--kill-at`` minute sends SIGKILL to the worker's
main process (found as the child of ``dashboard.run`` running ``celery ... worker``). It measures,
for each kill, how long until the supervisor had a new worker process, until a worker ran beat's
tick again (the "beat" heartbeat), and until a worker finished a transformation task taken after
the kill (only when a cycle had something to treat; ``DEMO_FILES`` larger than the default keeps
the demo productions moving for the whole run). At the end it
stops ``make run`` with SIGINT (as Ctrl-C does) and prints one JSON summary: the status codes
seen, how many polls got no answer at all (the web server down), latencies, and the kills.
Every poll is also written to ``health.csv`` in VAR_DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def children(pid: int) -> list[tuple[int, str]]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                out.append((int(entry.name), (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()))
        except (OSError, ValueError, IndexError):
            continue
    return out


def worker_pid(run_pid: int) -> int | None:
    for pid, cmd in children(run_pid):
        if "celery" in cmd and " worker" in cmd:
            return pid
    return None


class Poller(threading.Thread):
    def __init__(self, url: str, csv_path: Path, stop: threading.Event):
        super().__init__(daemon=True)
        self.url, self.stop = url, stop
        self.csv = open(csv_path, "w")
        self.csv.write("unix_time,status,seconds\n")
        self.results: list[tuple[float, int, float]] = []
        self.lock = threading.Lock()
        self.in_flight = threading.Semaphore(8)
        self.skipped = 0

    def one(self, at: float) -> None:
        started = time.monotonic()
        try:
            with urllib.request.urlopen(self.url, timeout=10) as response:
                response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code  # an answer: 503 says a check failed, the server is up
        except (urllib.error.URLError, OSError):
            status = 0  # no answer: the web server is down
        took = time.monotonic() - started
        with self.lock:
            self.results.append((at, status, took))
            self.csv.write(f"{at:.3f},{status},{took:.4f}\n")
            self.csv.flush()
        self.in_flight.release()

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.stop.is_set():
            if self.in_flight.acquire(blocking=False):
                threading.Thread(target=self.one, args=(time.time(),), daemon=True).start()
            else:
                self.skipped += 1
            next_at += 1.0
            self.stop.wait(max(0.0, next_at - time.monotonic()))


def since(db: Path, when: datetime) -> tuple[bool, bool]:
    """Whether, after ``when``, a worker ran beat's tick (it writes the "beat" heartbeat) and
    finished a transformation task taken after ``when``."""
    con = sqlite3.connect(db, timeout=30)
    try:
        stamp = when.strftime("%Y-%m-%d %H:%M:%S.%f")
        tick = con.execute(
            "select count(*) from failover_heartbeat where name='beat' and at > ?", (stamp,)
        ).fetchone()[0]
        item = con.execute("select count(*) from failover_cycleitem where finished > ? and started > ?",
                           (stamp, stamp)).fetchone()[0]
        return bool(tick), bool(item)
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--kill-at", type=float, nargs="*", default=[10, 20], help="minutes after the start")
    parser.add_argument("--bind", default="127.0.0.1:8711")
    parser.add_argument("--var", default="", help="VAR_DIR for make run (default: a new temporary folder)")
    args = parser.parse_args(argv)
    var = Path(args.var or tempfile.mkdtemp(prefix="soak-var-"))
    var.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "VAR_DIR": str(var), "RUN_BIND": args.bind}
    log = open(var / "make-run.log", "w")
    run = subprocess.Popen([sys.executable, "-m", "dashboard.run"], cwd=ROOT, env=env, stdout=log,
                           stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://{args.bind}/health/"
    # Set-up (migrate, collectstatic, demo data) comes first; wait for the first answer.
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=10).read()
            break
        except urllib.error.HTTPError:
            break
        except (urllib.error.URLError, OSError):
            if run.poll() is not None:
                raise SystemExit(f"make run exited with {run.returncode}; see {var / 'make-run.log'}")
            time.sleep(0.5)
    else:
        raise SystemExit("make run's web server never answered")
    stop = threading.Event()
    poller = Poller(url, var / "health.csv", stop)
    t0 = time.monotonic()
    poller.start()
    kills = []
    try:
        for minute in sorted(args.kill_at):
            pause = t0 + minute * 60 - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            old = worker_pid(run.pid)
            if old is None:
                kills.append({"minute": minute, "error": "no worker process found"})
                continue
            killed_at = datetime.now(timezone.utc)
            k0 = time.monotonic()
            os.kill(old, signal.SIGKILL)
            new = None
            while time.monotonic() - k0 < 300:
                new = worker_pid(run.pid)
                if new is not None and new != old:
                    break
                time.sleep(0.05)
            restarted = time.monotonic() - k0
            tick_after = item_after = None
            # A transformation task comes only when a cycle has something to treat: wait for it
            # at most five minutes.
            while time.monotonic() - k0 < 300 and (tick_after is None or item_after is None):
                tick, item = since(var / "dashboard.sqlite3", killed_at)
                if tick and tick_after is None:
                    tick_after = time.monotonic() - k0
                if item and item_after is None:
                    item_after = time.monotonic() - k0
                time.sleep(0.1)
            kills.append({"minute": minute, "old_pid": old, "new_pid": new,
                          "new_process_after_s": round(restarted, 2),
                          "tick_run_again_after_s": None if tick_after is None else round(tick_after, 2),
                          "transformation_task_done_again_after_s":
                              None if item_after is None else round(item_after, 2)})
        pause = t0 + args.minutes * 60 - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    finally:
        stop.set()
        poller.join(timeout=15)
        time.sleep(11)  # let the last requests time out or answer
        run.send_signal(signal.SIGINT)  # as Ctrl-C
        try:
            run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
    with poller.lock:
        results = list(poller.results)
    codes: dict[str, int] = {}
    for _, status, _ in results:
        codes[str(status)] = codes.get(str(status), 0) + 1
    answered = sorted(took for _, status, took in results if status)
    no_answer = [at for at, status, _ in results if status == 0]
    summary = {
        "minutes": args.minutes,
        "polls": len(results),
        "skipped_polls_8_in_flight": poller.skipped,
        "status_codes": codes,
        "no_answer": len(no_answer),
        "latency_s": {
            "median": round(statistics.median(answered), 3) if answered else None,
            "p95": round(answered[int(0.95 * (len(answered) - 1))], 3) if answered else None,
            "max": round(answered[-1], 3) if answered else None,
        },
        "kills": kills,
        "supervisor_lines": [line.strip() for line in (var / "make-run.log").read_text(errors="replace").splitlines()
                             if line.startswith("[make run]") and ("again" in line or "stopped" in line)],
        "var_dir": str(var),
    }
    print(json.dumps(summary, indent=2))
    return 0 if not no_answer else 1


if __name__ == "__main__":
    sys.exit(main())
