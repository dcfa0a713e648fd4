"""The cycle engine against the simulated DIRAC: actions, the log, counters, faults, restarts."""

from __future__ import annotations

import pytest

from failover import actions, engine as engine_module
from failover.attention import blockers_of
from failover.blockers import ASSIGNED_FINAL, AT_CAP, TASKS_WITHOUT_JOB
from failover.cycle import act
from failover.engine import Engine
from failover.models import ActionLog, Cycle, ReassignCounter, TransformationState
from failover.rules import Decision
from failover.simulated.backend import SimulatedDirac
from failover.simulated.scenario import to_json
from failover.simulated.store import dump
from tests.factories import chain_scenario, load_scenario, seed_policy

pytestmark = pytest.mark.django_db(databases="__all__")

FAILED_LFNS = ["/p/a1.h5", "/p/a2.h5", "/p/k1.h5"]


def state():
    d = dump()
    return {
        "t": {t["id"]: t["status"] for t in d.transformations},
        "files": {(f["transformation"], f["lfn"]): (f["status"], f["error_count"]) for f in d.files},
        "tasks": {(t["transformation"], t["task"]): t["status"] for t in d.tasks},
    }


def counters():
    return {(c.transformation_id, c.lfn): c.count for c in ReassignCounter.objects.all()}


def run(backend=None, **kw):
    return Engine(backend or SimulatedDirac(), retries=kw.pop("retries", 0), backoff=0, **kw).run_cycle()


@pytest.fixture
def chain():
    seed_policy()
    load_scenario(chain_scenario())


def test_it_syncs_completes_and_reassigns_in_one_cycle(chain):
    result = run()
    s = state()
    assert result.errors == 0
    # 4846: all files Processed and it is the root: completed.
    assert s["t"][4846] == "Completed"
    # 4847: task statuses copied from the jobs...
    assert s["tasks"][(4847, 1)] == "Failed" and s["tasks"][(4847, 2)] == "Killed"
    assert s["tasks"][(4847, 3)] == "Done"
    # ... and since its parent completed earlier in this same cycle, its last Unused file
    # (1 < group size 50) is flushed; a flush excludes reassigning in the same cycle.
    assert s["t"][4847] == "Flush"
    assert s["files"][(4847, "/p/a1.h5")] == ("Assigned", 0)
    # 4848 waits for 4847.
    assert s["t"][4848] == "Active"
    kinds = sorted(ActionLog.objects.values_list("transformation_id", "kind", "state"))
    assert kinds == [(4846, "complete", "done"), (4847, "flush", "done"), (4847, "sync", "done")]
    assert TransformationState.objects.get(pk=4847).flush_count == 1


def test_it_reassigns_failed_files_and_counts_them(chain):
    run()  # completes 4846, flushes 4847
    # DIRAC moved on: its TransformationAgent put the last file in a task and set 4847 Active.
    data = chain_scenario()
    data["transformations"][0]["status"] = "Completed"
    data["files"] = [f for f in data["files"] if f["lfn"] != "/p/u1.h5"]
    load_scenario(data)
    run()
    s = state()
    for lfn in FAILED_LFNS:
        assert s["files"][(4847, lfn)] == ("Unused", 1)
    assert s["files"][(4847, "/p/d1.h5")] == ("Processed", 0)
    assert counters() == {(4847, lfn): 1 for lfn in FAILED_LFNS}
    action = ActionLog.objects.get(kind="reassign")
    assert action.state == "done" and sorted(action.details["moved"]) == FAILED_LFNS
    assert action.details["tasks"] == {"1": ["/p/a1.h5", "/p/a2.h5"], "2": ["/p/k1.h5"]}


def _only_4847_reassign():
    data = chain_scenario()
    # Keep 4847's Unused files at group size so no flush happens; its parent is not done.
    data["transformations"][0]["status"] = "Stopped"
    data["files"] = [f for f in data["files"] if f["lfn"] != "/p/u1.h5"]
    return data


def test_it_stops_at_max_reassign_exactly_and_survives_restarts():
    seed_policy(max_reassign=2)
    for cycle in range(4):
        # Each time, DIRAC put the files in a new task whose job failed again.
        data = _only_4847_reassign()
        for f in data["files"]:
            if f["lfn"] in FAILED_LFNS:
                f["error_count"] = cycle
        load_scenario(data)
        # A new Engine and backend each time: a restarted worker keeps nothing in memory.
        run()
    s = state()
    # Reset twice (MaxReassign = 2), not three times as the agent's off-by-one allows.
    assert counters() == {(4847, lfn): 2 for lfn in FAILED_LFNS}
    assert all(s["files"][(4847, lfn)][0] == "Assigned" for lfn in FAILED_LFNS)
    assert ActionLog.objects.filter(kind="reassign", state="done").count() == 2
    [at_cap] = [b for b in blockers_of(4847) if b.code == AT_CAP]
    assert (at_cap.count, at_cap.limit) == (3, 2)


