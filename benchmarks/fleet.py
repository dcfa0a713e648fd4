"""Cycle time of a fanned-out cycle with 1, 2 and 4 worker processes.

    python -m benchmarks.fleet --transformations 1000 --jobs 100000 --latency 10 --workers 1 2 4

For each worker count: a fresh copy of the same simulated DIRAC (generated once), a migrated
dashboard with the seed policy, one Celery worker with that many processes on the embedded
broker (or --broker redis://...), then ``failover start-cycle --wait``: the figure is the cycle's
own start-to-finish time as recorded in its Cycle row, and the DIRAC calls its tasks made.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fleet.harness import Fleet  # noqa: E402

SEED_POLICY = {
    "transformation_statuses": ["Active"],
    "complete_types": ["DataReprocessing", "Merging", "Training", "ApplyModel"],
    "flush_types": ["DataReprocessing", "Merging"],
    "reassign_types": ["DataReprocessing", "Merging", "Training", "ApplyModel"],
    "max_reassign": 3,
    "polling_time": 3600,
}


def workers_answer(f: Fleet) -> bool:
    status = json.loads(f.manage("failover", "status", "--json", check=False).stdout)
    return any(c["name"] == "workers" and c["ok"] for c in status["checks"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transformations", type=int, default=1000)
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--latency", type=float, default=10.0, help="ms per simulated DIRAC call")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--state", choices=("steady", "catchup"), default="steady")
    p.add_argument("--broker", default="filesystem://")
    p.add_argument("--out", default=str(ROOT / "var" / "bench" / "fleet"))
    a = p.parse_args(argv)
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    base = Fleet(out / "base")
    print(f"generating {a.transformations} transformations / {a.jobs} jobs ({a.state}) ...", flush=True)
    base.manage("migrate", "--noinput", "-v0")
    base.manage("migrate", "--database", "simdirac", "--noinput", "-v0")
    gen = ["simdirac", "generate", "--transformations", str(a.transformations), "--jobs", str(a.jobs), "--load"]
    if a.state == "catchup":
        gen.append("--catch-up")
    base.manage(*gen, timeout=1800)
    results = []
    for n in a.workers:
        var = out / f"w{n}"
        var.mkdir(parents=True)
        shutil.copy(base.var / "simdirac.sqlite3", var / "simdirac.sqlite3")
        f = Fleet(var, broker_url=a.broker, SIMDIRAC_LATENCY_MS=a.latency, LOG_LEVEL="ERROR")
        f.manage("migrate", "--noinput", "-v0")
        code = ("import json,sys; from failover.models import Policy; "
                "Policy.objects.update_or_create(name='default', defaults=json.loads(sys.stdin.read()))")
        f.manage("shell", "-c", code, input=json.dumps(SEED_POLICY))
        try:
            f.start_worker("w1", concurrency=n)
            f.wait_for(lambda: workers_answer(f), timeout=90, what="the worker to answer")
            t0 = time.monotonic()
            f.manage("failover", "start-cycle", "--wait", "3600", timeout=3700)
            wall = time.monotonic() - t0
            (seconds, state, errors, calls), = f.query(
                "select (julianday(finished) - julianday(started)) * 86400, state, errors, calls "
                "from failover_cycle order by id desc limit 1")
            calls = json.loads(calls)
            total_calls = calls.get("transformations", 0) + calls.get("transformation tasks", 0)
            row = {"workers": n, "cycle_s": round(seconds, 2), "wall_s": round(wall, 2), "state": state,
                   "errors": errors, "calls": total_calls,
                   "calls_per_transformation": round(total_calls / a.transformations, 2)}
            results.append(row)
            print(json.dumps(row), flush=True)
        finally:
            f.stop()
    print("\n| worker processes | cycle time (s) | DIRAC calls | calls per transformation | errors |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['workers']} | {r['cycle_s']} | {r['calls']} | {r['calls_per_transformation']} | {r['errors']} |")
    (out / "results.json").write_text(json.dumps({"args": vars(a), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
