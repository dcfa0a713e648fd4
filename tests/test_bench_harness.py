"""The benchmark harness itself (not a timed test): the warm state's change and its tables."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from benchmarks import change
from benchmarks.__main__ import lived_rows, targets14


def a_state(path) -> None:
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE simdirac_simjob (id INTEGER PRIMARY KEY, status TEXT, minor_status TEXT,
            application_status TEXT, site TEXT, job_group TEXT, age INTEGER, last_update TEXT);
        CREATE TABLE simdirac_simtask (id INTEGER PRIMARY KEY, transformation INTEGER, task INTEGER, job INTEGER,
            status TEXT, last_update TEXT);
        CREATE TABLE simdirac_simfile (id INTEGER PRIMARY KEY, transformation INTEGER, lfn TEXT, status TEXT,
            task INTEGER, error_count INTEGER);
    """)
    for job in range(1, 1001):
        status = "Running" if job % 2 else "Done"
        db.execute("INSERT INTO simdirac_simjob VALUES (?, ?, 'm', 'a', 's', '00000001', 0, '2026-01-01 00:00:00')",
                   (job, status))
        db.execute("INSERT INTO simdirac_simtask VALUES (NULL, 1, ?, ?, ?, '2026-01-01 00:00:00')", (job, job, status))
        db.execute("INSERT INTO simdirac_simfile VALUES (NULL, 1, ?, ?, ?, 0)",
                   (f"/f/{job}", "Assigned" if job % 2 else "Processed", job))
    db.commit()
    db.close()


def rows(path, sql):
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def test_the_change_ends_running_jobs_as_dirac_would_and_repeats_exactly(tmp_path):
    now = datetime(2026, 12, 2, 1, 0, 0, 500_000, tzinfo=UTC)
    first, second = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
    a_state(first)
    a_state(second)
    moved = change.apply(first, 0.05, seed=3, now=now)
    assert moved["jobs"] == 50 and moved["done"] + moved["failed"] == 50 and moved["failed"] > 0
    changed = rows(first, "SELECT id, status, minor_status, last_update FROM simdirac_simjob "
                          "WHERE last_update != '2026-01-01 00:00:00' ORDER BY id")
    assert len(changed) == 50
    # Only Running jobs end; LastUpdateTime is the whole second, UTC, as DIRAC writes it.
    assert all(job % 2 and status in ("Done", "Failed") and stamp == "2026-12-02 01:00:00"
               for job, status, _, stamp in changed)
    # Their files as the jobs leave them; the tasks are the cycle's business: untouched.
    files = dict(rows(first, "SELECT task, status FROM simdirac_simfile"))
    for job, status, minor, _ in changed:
        expected = {"Done": "Processed"}.get(status, "Unused" if minor == "Application Finished With Errors"
                                             else "Assigned")
        assert files[job] == expected
    assert moved["files_processed"] == sum(1 for _, s, _, _ in changed if s == "Done")
    assert rows(first, "SELECT COUNT(*) FROM simdirac_simtask WHERE last_update != '2026-01-01 00:00:00'") == [(0,)]
    # The other contender's copy gets the very same change.
    assert change.apply(second, 0.05, seed=3, now=now) == moved
    assert rows(second, "SELECT * FROM simdirac_simjob") == rows(first, "SELECT * FROM simdirac_simjob")


def cycle(wall, calls, writes=0, n=100):
    return {"wall": wall, "calls": calls, "transformations": n,
            "calls_by_method": {"tasks": calls - writes, "set_task_status": writes}}