def test_a_dirac_error_is_logged_and_the_cycle_goes_on():
    seed_policy()
    load_scenario(_only_4847_reassign())
    result = run(SimulatedDirac(faults="set_file_status:error@1"))
    action = ActionLog.objects.get(kind="reassign")
    assert action.state == "failed" and "simulated DIRAC error" in action.error
    assert counters() == {}
    assert result.outcomes[4847].state == "error"
    assert result.outcomes[4848].state == "ok"
    assert Cycle.objects.get().state == "finished"
    # Nothing was half done: the files are still Assigned, and the next cycle does it.
    assert state()["files"][(4847, "/p/a1.h5")] == ("Assigned", 0)
    run()
    assert counters() == {(4847, lfn): 1 for lfn in FAILED_LFNS}


def test_a_timeout_before_dirac_acted_changes_nothing_and_counts_nothing():
    seed_policy()
    load_scenario(_only_4847_reassign())
    run(SimulatedDirac(faults="set_file_status:timeout@1"))
    action = ActionLog.objects.get(kind="reassign")
    assert action.state == "interrupted" and "outcome unknown" in action.error
    assert counters() == {}
    run()
    assert counters() == {(4847, lfn): 1 for lfn in FAILED_LFNS}
    assert ActionLog.objects.filter(kind="reassign", state="done").count() == 1


