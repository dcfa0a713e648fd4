"""Real Celery worker and beat processes on the embedded broker (and Redis when available)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from datetime import datetime, timezone

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


def test_two_workers_racing_act_once_per_transformation(tmp_path, broker):
    # One task per production (FAILOVER_FANOUT_GROUP=1): with the default packing, the four small
    # productions of a cycle are one task, and one worker could rightly take both cycles' tasks.
    fleet = Fleet(tmp_path / "var", broker_url=broker, FAILOVER_FANOUT_GROUP=1)
    try:
        _race(fleet)
    finally:
        fleet.stop()


def _race(fleet: Fleet) -> None:
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


LEASE = 4  # seconds: short, so the test sees the lease run out
TICK = 0.5
# Far beyond every wait below: a cycle that finishes was recovered by the lease, never declared stuck.
STUCK = 1200


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def test_a_worker_killed_mid_transformation_resumes_within_a_tick_plus_the_lease(tmp_path, broker):
    scenario = productions(3)
    bounds = dict(FAILOVER_LEASE_SECONDS=LEASE, FAILOVER_STUCK_SECONDS=STUCK, FAILOVER_TICK_SECONDS=TICK)
    reference = Fleet(tmp_path / "ref", broker_url=fresh_redis(broker) if broker.startswith("redis") else broker,
                      **bounds)
    disturbed = Fleet(tmp_path / "kill", broker_url=broker, SIMDIRAC_LATENCY_MS=150, **bounds)
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
                           timeout=120, what="an action in flight")
        disturbed.kill("w1", signal.SIGKILL)
        assert disturbed.query("select count(*) from failover_actionlog where state='pending'")[0][0] >= 1
        # The items the worker held (its group task's: the three productions' selected steps),
        # still queued, their leases no longer renewed.
        held = disturbed.query(
            "select id, cycle_id, lease_until from failover_cycleitem where state='queued' and attempts=1 "
            "and lease_until is not null order by id")
        assert held and len({c for _, c, _ in held}) == 1, held
        item_id, cycle_id, lease_until = held[0]
        lease_ran_out = _utc(lease_until)
        restarted = datetime.now(timezone.utc)
        disturbed.start_worker("w1")
        # The restarted worker is up when it runs beat's ticks again.
        disturbed.wait_for(lambda: _utc(disturbed.query("select at from failover_heartbeat where name='beat'")[0][0])
                           > restarted, timeout=120, what="the restarted worker to run a tick")
        (ready,) = disturbed.query("select at from failover_heartbeat where name='beat'")[0]
        disturbed.wait_for(lambda: disturbed.query("select state from failover_cycle where id=?", (cycle_id,))[0][0]
                           != "running", timeout=120, what="the interrupted cycle to finish")
        (cycle_state,), = disturbed.query("select state from failover_cycle where id=?", (cycle_id,))
        assert cycle_state == "finished"  # not declared stuck: STUCK is 20 minutes
        for other, *_ in held:
            state, attempts = disturbed.query("select state, attempts from failover_cycleitem where id=?",
                                              (other,))[0]
            assert state != "lost" and attempts >= 2, (other, state, attempts)
        state, attempts, started, requeued = disturbed.query(
            "select state, attempts, started, requeued from failover_cycleitem where id=?", (item_id,))[0]
        # The second attempt started after the first one's lease ran out (never both at once), and
        # within a tick of it once a worker was back; generous slack for a loaded machine.
        resumed = _utc(started)
        assert resumed >= lease_ran_out
        bound_from = max(lease_ran_out, _utc(ready))
        after = (resumed - lease_ran_out).total_seconds()
        print(f"{broker.split(':')[0]}: killed item resumed {after:.1f} s after its "
              f"lease ran out, {(resumed - bound_from).total_seconds():.1f} s after that or the restarted worker's "
              f"first tick; attempts {attempts}, put back by beat {requeued} time(s)")
        assert (resumed - bound_from).total_seconds() <= TICK + 15, (resumed, lease_ran_out, ready)
        if broker.startswith("redis"):
            # Redis keeps the lost message unacknowledged for its visibility timeout (an hour):
            # beat's tick put the item back.
            assert requeued >= 1
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


def test_empty_and_truncated_message_files_never_stop_the_worker(tmp_path):
    f = Fleet(tmp_path / "var", CELERY_BROKER_CORRUPT_GRACE=2)
    queue, corrupt = f.var / "broker" / "queue", f.var / "broker" / "corrupt"
    try:
        f.setup(productions(1), FAST_POLICY)
        # The bug of kombu's own transport: an empty message file (a writer between creating and
        # writing it) killed the worker with a JSONDecodeError. One of long ago, one just made.
        stale = queue / f"{int(time.time() * 1000) - 3_600_000:013d}_{uuid.uuid4()}.celery.msg"
        stale.write_bytes(b"")
        os.utime(stale, (time.time() - 3600, time.time() - 3600))
        # A real task's message, cut in half, under a name of its own.
        f.manage("failover", "start-cycle")
        real = sorted(queue.glob("*.celery.msg"))[-1]
        truncated = queue / f"{int(time.time() * 1000):013d}_{uuid.uuid4()}.celery.msg"
        data = real.read_bytes()
        truncated.write_bytes(data[: len(data) // 2])
        f.start_worker("w1", loglevel="info")
        f.wait_for(lambda: f.finished_cycles() == 1, timeout=120, what="the first cycle")
        # More bad files while the worker runs, and more tasks behind them.
        empty_now = queue / f"{int(time.time() * 1000):013d}_{uuid.uuid4()}.celery.msg"
        empty_now.write_bytes(b"")
        for _ in range(2):
            f.manage("failover", "start-cycle", "--wait", "120")
        f.wait_for(lambda: sorted(p.name for p in corrupt.iterdir())
                   == sorted([stale.name, truncated.name, empty_now.name]), timeout=60,
                   what="the three bad files to be set aside")
        assert f.procs["w1"].poll() is None, f.log("w1")
        assert f.query("select state, count(*) from failover_cycle group by state") == [("finished", 3)]
        items = f.query("select transformation_id, state, attempts from failover_cycleitem")
        assert len(items) == 3 * 2 and all(attempts == 1 for _, _, attempts in items), items  # 2 selected each
        # Every real task ran exactly once: one group task per cycle (its production's two steps).
        log = f.log("w1")
        ran = re.findall(r"Task failover\.treat_group\[([0-9a-f-]+)\] succeeded", log)
        assert len(ran) == 3 and len(set(ran)) == 3, log[-3000:]
        assert "Unrecoverable error" not in log and "JSONDecodeError" not in log
        assert log.count("set aside") == 3
        assert not list(queue.glob("*.msg")) or all(p.name.endswith(".pidbox.msg") for p in queue.glob("*.msg"))
    finally:
        f.stop()


def test_a_backend_timeout_is_retried_then_logged_and_the_cycle_finishes(tmp_path):
    f = Fleet(tmp_path / "var", SIMDIRAC_FAULTS="tasks:timeout@1,set_file_status:timeout%1.0", DIRAC_RETRIES=2)
    try:
        f.setup(productions(1), FAST_POLICY)
        f.start_worker("w1")
        waited = f.manage("failover", "start-cycle", "--wait", "60", check=False)
        assert waited.returncode == 1 and waited.stderr.strip().endswith(": 1 error"), waited.stderr
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