def test_the_warm_tables_and_targets_come_from_the_runs():
    # Four cycles: cold, warm, the cycle that sees the warm cycle's writes, nothing changed (the last).
    ours = {"cycles": [cycle(5.0, 470, 400), cycle(0.5, 90, 80), cycle(0.4, 20), cycle(0.1, 9)], "peak_rss_mb": 100}
    agent = {"cycles": [cycle(6.0, 3029), cycle(11.0, 3066), cycle(4.0, 735), cycle(6.0, 735)], "peak_rss_mb": 112}
    doc = {"cycles": [
        {"workload": "large", "state": "warm", "latency_ms": 10.0, "transformations": 100, "ours": ours,
         "agent": agent},
        {"workload": "follows-20k", "state": "warm", "latency_ms": 10.0, "ours": {
            "cycles": [cycle(1, 1), cycle(1, 1), cycle(5, 500), cycle(0.30, 9)], "peak_rss_mb": 1}},
        {"workload": "follows-200k", "state": "warm", "latency_ms": 10.0, "ours": {
            "cycles": [cycle(1, 1), cycle(1, 1), cycle(9, 900), cycle(0.60, 10)], "peak_rss_mb": 1}},
    ]}
    table = "\n".join(lived_rows(doc["cycles"]))
    assert ("| large, 10 ms | cold (cycle 0) | warm (cycle 1, after the change) | cycle 2 (sees the warm cycle's "
            "writes) | nothing changed (cycle 3) | peak RSS MB |") in table
    assert "| ours | 5.00 s, 470 calls | 0.50 s, 90 calls | 0.40 s, 20 calls | 0.10 s, 9 calls | 100 |" in table
    assert "| agent ÷ ours | **1.2x** | **22.0x** | **10.0x** | **60.0x** | 1.12x |" in table
    assert "- ours, calls per transformation: cold 4.70 (0.70 reads + 4.00 writes); warm 0.90 (0.10 reads + " \
        "0.80 writes)" in table
    text = targets14(doc)
    assert ("warm steady cycle ≥20x faster than the agent (large, 10 ms, ours): ours 0.50 s, 90 calls; agent "
            "11.00 s, 3,066 calls: 22.0x met") in text
    assert ("nothing-changed cycle (cycle 3) ≥50x faster than the agent (large, 10 ms, ours): ours 0.10 s, 9 calls; "
            "agent 6.00 s, 735 calls: 60.0x met") in text
    assert "peak memory ≤ the agent's (large, 10 ms, ours): ours 100 MB, agent 112 MB met" in text
    assert "≤1 DIRAC call per transformation, warm (large, 10 ms, ours): 0.90 (0.10 reads + 0.80 writes) met" in text
    # The last cycles: 10 / 9 calls is 1.11x (met); 0.60 / 0.30 s is 2x (missed).
    assert ("cost follows change (10 ms, ours, nothing changed): calls 9 → 10, 1.11x (≤1.2x met), time 0.30 → "
            "0.60 s, 2.00x (≤1.5x MISSED)") in text
    # A run of three cycles (the JSON of earlier runs) still reads: its last cycle is nothing changed.
    old = {"cycles": [{**doc["cycles"][0], "ours": {**ours, "cycles": ours["cycles"][:2] + ours["cycles"][3:]},
                       "agent": {**agent, "cycles": agent["cycles"][:2] + agent["cycles"][3:]}}]}
    assert "| agent ÷ ours | **1.2x** | **22.0x** | **60.0x** | 1.12x |" in "\n".join(lived_rows(old["cycles"]))


def test_with_the_margin_waited_both_nothing_changed_cycles_are_named_and_checked():
    # Five cycles, the pause before cycle 3: cycle 3 still has the warm writes in its window
    # (back to back), cycle 4 has none (margin waited).
    ours = {"cycles": [cycle(5.0, 470, 400), cycle(0.5, 90, 80), cycle(0.4, 20), cycle(0.3, 12), cycle(0.1, 7)],
            "peak_rss_mb": 100}
    agent = {"cycles": [cycle(6.0, 3029), cycle(11.0, 3066), cycle(4.0, 735), cycle(6.0, 735), cycle(6.0, 735)],
             "peak_rss_mb": 112}
    pause = {"before_cycle": 3, "seconds": 125}

    def follows(wall_back, wall_last):
        return {"cycles": [cycle(1, 1), cycle(1, 1), cycle(5, 500), cycle(wall_back, 9), cycle(wall_last, 6)],
                "peak_rss_mb": 1}

    doc = {"cycles": [
        {"workload": "large", "state": "warm", "latency_ms": 10.0, "margin_pause": pause, "ours": ours,
         "agent": agent},
        {"workload": "follows-20k", "state": "warm", "latency_ms": 10.0, "margin_pause": pause,
         "ours": follows(0.2, 0.10)},
        {"workload": "follows-200k", "state": "warm", "latency_ms": 10.0, "margin_pause": pause,
         "ours": follows(0.5, 0.12)},
    ]}
    table = "\n".join(lived_rows(doc["cycles"]))
    assert ("| cycle 2 (sees the warm cycle's writes) | nothing changed (cycle 3, back to back) | "
            "nothing changed (cycle 4, margin waited) | peak RSS MB |") in table
    text = targets14(doc)
    assert ("nothing-changed cycle (cycle 3, back to back) ≥50x faster than the agent (large, 10 ms, ours): ours "
            "0.30 s, 12 calls; agent 6.00 s, 735 calls: 20.0x MISSED") in text
    assert ("nothing-changed cycle (cycle 4, margin waited) ≥50x faster than the agent (large, 10 ms, ours): ours "
            "0.10 s, 7 calls; agent 6.00 s, 735 calls: 60.0x met") in text
    assert ("cost follows change (10 ms, ours, nothing changed, margin waited): calls 6 → 6, 1.00x (≤1.2x met), "
            "time 0.10 → 0.12 s, 1.20x (≤1.5x met)") in text
    assert ("cost follows change (10 ms, ours, nothing changed, back to back): calls 9 → 9, 1.00x (≤1.2x met), "
            "time 0.20 → 0.50 s, 2.50x (≤1.5x MISSED)") in text
