"""A real DIRAC service stopped in the middle of a ``failover cycle --json``: exit status 1, pure
JSON on stdout, no traceback, the circuit breaker's quick stop, and a next cycle that settles
everything. Also: the parent links cached across processes, and DIRAC_TIMEOUT's floor."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.dirac.support import dashboard_site, stopped_service
from tests.factories import SEED_POLICY, chain_scenario

pytestmark = [
    pytest.mark.dirac,
    pytest.mark.skipif(
        os.environ.get("DIRAC_TEST_SERVICES") != "1",
        reason="real DIRAC services not started: run tests/dirac/services.sh start",
    ),
]

REPO = Path(__file__).resolve().parents[2]
N = 12  # transformations, each read, synced and reassigned on its own (FAILOVER_BATCH_SIZE=1)
FAILED_FILES = 2  # per transformation


def outage_scenario() -> dict:
    """N Training transformations outside any production: each has a task whose job failed
    (two Assigned files to reassign, a task status to copy) and a task whose job is done."""
    transformations, files, tasks, jobs = [], [], [], []
    for i in range(1, N + 1):
        tid = 100 + i
        transformations.append({"id": tid, "name": f"outage_{i:02d}", "type": "Training", "status": "Active",
                                "group_size": 5})
        files += [{"transformation": tid, "lfn": f"/outage/{i}/a{k}.h5", "status": "Assigned", "task": 1}
                  for k in range(FAILED_FILES)]
        files.append({"transformation": tid, "lfn": f"/outage/{i}/d.h5", "status": "Processed", "task": 2})
        tasks += [{"transformation": tid, "task": 1, "job": 1000 + 2 * i, "status": "Submitted"},
                  {"transformation": tid, "task": 2, "job": 1001 + 2 * i, "status": "Done"}]
        jobs += [{"id": 1000 + 2 * i, "status": "Failed", "minor_status": "Application Finished With Errors",
                  "site": "LCG.GRIF.fr"},
                 {"id": 1001 + 2 * i, "status": "Done", "minor_status": "Execution Complete", "site": "LCG.CNAF.it"}]
    return {"productions": [], "transformations": transformations, "files": files, "tasks": tasks, "jobs": jobs}


@pytest.fixture
def site(tmp_path):
    """A migrated dashboard in a temporary folder, driving the real DIRAC, seed policy stored."""
    return dashboard_site(tmp_path, SEED_POLICY, timeout=600, DIRAC_RETRIES="1", DIRAC_RETRY_BACKOFF="0.1",
                          DIRAC_CIRCUIT_FAILURES="3", FAILOVER_BATCH_SIZE="1")


def dirac_files(tids) -> dict:
    from failover.backends.dirac import DiracAdapter

    return {(f.transformation, f.lfn): (f.status, f.error_count) for f in DiracAdapter().files(tids)}


def query(db: Path, sql: str) -> list:
    with sqlite3.connect(db, timeout=60) as conn:
        return conn.execute(sql).fetchall()


def assert_clean(result_stdout: str, result_stderr: str) -> dict:
    assert "Traceback" not in result_stdout + result_stderr, result_stderr[-3000:]
    return json.loads(result_stdout)  # stdout is the JSON and nothing else


def test_a_service_stopped_mid_cycle(site):
    from tests.dirac.load_scenario import load

    loaded = load(outage_scenario())
    tids = [loaded.tid(100 + i) for i in range(1, N + 1)]
    gate = sqlite3.connect(site.db, timeout=60, isolation_level=None)
    cycle = subprocess.Popen(
        [sys.executable, "manage.py", "failover", "cycle", "--json"], cwd=REPO, env=site.env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # Once the first action is settled, take our database's write lock: the cycle waits at
        # its next write, the service is stopped, and the cycle goes on against a DIRAC that
        # went away while it was working.
        deadline = time.monotonic() + 300
        while not gate.execute("SELECT COUNT(*) FROM failover_actionlog WHERE state='done'").fetchone()[0]:
            assert cycle.poll() is None, cycle.communicate()
            assert time.monotonic() < deadline, "the cycle never acted"
            time.sleep(0.005)
        gate.execute("BEGIN IMMEDIATE")
        running = gate.execute("SELECT state FROM failover_cycle").fetchone()[0]
        acted = gate.execute("SELECT COUNT(*) FROM failover_actionlog WHERE state='done'").fetchone()[0]
        with stopped_service("Transformation_TransformationManager"):
            gate.execute("ROLLBACK")
            released = time.monotonic()
            out, err = cycle.communicate(timeout=600)
            took = time.monotonic() - released
            assert running == "running" and acted >= 1
            assert cycle.returncode == 1, err[-3000:]
            data = assert_clean(out, err)
            states = [t["state"] for t in data["transformations"]]
            unreachable = [t for t in data["transformations"] if t["message"] == "DIRAC unreachable"]
            # The cycle acted before the stop (the gate opened after a settled action); then a few
            # calls went unanswered, the circuit opened and the rest was not tried.
            assert len(states) == N and states.count("ok") + states.count("error") + len(unreachable) == N
            assert "error" in states
            assert len(unreachable) >= 3, states
            assert all(t["state"] == "skipped" for t in unreachable)
            assert data["errors"] == states.count("error") >= 1
            assert data["summary"] in err and "DIRAC unreachable" in data["summary"]
            # DIRAC's own log lines went to stderr, one line each, none to stdout.
            assert "DIRAC" in err and not out.lstrip().startswith("20")
            print(f"\nafter the stop the cycle took {took:.1f} s: {states.count('ok')} ok, "
                  f"{states.count('error')} errors, {len(unreachable)} not tried; {data['summary']}")
    finally:
        if cycle.poll() is None:
            cycle.kill()
            cycle.communicate()
        gate.close()

    # The next cycle finds DIRAC back: everything settles, each failed file reset exactly once.
    again = site("failover", "cycle", "--json")
    data = assert_clean(again.stdout, again.stderr)
    assert again.returncode == 0, again.stderr[-3000:]
    assert data["errors"] == 0 and all(t["state"] == "ok" for t in data["transformations"])
    assert query(site.db, "SELECT COUNT(*) FROM failover_actionlog WHERE state='pending'") == [(0,)]
    files = dirac_files(tids)
    failed = {k: v for k, v in files.items() if not k[1].endswith("/d.h5")}
    assert len(failed) == N * FAILED_FILES
    assert set(failed.values()) == {("Unused", 1)}, failed
    assert query(site.db, "SELECT COUNT(*), MIN(count), MAX(count) FROM failover_reassigncounter") == [
        (N * FAILED_FILES, 1, 1)]


def test_parent_links_are_read_once_across_processes(site):
    from tests.dirac.load_scenario import load

    load(chain_scenario())
    first = site("failover", "cycle", "--json", "--dry-run")
    assert first.returncode == 0, first.stderr[-3000:]
    calls = json.loads(first.stdout)["calls"]
    assert calls["getProductions"] == 1 and calls.get("getProductionTransformations") == 1
    # The parent of each of the three steps, and no second round for a parent read later.
    assert calls["get_parent_transformation"] == 3
    second = site("failover", "cycle", "--json", "--dry-run")
    assert second.returncode == 0, second.stderr[-3000:]
    calls2 = json.loads(second.stdout)["calls"]
    assert not {"getProductions", "getProductionTransformations", "get_parent_transformation"} & set(calls2)
    parent_calls = {"getProductions", "getProductionTransformations", "get_parent_transformation"}
    assert sum(v for k, v in calls.items() if k in parent_calls) == 5
    # The tasks and jobs: the first cycle read them in full, batch by batch; the second reads what
    # changed since, once for the whole selection (FailoverReader.read_deltas, failover/mirror.py):
    # one getTransformationTasks with newer=, JobMonitoring's getJobs by JobGroup, then the states
    # and sites of those jobs only.
    delta_calls = {"getTransformationTasks", "getJobs", "getJobsStates", "getJobsSites"}
    assert calls["getTransformationTasks"] == 3 and "getJobs" not in calls
    assert calls2["getTransformationTasks"] == 1 and calls2["getJobs"] == 1
    assert calls2.get("getJobsStates", 0) <= 1 and calls2.get("getJobsStates") == calls2.get("getJobsSites")
    # Everything else is read as the first cycle read it.
    assert {k: v for k, v in calls2.items() if k not in delta_calls} == {
        k: v for k, v in calls.items() if k not in parent_calls | delta_calls}
    assert json.loads(second.stdout)["transformations"] == json.loads(first.stdout)["transformations"]
    assert len(query(site.db, "SELECT * FROM failover_parentlink WHERE production_id IS NOT NULL")) == 3


def test_a_timeout_below_diracs_floor_is_refused(site):
    result = site("failover", "cycle", DIRAC_TIMEOUT="5")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Configuration error: DIRAC_TIMEOUT=5 is below DIRAC's floor: its clients raise any timeout below "
        "120 s to 120 s, so use 120 or more"]
