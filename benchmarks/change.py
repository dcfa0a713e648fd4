"""The change a warm benchmark applies between cycles, alike to both contenders' DIRAC.

About ``fraction`` of all jobs move status, as the jobs and DIRAC's agents would move them between
two cycles: Running jobs end, most of them Done (their input files become Processed, which the
job's FailoverRequest does), the others Failed. A failure that is the application's own ("Application
Finished With Errors") sets its input files Unused with one more error, as the job's last workflow
module does; the others leave them Assigned. Every moved job's LastUpdateTime becomes now (UTC, whole
seconds), as JobDB's status updates do (docs/scenario.md, "LastUpdateTime: which writes move it").
Tasks are not touched: copying job statuses into them is the cycle's work, so no task's
LastUpdateTime moves.

Deterministic for a seed: both contenders' copies of a state get the same jobs moved the same way.
Standard library only (sqlite3): it runs in the product's environment and in the agent's.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

JOBS, TASKS, FILES = "simdirac_simjob", "simdirac_simtask", "simdirac_simfile"
DONE = ("Done", "Execution Complete", "Workflow successful, end of FailoverRequest module execution.")
FAILED = (
    ("Failed", "Maximum of reschedulings reached", "Failed Input Data Resolution"),
    ("Failed", "Application Finished With Errors",
     "Operation not permitted ( 1 : cta-prod-setup-software Exited With Status 1)"),
)
FAILED_SHARE = 0.25


def apply(path: str | Path, fraction: float = 0.01, seed: int = 7, now: datetime | None = None) -> dict:
    """Move about ``fraction`` of all jobs (Running ones) to a final status; what moved, by kind."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    rng = random.Random(seed)
    db = sqlite3.connect(str(path), timeout=60)
    try:
        with db:
            total = db.execute(f"SELECT COUNT(*) FROM {JOBS}").fetchone()[0]
            running = [r[0] for r in db.execute(f"SELECT id FROM {JOBS} WHERE status = 'Running' ORDER BY id")]
            moving = sorted(rng.sample(running, min(len(running), round(total * fraction))))
            where = {job: (t, k) for t, k, job in db.execute(
                f"SELECT transformation, task, job FROM {TASKS} WHERE job IN (SELECT value FROM json_each(?))",
                ["[" + ",".join(map(str, moving)) + "]"],
            )}
            moved = {"done": 0, "failed": 0, "files_processed": 0, "files_unused": 0}
            for job in moving:
                failed = rng.random() < FAILED_SHARE
                status, minor, app = rng.choice(FAILED) if failed else DONE
                db.execute(
                    f"UPDATE {JOBS} SET status = ?, minor_status = ?, application_status = ?, last_update = ? "
                    "WHERE id = ?", (status, minor, app, stamp, job),
                )
                moved["failed" if failed else "done"] += 1
                if job not in where:
                    continue
                t, k = where[job]
                if not failed:
                    moved["files_processed"] += db.execute(
                        f"UPDATE {FILES} SET status = 'Processed' WHERE transformation = ? AND task = ? "
                        "AND status = 'Assigned'", (t, k),
                    ).rowcount
                elif minor == "Application Finished With Errors":
                    moved["files_unused"] += db.execute(
                        f"UPDATE {FILES} SET status = 'Unused', error_count = error_count + 1 "
                        "WHERE transformation = ? AND task = ? AND status = 'Assigned'", (t, k),
                    ).rowcount
            moved["jobs"] = len(moving)
            moved["of_jobs"] = total
            return moved
    finally:
        db.close()