def test_a_lost_answer_is_reconciled_and_counted_once():
    seed_policy()
    load_scenario(_only_4847_reassign())
    run(SimulatedDirac(faults="set_file_status:lost@1"))
    action = ActionLog.objects.get(kind="reassign")
    assert action.state == "done" and sorted(action.details["moved"]) == FAILED_LFNS
    assert counters() == {(4847, lfn): 1 for lfn in FAILED_LFNS}
    run()  # files are Unused now: nothing to do, nothing doubled
    assert counters() == {(4847, lfn): 1 for lfn in FAILED_LFNS}


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing catches it."""


def test_a_crash_between_dirac_and_the_log_loses_and_doubles_nothing(monkeypatch):
    seed_policy()
    load_scenario(_only_4847_reassign())

    def die(*args, **kwargs):
        raise Crash

    with monkeypatch.context() as m:
        m.setattr(act, "settle_reassign", die)
        with pytest.raises(Crash):
            run()
    # DIRAC acted, our log says pending, no counter moved yet.
    assert state()["files"][(4847, "/p/a1.h5")] == ("Unused", 1)
    assert ActionLog.objects.get(kind="reassign").state == "pending"
    assert counters() == {}
    # The dead worker's lock expires; the restarted worker reconciles before acting.
    TransformationState.objects.update(locked_by="", locked_until=None)
    run()
    action = ActionLog.objects.get(kind="reassign")
    assert action.state == "done"
    assert counters() == {(4847, lfn): 1 for lfn in FAILED_LFNS}
    assert ActionLog.objects.filter(kind="reassign").count() == 1


def test_a_crash_before_dirac_acted_is_not_counted(monkeypatch):
    seed_policy()
    load_scenario(_only_4847_reassign())
    backend = SimulatedDirac()

    def die(*args, **kwargs):
        raise Crash

    monkeypatch.setattr(backend, "set_file_status", die)
    with pytest.raises(Crash):
        run(backend)
    monkeypatch.undo()
    TransformationState.objects.update(locked_by="", locked_until=None)
    run()
    assert ActionLog.objects.get(kind="reassign", state="interrupted")
    assert ActionLog.objects.get(kind="reassign", state="done")
    assert counters() == {(4847, lfn): 1 for lfn in FAILED_LFNS}


def test_a_held_lock_skips_the_transformation():
    seed_policy()
    load_scenario(_only_4847_reassign())
    from failover import locks

    assert locks.acquire(4847, "operator-x")
    result = run()
    assert result.outcomes[4847].state == "skipped" and "operator-x" in result.outcomes[4847].message
    assert not ActionLog.objects.filter(transformation_id=4847).exists()
    assert not locks.acquire(4847, "someone-else")


def test_a_failing_batch_read_does_not_stop_the_other_transformations(settings):
    settings.FAILOVER_BATCH_SIZE = 1
    seed_policy()
    load_scenario(_only_4847_reassign())
    # Calls: transformations, file_counts, then per batch tasks...: fail the first tasks read.
    result = run(SimulatedDirac(faults="tasks:error@1"))
    states = {tid: o.state for tid, o in result.outcomes.items()}
    assert states[4847] == "error"
    assert states[4848] == "ok"


def test_reads_are_retried_with_backoff():
    seed_policy()
    load_scenario(_only_4847_reassign())
    result = run(SimulatedDirac(faults="tasks:timeout@1"), retries=2)
    assert result.errors == 0
    assert counters() == {(4847, lfn): 1 for lfn in FAILED_LFNS}


def test_a_dry_run_changes_nothing(chain):
    before = to_json(dump())
    result = Engine(SimulatedDirac(), dry_run=True).run_cycle()
    assert to_json(dump()) == before
    assert not ActionLog.objects.exists() and not Cycle.objects.exists()
    assert {d.kind for d in result.decisions} == {"sync", "complete", "flush"}


def test_a_cycle_costs_a_few_calls_whatever_the_number_of_tasks(chain):
    result = run()
    reads = sum(n for k, n in result.calls.items() if not k.startswith("set_"))
    assert reads <= 8
    # Writes: one per (transformation, new task status) and one per action.
    assert result.calls.get("set_task_status", 0) <= 3


def test_the_stored_aggregates_match_the_jobs(chain):
    result = run()
    from reports.stores import SqlAggregateStore

    snap = SqlAggregateStore().latest(4847)
    assert snap.cycle_id == result.cycle_id
    assert sorted((r.status, r.count) for r in snap.rows) == [("Done", 1), ("Failed", 1), ("Killed", 1)]


def test_topological_order_puts_parents_first():
    from failover.domain import TransformationInfo

    ts = [TransformationInfo(3, "c", "Merging", "Active", 1, 7, 2), TransformationInfo(1, "a", "M", "Active", 1, 7, -1),
          TransformationInfo(2, "b", "Merging", "Active", 1, 7, 1), TransformationInfo(9, "z", "M", "Active", 1)]
    assert [t.id for t in engine_module.topological(ts)] == [1, 9, 2, 3]


def test_propose_mode_proposes_and_approval_rechecks():
    seed_policy(mode="propose")
    load_scenario(_only_4847_reassign())
    run()
    proposal = ActionLog.objects.get(kind="reassign")
    assert proposal.state == "proposed"
    assert state()["files"][(4847, "/p/a1.h5")] == ("Assigned", 0)
    assert ActionLog.objects.filter(kind="sync", state="done").exists()  # bookkeeping is always done
    run()  # the same proposal is not made twice
    assert ActionLog.objects.filter(kind="reassign").count() == 1
    done = actions.approve_proposal(Engine(SimulatedDirac(), actor="alice", retries=0), proposal)
    assert done.state == "done" and done.actor == "alice"
    assert counters() == {(4847, lfn): 1 for lfn in FAILED_LFNS}


def test_a_stale_proposal_is_refused_with_the_reason():
    seed_policy(mode="propose")
    load_scenario(_only_4847_reassign())
    run()
    proposal = ActionLog.objects.get(kind="reassign")
    # Meanwhile someone else reset the files in DIRAC.
    SimulatedDirac().set_file_status(4847, FAILED_LFNS, "Unused")
    done = actions.approve_proposal(Engine(SimulatedDirac(), actor="alice", retries=0), proposal)
    assert done.state == "stale" and "not carried out" in done.outcome
    assert counters() == {}


def test_a_repeated_request_key_acts_once():
    from failover.errors import DuplicateRequest

    seed_policy()
    load_scenario(_only_4847_reassign())
    Engine(SimulatedDirac(), actor="alice", request_key="k1", retries=0).run_cycle([4847], ["reassign"])
    load_scenario(_only_4847_reassign())  # same state again
    result = Engine(SimulatedDirac(), actor="alice", request_key="k1", retries=0).run_cycle([4847], ["reassign"])
    assert result.outcomes[4847].state == "error" and "already carried out" in result.outcomes[4847].message
    assert ActionLog.objects.filter(kind="reassign").count() == 1
    # The engine raises DuplicateRequest when the key is taken; the cycle turns it into that outcome.
    with pytest.raises(DuplicateRequest):
        engine = Engine(SimulatedDirac(), actor="alice", request_key="k1", retries=0)
        engine._act(SimulatedDirac().transformations(ids=[4847])[0], Decision("reassign", 4847, "again"))


def test_the_reassign_action_keeps_which_job_failed_where():
    seed_policy()
    load_scenario(_only_4847_reassign())
    run()
    details = ActionLog.objects.get(kind="reassign").details
    assert details["jobs"] == {
        "1": {
            "job": 101, "status": "Failed", "site": "LCG.GRIF.fr", "minor_status": "Maximum of reschedulings reached",
        },
        "2": {"job": 102, "status": "Killed", "site": "LCG.GRIF.fr", "minor_status": "Received Kill signal"},
    }


def test_attention_names_stuck_files_and_tasks_without_job_for_two_cycles():
    seed_policy()
    data = _only_4847_reassign()
    data["files"].append({"transformation": 4847, "lfn": "/p/d2.h5", "status": "Assigned", "task": 3})
    data["tasks"].append({"transformation": 4847, "task": 4, "job": 0, "status": "Created"})
    load_scenario(data)
    run()
    first = TransformationState.objects.get(pk=4847)
    assert [(b.code, b.count, b.fix) for b in blockers_of(4847)] == [(ASSIGNED_FINAL, 1, "reassign")]
    assert first.tasks_without_job == 1
    run()
    second = TransformationState.objects.get(pk=4847)
    assert (TASKS_WITHOUT_JOB, 1) in [(b.code, b.count) for b in blockers_of(4847)]
    # Cycle 2 read the files after cycle 1's reassign: they moved. Cycle 3 sees the same again.
    assert second.unchanged_cycles == 0
    run()
    assert TransformationState.objects.get(pk=4847).unchanged_cycles == 1
