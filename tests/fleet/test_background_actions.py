"""Operators' actions carried out by real Celery worker processes: the request's progress as the
result page reads it (one transformation after the other, waiting for a lock held by a cycle),
its outcome, and a worker killed in the middle of a request (another worker finishes it, acting
once per transformation)."""

from __future__ import annotations

import json

import pytest

from tests.factories import SEED_POLICY, chain_scenario
from tests.fleet.harness import Fleet

pytestmark = pytest.mark.fleet

KEY = "ab" * 16
LEASE = 4


def enqueue(fleet: Fleet, ids: list[int], kind: str = "reassign") -> None:
    """What the confirmation view does: write the request, then enqueue its task."""
    code = (
        "import sys; from django.contrib.auth import get_user_model; from failover import actions, tasks; "
        "user = get_user_model().objects.get(username='otto'); "
        f"req, created = actions.request_action({ids!r}, {kind!r}, user=user, request_key={KEY!r}); "
        "assert created; tasks.run_action_request.delay(req.pk)"
    )
    fleet.manage("shell", "-c", code)


def hold_lock(fleet: Fleet, tid: int, seconds: int) -> None:
    code = f"from failover import locks; assert locks.acquire({tid}, 'cycle-elsewhere', {seconds})"
    fleet.manage("shell", "-c", code)


def release_lock(fleet: Fleet, tid: int) -> None:
    fleet.manage("shell", "-c", f"from failover import locks; locks.release({tid}, 'cycle-elsewhere')")


def request_row(fleet: Fleet) -> dict:
    rows = fleet.query("select state, current, waiting_for, results, attempts from failover_actionrequest "
                       "where key = ?", (KEY,))
    if not rows:
        return {}
    state, current, waiting_for, results, attempts = rows[0]
    return {"state": state, "current": current, "waiting_for": waiting_for, "results": json.loads(results),
            "attempts": attempts}


def files_of_4847(fleet: Fleet) -> dict:
    return {f["lfn"]: f["status"] for f in fleet.dump()["files"] if f["transformation"] == 4847}


@pytest.fixture
def fleet(tmp_path):
    f = Fleet(tmp_path / "var", FAILOVER_PASSWORD="fleet-operator-pass", FAILOVER_LEASE_SECONDS=LEASE,
              FAILOVER_ACTION_LOCK_WAIT=60, CELERY_BROKER_RESTORE_INTERVAL=1)
    f.setup(chain_scenario(), SEED_POLICY)
    f.manage("users", "add", "otto", "--role", "operator")
    yield f
    f.stop()


def test_a_worker_carries_out_the_request_and_its_progress_is_readable_meanwhile(fleet):
    # A cycle is treating 4847 until the lock is released below (a fixed short hold could run out
    # before a slow worker even starts, and the waiting would never be seen).
    hold_lock(fleet, 4847, 120)
    fleet.start_worker("w1")
    enqueue(fleet, [4846, 4847])
    # 4846 is treated (nothing to reassign), then the worker waits for 4847's lock, and says so.
    fleet.wait_for(lambda: request_row(fleet).get("waiting_for") == "cycle-elsewhere", timeout=60,
                   what="the request to wait for 4847's lock")
    row = request_row(fleet)
    assert row["state"] == "running" and row["current"] == 4847
    assert [(r["transformation"], r["state"]) for r in row["results"]] == [(4846, "nothing")]
    assert set(files_of_4847(fleet).values()) >= {"Assigned"}
    # The cycle lets go: the worker acts, and the request ends with the outcome of each.
    release_lock(fleet, 4847)
    fleet.wait_for(lambda: request_row(fleet).get("state") == "finished", timeout=60, what="the request to finish")
    row = request_row(fleet)
    assert [(r["transformation"], r["state"]) for r in row["results"]] == [(4846, "nothing"), (4847, "done")]
    assert row["results"][1]["message"] == "3 files reset to Unused" and row["waiting_for"] == ""
    files = files_of_4847(fleet)
    assert [files[lfn] for lfn in ("/p/a1.h5", "/p/a2.h5", "/p/k1.h5")] == ["Unused"] * 3
    audit = fleet.query("select actor, state, request_key, outcome from failover_actionlog where kind='reassign'")
    assert audit == [("otto", "done", f"{KEY}:4847", "3 files reset to Unused")]


