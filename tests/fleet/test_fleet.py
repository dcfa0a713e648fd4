"""Real Celery worker and beat processes on the embedded broker (and Redis when available)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time

import pytest

from tests.factories import SEED_POLICY, chain_scenario
from tests.fleet.harness import Fleet

pytestmark = pytest.mark.fleet

FAST_POLICY = {**SEED_POLICY, "polling_time": 1}


def productions(n: int, stopped_root: bool = True) -> dict:
    """``n`` copies of the chain scenario, production k using ids 10000*k + 4846.. and jobs 10000*k + 100.."""
    out = {"productions": [], "transformations": [], "files": [], "tasks": [], "jobs": []}
    for k in range(1, n + 1):
        base = chain_scenario()
        off = 10000 * k
        out["productions"].append({"id": k, "name": f"Prod{k}", "status": "Active"})
        for t in base["transformations"]:
            parent = t["parent"] if t["parent"] == -1 else t["parent"] + off
            status = "Stopped" if (stopped_root and t["parent"] == -1) else t["status"]
            out["transformations"].append({**t, "id": t["id"] + off, "production": k, "parent": parent,
                                           "status": status})
        for f in base["files"]:
            if stopped_root and f["lfn"] == "/p/u1.h5":
                continue  # no flush: let the reassign happen
            out["files"].append({**f, "transformation": f["transformation"] + off, "lfn": f"/p{k}{f['lfn']}"})
        for t in base["tasks"]:
            out["tasks"].append({**t, "transformation": t["transformation"] + off, "job": t["job"] + off})
        for j in base["jobs"]:
            out["jobs"].append({**j, "id": j["id"] + off})
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url():
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; .ci/run installs it)")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


_redis_db = iter(range(1, 10_000))


def fresh_redis(base_url: str) -> str:
    """A Redis database of its own for each fleet, emptied first: no message of an earlier test."""
    import redis

    url = f"{base_url.rsplit('/', 1)[0]}/{next(_redis_db) % 16}"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(params=["filesystem", "redis"])
def broker(request):
    if request.param == "filesystem":
        return "filesystem://"
    return fresh_redis(request.getfixturevalue("redis_url"))


@pytest.fixture
def fleet(tmp_path, broker):
    f = Fleet(tmp_path / "var", broker_url=broker)
    yield f
    f.stop()


def test_it_runs_cycles_from_beat_and_stores_aggregates(fleet):
    fleet.setup(productions(2), FAST_POLICY)
    fleet.start_worker("w1", concurrency=2)
    fleet.start_beat()
    fleet.wait_for(lambda: fleet.finished_cycles() >= 2, timeout=60, what="two finished cycles")
    state = fleet.dump()
    tasks = {(t["transformation"], t["task"]): t["status"] for t in state["tasks"]}
    assert tasks[(14847, 1)] == "Failed" and tasks[(24847, 2)] == "Killed"
    files = {(f["transformation"], f["lfn"]): f["status"] for f in state["files"]}
    assert files[(14847, "/p1/p/a1.h5")] == "Unused"
    assert fleet.counters()[(24847, "/p2/p/k1.h5")] == 1
    # Aggregates stored for every transformation read, per cycle.
    snapshots = fleet.query("select count(distinct transformation_id) from reports_snapshot")[0][0]
    assert snapshots == 4
    items = fleet.query("select state, count(*) from failover_cycleitem group by state")
    assert dict(items).get("error", 0) == 0
    status = fleet.manage("failover", "status", "--json", check=False)
    assert '"name": "beat"' in status.stdout


def test_two_workers_racing_act_once_per_transformation(fleet):
    fleet.setup(productions(4), FAST_POLICY)
    fleet.start_worker("w1", concurrency=2)
    fleet.start_worker("w2", concurrency=2)
    # Two cycles started at once: their tasks race for the same transformations.
    for _ in range(2):
        fleet.manage("failover", "start-cycle")
    fleet.wait_for(lambda: fleet.query("select count(*) from failover_cycle where state='running'")[0][0] == 0
                   and fleet.finished_cycles() == 2, timeout=60, what="both cycles to finish")
    per = fleet.query(
        "select transformation_id, kind, count(*) from failover_actionlog where state='done' "
        "group by transformation_id, kind")
    assert per, "no action was taken"
    assert all(n == 1 for _, _, n in per), per
    assert set(fleet.counters().values()) == {1}
    workers = {w for (w,) in fleet.query("select distinct worker from failover_cycleitem where worker != ''")}
    assert len(workers) == 2, workers


def _quiesce(f: Fleet, cycles: int) -> None:
    start = f.finished_cycles()
    f.wait_for(lambda: f.finished_cycles() >= start + cycles and not f.query(
        "select 1 from failover_actionlog where state='pending'"), timeout=90, what=f"{cycles} more quiet cycles")


def test_a_worker_killed_mid_transformation_changes_nothing_in_the_end(tmp_path, broker):
    scenario = productions(3)
    reference = Fleet(tmp_path / "ref", broker_url=fresh_redis(broker) if broker.startswith("redis") else broker,
                      FAILOVER_STUCK_SECONDS=10, FAILOVER_LOCK_SECONDS=10)
    disturbed = Fleet(tmp_path / "kill", broker_url=broker, SIMDIRAC_LATENCY_MS=150,
                      FAILOVER_STUCK_SECONDS=10, FAILOVER_LOCK_SECONDS=10)
    try:
        reference.setup(scenario, FAST_POLICY)
        reference.start_worker("w1")
        reference.start_beat()
        _quiesce(reference, 3)
        reference.stop()

        disturbed.setup(scenario, FAST_POLICY)
        disturbed.start_worker("w1")
        disturbed.start_beat()
        # Kill the worker while an action is in flight (written pending, DIRAC call under way).
        disturbed.wait_for(lambda: disturbed.query("select 1 from failover_actionlog where state='pending'"),
                           timeout=60, what="an action in flight")
        disturbed.kill("w1", signal.SIGKILL)
        assert disturbed.query("select count(*) from failover_actionlog where state='pending'")[0][0] >= 1
        disturbed.start_worker("w1")
        _quiesce(disturbed, 3)
        assert disturbed.dump() == reference.dump()
        assert disturbed.counters() == reference.counters()
        assert disturbed.flush_counts() == reference.flush_counts()
        done = disturbed.query("select transformation_id, kind, count(*) from failover_actionlog "
                               "where state='done' and kind!='sync' group by transformation_id, kind")
        assert all(n == 1 for *_, n in done), done
    finally:
        reference.stop()
        disturbed.stop()


def test_a_backend_timeout_is_retried_then_logged_and_the_cycle_finishes(tmp_path):
    f = Fleet(tmp_path / "var", SIMDIRAC_FAULTS="tasks:timeout@1,set_file_status:timeout%1.0", DIRAC_RETRIES=2)
    try:
        f.setup(productions(1), FAST_POLICY)
        f.start_worker("w1")
        waited = f.manage("failover", "start-cycle", "--wait", "60", check=False)
        assert waited.returncode == 1 and waited.stderr.strip().endswith(": 1 errors"), waited.stderr
        cycle_state, errors = f.query("select state, errors from failover_cycle order by id desc limit 1")[0]
        assert cycle_state == "finished"
        # The first tasks read timed out in every transformation task and was retried.
        assert "DIRAC read failed" in f.log("w1")
        # The reassign write never answered: logged with the timeout, nothing counted.
        (state, error), = f.query("select state, error from failover_actionlog where kind='reassign'")
        assert state == "interrupted" and "outcome unknown" in error
        assert f.counters() == {}
        assert errors == 1
    finally:
        f.stop()