def test_a_worker_killed_in_the_middle_of_a_request_leaves_it_to_another(fleet):
    hold_lock(fleet, 4847, 120)
    fleet.start_worker("w1")
    enqueue(fleet, [4846, 4847])
    fleet.wait_for(lambda: request_row(fleet).get("waiting_for") == "cycle-elsewhere", timeout=60,
                   what="the request to be in the middle of its work")
    fleet.kill("w1")  # SIGKILL: the message is not acknowledged, the request's lease stops being renewed
    release_lock(fleet, 4847)
    fleet.start_worker("w2")
    fleet.wait_for(lambda: request_row(fleet).get("state") == "finished", timeout=120,
                   what="another worker to finish the request")
    row = request_row(fleet)
    assert row["attempts"] == 2
    assert [(r["transformation"], r["state"]) for r in row["results"]] == [(4846, "nothing"), (4847, "done")]
    # Acted once: one audited action, each counter moved once.
    assert fleet.query("select count(*) from failover_actionlog where kind='reassign' and state='done'") == [(1,)]
    assert set(fleet.counters().values()) == {1}


# -- approving proposals: the same background path ------------------------------------------------

APPROVAL_KEY = "cd" * 16


def approval_row(fleet: Fleet) -> dict:
    rows = fleet.query("select state, waiting_for, results, proposal_ids from failover_actionrequest where key = ?",
                       (APPROVAL_KEY,))
    if not rows:
        return {}
    state, waiting_for, results, proposal_ids = rows[0]
    return {"state": state, "waiting_for": waiting_for, "results": json.loads(results),
            "proposal_ids": json.loads(proposal_ids)}


@pytest.fixture
def proposing_fleet(tmp_path):
    f = Fleet(tmp_path / "var", FAILOVER_PASSWORD="fleet-operator-pass", FAILOVER_LEASE_SECONDS=LEASE,
              FAILOVER_ACTION_LOCK_WAIT=60, CELERY_BROKER_RESTORE_INTERVAL=1)
    f.setup(chain_scenario(), {**SEED_POLICY, "mode": "propose"})
    f.manage("users", "add", "otto", "--role", "operator")
    f.manage("failover", "cycle")  # propose mode: complete 4846, reassign 4847's failed files
    yield f
    f.stop()


def test_a_worker_approves_the_proposals_waiting_for_a_lock_held_by_a_cycle(proposing_fleet):
    fleet = proposing_fleet
    proposed = dict(fleet.query("select transformation_id, id from failover_actionlog where state = 'proposed'"))
    assert sorted(proposed) == [4846, 4847]
    hold_lock(fleet, 4847, 50)  # a cycle treats 4847 until it releases the lock below
    fleet.start_worker("w1")
    code = (
        "from django.contrib.auth import get_user_model; from failover import actions, tasks; "
        "from failover.models import ActionLog; "
        "user = get_user_model().objects.get(username='otto'); "
        "waiting = list(ActionLog.objects.filter(state='proposed').order_by('id')); "
        f"req, created = actions.request_approval(waiting, user=user, request_key={APPROVAL_KEY!r}); "
        "assert created; tasks.run_action_request.delay(req.pk)"
    )
    fleet.manage("shell", "-c", code)
    fleet.wait_for(lambda: approval_row(fleet).get("waiting_for") == "cycle-elsewhere", timeout=60,
                   what="the approval to wait for 4847's lock")
    assert set(files_of_4847(fleet).values()) >= {"Assigned"}
    fleet.manage("shell", "-c", "from failover import locks; locks.release(4847, 'cycle-elsewhere')")
    fleet.wait_for(lambda: approval_row(fleet).get("state") == "finished", timeout=60, what="the approval to finish")
    row = approval_row(fleet)
    assert row["proposal_ids"] == sorted(proposed.values())
    outcomes = {r["transformation"]: (r["proposal"], r["state"], r["message"]) for r in row["results"]}
    assert outcomes[4847] == (proposed[4847], "done", "3 files reset to Unused")
    assert outcomes[4846][:2] == (proposed[4846], "done")
    files = files_of_4847(fleet)
    assert [files[lfn] for lfn in ("/p/a1.h5", "/p/a2.h5", "/p/k1.h5")] == ["Unused"] * 3
    audit = fleet.query("select transformation_id, actor, state, request_key from failover_actionlog "
                        "where kind in ('reassign', 'complete') order by transformation_id")
    assert audit == [(4846, "otto", "done", f"{APPROVAL_KEY}:p{proposed[4846]}"),
                     (4847, "otto", "done", f"{APPROVAL_KEY}:p{proposed[4847]}")]
