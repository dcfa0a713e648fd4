"""The agent's rules (failover/rules.py), one table per rule and condition.

Reference: the agent's steps and the weaknesses the rules fix (failover/rules.py, "(fixes 5.N)";
README, "Deliberate differences from the agent"). Everything here is pure data: no DIRAC, no database, except the
one test of how the engine keys reassign counters.
"""

from __future__ import annotations

import pytest

from failover import blockers, rules
from failover.blockers import AT_CAP, FLUSH_LIMIT, Blocker
from failover.domain import FileCounts, FileInfo, JobInfo, TaskInfo, TransformationInfo
from failover.rules import (
    COMPLETE,
    FLUSH_ACTION,
    REASSIGN,
    SYNC,
    Decision,
    ParentView,
    RulesPolicy,
    apply_task_updates,
    decide_complete,
    decide_flush,
    decide_reassign,
    needs_assigned_files,
    parent_of,
    parent_view,
    plan_transformation,
    task_updates,
)

# The seed's CS section (examples/seed-agent.cfg; the test below imports it).
SEED_TYPES = frozenset({"DataReprocessing", "Merging", "Training", "ApplyModel"})
SEED = RulesPolicy(
    complete_types=SEED_TYPES,
    flush_types=frozenset({"DataReprocessing", "Merging"}),
    reassign_types=SEED_TYPES,
    report_types=frozenset(),
    max_reassign=3,
    max_flush=2,  # absent from the seed: the agent's default
)

TID = 4848
PARENT = 4847


def tr(type="Merging", status="Active", group_size=50, parent=PARENT, id=TID, production=7):
    return TransformationInfo(id, f"t{id}", type, status, group_size, production, parent)


def task(n, job, status, t=TID):
    return TaskInfo(t, n, job, status)


def job(id, status, minor="Unknown", app="Unknown", site="LCG.GRIF.fr"):
    return JobInfo(id, status, minor, app, site)


def jobs(*items):
    return {j.id: j for j in items}


def fi(lfn, status, task_id, t=TID, error_count=0):
    return FileInfo(t, lfn, status, task_id, error_count)


def counts(**by_status):
    # "Processed_inherited" in kwargs stands for "Processed-inherited".
    return FileCounts({k.replace("_", "-"): v for k, v in by_status.items()})


def pv(status="Active", type="Merging", processed=False, id=PARENT):
    return ParentView(id, type, status, processed)


# -- the seed's configuration -------------------------------------------------------------------


def test_the_seed_policy_here_is_the_one_imported_from_the_seeds_configuration():
    """SEED, used by these tests, is what importing the seed's own CS section makes of it."""
    from pathlib import Path

    from failover.config_import import parse_path
    from failover.models import Policy

    imported = parse_path(Path(__file__).resolve().parent.parent / "examples" / "seed-agent.cfg")
    assert Policy(**imported.values).as_rules_policy() == SEED
    # A policy with the agent's defaults (the model's) plans as the rules' defaults do.
    assert Policy(name="default").as_rules_policy() == RulesPolicy()


# -- 1. task_updates ----------------------------------------------------------------------------

TASK_UPDATE_CASES = [
    # id, tasks, jobs, expected
    ("job differs", [task(1, 11, "Submitted")], jobs(job(11, "Running")), {"Running": [1]}),
    ("job same", [task(1, 11, "Running")], jobs(job(11, "Running")), {}),
    ("job 0 ignored", [task(1, 0, "Created")], {}, {}),
    # Even if something keyed 0 came back from the Job DB, a task without a job has nothing to copy.
    ("job 0 ignored even if 0 is a key", [task(1, 0, "Created")], jobs(job(0, "Failed")), {}),
    ("missing job of a running task", [task(1, 11, "Running")], {}, {"Failed": [1]}),
    ("missing job of a submitted task", [task(1, 11, "Submitted")], {}, {"Failed": [1]}),
    ("missing job of a stalled task", [task(1, 11, "Stalled")], {}, {"Failed": [1]}),
    ("missing job, task already Done", [task(1, 11, "Done")], {}, {}),
    ("missing job, task already Completed", [task(1, 11, "Completed")], {}, {}),
    ("missing job, task already Failed", [task(1, 11, "Failed")], {}, {}),
    ("missing job, task already Killed", [task(1, 11, "Killed")], {}, {}),
    ("final task whose job moved on", [task(1, 11, "Failed")], jobs(job(11, "Received")), {"Received": [1]}),
    ("unknown job status copied verbatim", [task(1, 11, "Submitted")], jobs(job(11, "Weird")), {"Weird": [1]}),
    (
        "grouped by status, ids sorted",
        [
            task(7, 17, "Submitted"),
            task(3, 13, "Running"),
            task(5, 15, "Submitted"),
            task(2, 12, "Done"),
            task(9, 19, "Waiting"),
            task(4, 0, "Created"),
            task(8, 18, "Running"),
        ],
        jobs(job(17, "Failed"), job(13, "Done"), job(15, "Done"), job(12, "Done"), job(19, "Killed")),
        {"Done": [3, 5], "Failed": [7, 8], "Killed": [9]},
    ),
]


@pytest.mark.parametrize(
    "tasks, job_map, expected", [c[1:] for c in TASK_UPDATE_CASES], ids=[c[0] for c in TASK_UPDATE_CASES]
)
def test_it_copies_job_statuses_into_tasks(tasks, job_map, expected):
    result = task_updates(tasks, job_map)
    assert result == expected
    # One call per status: the statuses come out in a stable (sorted) order too.
    assert list(result) == sorted(result)


def test_it_applies_task_updates_without_touching_the_input():
    tasks = [task(1, 11, "Submitted"), task(2, 12, "Running"), task(3, 0, "Created")]
    synced = apply_task_updates(tasks, {"Failed": [1], "Done": [2]})
    assert [t.status for t in synced] == ["Failed", "Done", "Created"]
    assert [(t.transformation, t.task, t.job) for t in synced] == [(TID, 1, 11), (TID, 2, 12), (TID, 3, 0)]
    assert [t.status for t in tasks] == ["Submitted", "Running", "Created"]


# -- 2. decide_complete -------------------------------------------------------------------------

PROCESSED = counts(Processed=10)

COMPLETE_CASES = [
    # id, transformation, counts, parent view, policy, completes?, blocker
    ("type not in Complete", tr(type="Reconstruction"), PROCESSED, None, SEED, False, None),
    ("MCSimulation never", tr(type="MCSimulation"), PROCESSED, None,
     RulesPolicy(complete_types=frozenset({"MCSimulation"})), False, None),
    ("not processed", tr(), counts(Processed=9, Assigned=1), None, SEED, False, None),
    ("not processed: Unused left", tr(), counts(Processed=9, Unused=1), None, SEED, False, None),
    ("Total 0 never", tr(), counts(), None, SEED, False, None),
    ("Total 0: only inherited files", tr(), counts(Processed_inherited=4), None, SEED, False, None),
    # As in the agent, a MaxReset or Problematic file counts in Total and keeps it from completing;
    # unlike the agent, it says so when nothing else is left to move.
    ("MaxReset file counts in Total", tr(), counts(Processed=9, MaxReset=1), None, SEED, False,
     "cannot complete: 1 MaxReset (not Processed; a person must decide)"),
    ("MaxReset with work still running: no blocker yet", tr(), counts(Processed=8, MaxReset=1, Assigned=1),
     None, SEED, False, None),
    ("already Completed", tr(status="Completed"), PROCESSED, None, SEED, False, None),
    ("processed, production root", tr(parent=-1), PROCESSED, None, SEED, True, None),
    ("processed, no production", tr(parent=None, production=None), PROCESSED, None, SEED, True, None),
    ("parent processed", tr(), PROCESSED, pv(processed=True), SEED, True, None),
    ("parent MCSimulation", tr(), PROCESSED, pv(type="MCSimulation"), SEED, True, None),
    ("parent Completed", tr(), PROCESSED, pv(status="Completed"), SEED, True, None),
    ("parent Archived", tr(), PROCESSED, pv(status="Archived"), SEED, True, None),
    ("parent Cleaned", tr(), PROCESSED, pv(status="Cleaned"), SEED, True, None),
    ("parent Deleted", tr(), PROCESSED, pv(status="Deleted"), SEED, True, None),
    ("parent Active, not processed", tr(), PROCESSED, pv(), SEED, False,
     "all files Processed; waiting for 4847 to complete"),
    ("parent Flush, not processed", tr(), PROCESSED, pv(status="Flush"), SEED, False,
     "all files Processed; waiting for 4847 to complete"),
    ("parent Stopped, not processed", tr(), PROCESSED, pv(status="Stopped"), SEED, False,
     "all files Processed; waiting for 4847 to complete"),
    ("inherited statuses excluded from Total", tr(),
     counts(Processed=10, Unused_inherited=3, Processed_inherited=2, Assigned_inherited=1), pv(processed=True),
     SEED, True, None),
    ("each seed type completes: Training", tr(type="Training"), PROCESSED, None, SEED, True, None),
    ("each seed type completes: ApplyModel", tr(type="ApplyModel"), PROCESSED, None, SEED, True, None),
    ("each seed type completes: DataReprocessing", tr(type="DataReprocessing", parent=-1), PROCESSED, None,
     SEED, True, None),
]


@pytest.mark.parametrize(
    "t, file_counts, parent, policy, completes, blocker",
    [c[1:] for c in COMPLETE_CASES],
    ids=[c[0] for c in COMPLETE_CASES],
)
def test_it_decides_completion(t, file_counts, parent, policy, completes, blocker):
    decision, got_blocker = decide_complete(t, file_counts, parent, policy)
    assert (got_blocker.text if got_blocker else None) == blocker
    if not completes:
        assert decision is None
        return
    assert decision.kind == COMPLETE
    assert decision.transformation == t.id
    assert decision.status == "Completed"
    # Compare-and-set: DIRAC must still show the status we decided on.
    assert decision.expected == t.status


def test_it_explains_completion():
    decision, _ = decide_complete(tr(parent=-1), counts(Processed=12, Processed_inherited=3), None, SEED)
    assert decision.reason == "all 12 files Processed and no parent step to wait for"
    decision, _ = decide_complete(tr(), PROCESSED, pv(status="Archived"), SEED)
    assert decision.reason == "all 10 files Processed and parent 4847 is done"


def test_it_completes_a_flushed_transformation_with_its_status_as_expected():
    decision, _ = decide_complete(tr(status="Flush"), PROCESSED, None, SEED)
    assert (decision.status, decision.expected) == ("Completed", "Flush")


@pytest.mark.parametrize(
    "by_status, total, processed",
    [
        ({}, 0, False),
        ({"Processed": 3}, 3, True),
        ({"Processed": 3, "Processed-inherited": 5, "Unused-inherited": 1}, 3, True),
        ({"Processed": 3, "Unused": 1}, 4, False),
        ({"Processed": 3, "MaxReset": 1, "Problematic": 1, "Removed": 1}, 6, False),
        ({"Unused-inherited": 2}, 0, False),
    ],
)
def test_it_counts_files_as_dirac_does(by_status, total, processed):
    c = FileCounts(by_status)
    assert c.total == total
    assert c.processed is processed
    assert c.get("Nothing") == 0


# -- 3. decide_flush ----------------------------------------------------------------------------

FINAL_TASKS = [task(1, 11, "Done"), task(2, 12, "Failed"), task(3, 13, "Killed"), task(4, 14, "Completed")]
ONE_RUNNING = [*FINAL_TASKS, task(5, 15, "Running")]
U10 = counts(Unused=10, Processed=100)
U60 = counts(Unused=60, Processed=100)
U50 = counts(Unused=50)
WAITING = "10 Unused files; waiting for 4847 to complete before flushing"

FLUSH_CASES = [
    # id, transformation, counts, tasks, parent, flush_count, reason (None: no flush), blocker
    ("type not in Flush", tr(type="Training"), U10, [], None, 0, None, None),
    ("type not in Flush: ApplyModel", tr(type="ApplyModel"), U10, [], None, 0, None, None),
    ("status Flush", tr(status="Flush"), U10, [], None, 0, None, None),
    ("status Stopped", tr(status="Stopped"), U10, [], None, 0, None, None),
    ("status Completed", tr(status="Completed"), U10, [], None, 0, None, None),
    ("status New", tr(status="New"), U10, [], None, 0, None, None),
    ("Unused 0", tr(), counts(Processed=10, Assigned=5), FINAL_TASKS, None, 0, None, None),
    ("Unused 0, no files", tr(), counts(), [], None, 0, None, None),
    ("Unused < group size", tr(), U10, [], None, 0, "10 Unused files, fewer than the group size 50", None),
    ("Unused < group size, tasks running", tr(), U10, ONE_RUNNING, None, 0,
     "10 Unused files, fewer than the group size 50", None),
    ("Unused >= group size, all tasks final", tr(), U60, FINAL_TASKS, None, 0,
     "60 Unused files and all 4 tasks are final", None),
    ("Unused == group size, all tasks final", tr(), U50, FINAL_TASKS, None, 0,
     "50 Unused files and all 4 tasks are final", None),
    ("Unused >= group size, a task not final", tr(), U60, ONE_RUNNING, None, 0, None, None),
    ("Unused >= group size, a task Submitted", tr(), U60, [*FINAL_TASKS, task(9, 19, "Submitted")], None, 0,
     None, None),
    ("Unused >= group size, no tasks", tr(), U60, [], None, 0, None, None),
    ("production root", tr(parent=-1), U10, [], None, 0, "10 Unused files, fewer than the group size 50", None),
    ("parent Active blocks", tr(), U10, [], pv(), 0, None, WAITING),
    ("parent processed but not final blocks", tr(), U10, [], pv(processed=True), 0, None, WAITING),
    # As in the agent (reference 5.12): an MCSimulation parent keeps producing, so it blocks.
    ("parent MCSimulation Active blocks", tr(), U10, [], pv(type="MCSimulation"), 0, None, WAITING),
    ("parent Completed", tr(), U10, [], pv(status="Completed"), 0,
     "10 Unused files, fewer than the group size 50", None),
    ("parent Archived (fixes 5.12)", tr(), U10, [], pv(status="Archived"), 0,
     "10 Unused files, fewer than the group size 50", None),
    ("parent Cleaned (fixes 5.12)", tr(), U10, [], pv(status="Cleaned"), 0,
     "10 Unused files, fewer than the group size 50", None),
    ("flush count below MaxFlush", tr(), U10, [], None, 1, "10 Unused files, fewer than the group size 50", None),
    ("flush limit reached", tr(), U10, [], None, 2, None, "flush limit reached (2 of 2) with 10 Unused files"),
    ("flush limit exceeded", tr(), U10, [], None, 3, None, "flush limit reached (3 of 2) with 10 Unused files"),
    # Nothing would be flushed anyway: the limit is no news.
    ("flush limit, nothing to flush", tr(), U60, ONE_RUNNING, None, 2, None, None),
    ("float group size, whole", tr(group_size=50.0), counts(Unused=49), [], None, 0,
     "49 Unused files, fewer than the group size 50", None),
    ("float group size below", tr(group_size=2.5), counts(Unused=2), [], None, 0,
     "2 Unused files, fewer than the group size 2.5", None),
    ("float group size above, all final", tr(group_size=2.5), counts(Unused=3), FINAL_TASKS, None, 0,
     "3 Unused files and all 4 tasks are final", None),
    ("float group size above, one running", tr(group_size=2.5), counts(Unused=3), ONE_RUNNING, None, 0,
     None, None),
    ("DataReprocessing is flushable", tr(type="DataReprocessing", parent=-1, group_size=5), counts(Unused=4), [],
     None, 0, "4 Unused files, fewer than the group size 5", None),
]


@pytest.mark.parametrize(
    "t, file_counts, tasks, parent, flush_count, reason, blocker",
    [c[1:] for c in FLUSH_CASES],
    ids=[c[0] for c in FLUSH_CASES],
)
def test_it_decides_flush(t, file_counts, tasks, parent, flush_count, reason, blocker):
    decision, got_blocker = decide_flush(t, file_counts, tasks, parent, flush_count, SEED)
    assert (got_blocker.text if got_blocker else None) == blocker
    if reason is None:
        assert decision is None
        return
    assert decision == Decision(FLUSH_ACTION, t.id, reason, status="Flush", expected="Active")


def test_it_flushes_as_often_as_max_flush_says():
    policy = RulesPolicy(flush_types=frozenset({"Merging"}), max_flush=0)
    decision, blocker = decide_flush(tr(parent=None), U10, [], None, 0, policy)
    assert decision is None
    assert blocker == Blocker(FLUSH_LIMIT, "flush limit reached (0 of 0) with 10 Unused files", count=10, limit=0)
    policy = RulesPolicy(flush_types=frozenset({"Merging"}), max_flush=5)
    assert decide_flush(tr(parent=None), U10, [], None, 4, policy)[0] is not None


# -- 4. decide_reassign -------------------------------------------------------------------------

REASSIGN_CASES = [
    # id, files, task statuses, counters, expected {task: lfns}, expected at cap
    ("Assigned file of a Failed task", [fi("/a", "Assigned", 1)], {1: "Failed"}, {}, {1: ["/a"]}, []),
    ("Assigned file of a Killed task", [fi("/a", "Assigned", 1)], {1: "Killed"}, {}, {1: ["/a"]}, []),
    ("Assigned file of a Done task", [fi("/a", "Assigned", 1)], {1: "Done"}, {}, None, []),
    ("Assigned file of a Completed task", [fi("/a", "Assigned", 1)], {1: "Completed"}, {}, None, []),
    ("Assigned file of a Running task", [fi("/a", "Assigned", 1)], {1: "Running"}, {}, None, []),
    ("Assigned file of a Submitted task", [fi("/a", "Assigned", 1)], {1: "Submitted"}, {}, None, []),
    ("Assigned file of a Stalled task", [fi("/a", "Assigned", 1)], {1: "Stalled"}, {}, None, []),
    ("Assigned file of an unknown task", [fi("/a", "Assigned", 1)], {2: "Failed"}, {}, None, []),
    ("Assigned file without a task", [fi("/a", "Assigned", None)], {1: "Failed"}, {}, None, []),
    # (fixes 5.5) never force a Processed or MaxReset file of a failed task back to Unused.
    ("Processed file of a Failed task", [fi("/a", "Processed", 1)], {1: "Failed"}, {}, None, []),
    ("MaxReset file of a Failed task", [fi("/a", "MaxReset", 1)], {1: "Failed"}, {}, None, []),
    ("Problematic file of a Failed task", [fi("/a", "Problematic", 1)], {1: "Failed"}, {}, None, []),
    # (fixes 5.4) an Unused file with a stale TaskID is not "reassigned" again.
    ("Unused file of a Failed task", [fi("/a", "Unused", 1)], {1: "Failed"}, {}, None, []),
    ("file of another transformation", [fi("/a", "Assigned", 1, t=4849)], {1: "Failed"}, {}, None, []),
    (
        "mixed files of a Failed task",
        [fi("/c", "Assigned", 1), fi("/b", "Processed", 1), fi("/a", "Assigned", 1), fi("/d", "MaxReset", 1)],
        {1: "Failed"},
        {},
        {1: ["/a", "/c"]},
        [],
    ),
    (
        "grouped by task, sorted",
        [
            fi("/z", "Assigned", 5),
            fi("/y", "Assigned", 2),
            fi("/x", "Assigned", 5),
            fi("/w", "Assigned", 3),
            fi("/v", "Assigned", 2),
        ],
        {2: "Killed", 3: "Done", 5: "Failed"},
        {},
        {2: ["/v", "/y"], 5: ["/x", "/z"]},
        [],
    ),
    (
        "files at the cap stay Assigned, the others go",
        [fi("/a", "Assigned", 1), fi("/c", "Assigned", 1), fi("/b", "Assigned", 2)],
        {1: "Failed", 2: "Failed"},
        {"/c": 3, "/b": 7},
        {1: ["/a"]},
        ["/b", "/c"],
    ),
    ("only files at the cap", [fi("/b", "Assigned", 1), fi("/a", "Assigned", 1)], {1: "Failed"},
     {"/a": 3, "/b": 3}, None, ["/a", "/b"]),
]


@pytest.mark.parametrize(
    "files, task_status, counters, expected, at_cap",
    [c[1:] for c in REASSIGN_CASES],
    ids=[c[0] for c in REASSIGN_CASES],
)
def test_it_decides_reassign(files, task_status, counters, expected, at_cap):
    decision, got_at_cap = decide_reassign(tr(), files, task_status, counters, SEED)
    assert got_at_cap == at_cap
    if expected is None:
        assert decision is None
        return
    assert decision.kind == REASSIGN
    assert decision.transformation == TID
    assert decision.tasks == expected
    assert list(decision.tasks) == sorted(decision.tasks)
    assert decision.lfns == [lfn for lfns in expected.values() for lfn in lfns]


@pytest.mark.parametrize(
    "max_reassign, counter, reassigned",
    [
        # (fixes 5.3) exactly MaxReassign resets: counters 0 .. MaxReassign-1 may go once more.
        (3, 0, True),
        (3, 1, True),
        (3, 2, True),
        (3, 3, False),  # the agent (count <= MaxReassign) allowed a 4th reset here
        (3, 4, False),
        (2, 1, True),
        (2, 2, False),
        (1, 0, True),
        (1, 1, False),
        (0, 0, False),
    ],
)
def test_it_allows_exactly_max_reassign_resets(max_reassign, counter, reassigned):
    policy = RulesPolicy(reassign_types=frozenset({"Merging"}), max_reassign=max_reassign)
    decision, at_cap = decide_reassign(tr(), [fi("/a", "Assigned", 1)], {1: "Failed"}, {"/a": counter}, policy)
    if reassigned:
        assert decision.tasks == {1: ["/a"]}
        assert at_cap == []
    else:
        assert decision is None
        assert at_cap == ["/a"]


def test_it_counts_resets_until_the_cap_over_cycles():
    """Replaying the cycles: a file that keeps failing is set Unused 3 times with MaxReassign 3."""
    counters: dict[str, int] = {}
    resets = 0
    for _ in range(10):
        decision, at_cap = decide_reassign(tr(), [fi("/a", "Assigned", 1)], {1: "Failed"}, counters, SEED)
        if decision is None:
            assert at_cap == ["/a"]
            continue
        resets += 1
        counters["/a"] = counters.get("/a", 0) + 1  # what the engine does once DIRAC accepted
    assert resets == 3


def test_it_uses_the_counter_of_this_transformation_only():
    """The same LFN in two transformations: each has its own count (fixes 5.6)."""
    files = {4848: [fi("/shared", "Assigned", 1, t=4848)], 4849: [fi("/shared", "Assigned", 1, t=4849)]}
    counters = {4848: {"/shared": 3}, 4849: {"/shared": 0}}
    d4848, cap4848 = decide_reassign(tr(id=4848), files[4848], {1: "Failed"}, counters[4848], SEED)
    d4849, cap4849 = decide_reassign(tr(id=4849), files[4849], {1: "Failed"}, counters[4849], SEED)
    assert d4848 is None and cap4848 == ["/shared"]
    assert d4849.tasks == {1: ["/shared"]} and cap4849 == []


@pytest.mark.django_db
def test_it_keys_stored_counters_by_transformation_and_lfn():
    from failover.cycle.read import read_counters
    from failover.models import ReassignCounter

    ReassignCounter.objects.create(transformation_id=4847, lfn="/shared", count=3)
    ReassignCounter.objects.create(transformation_id=4848, lfn="/shared", count=1)
    ReassignCounter.objects.create(transformation_id=4848, lfn="/other", count=2)
    counters = read_counters([4848])
    assert dict(counters) == {4848: {"/shared": 1, "/other": 2}}
    decision, at_cap = decide_reassign(tr(), [fi("/shared", "Assigned", 1)], {1: "Failed"}, counters[4848], SEED)
    assert decision.tasks == {1: ["/shared"]}


@pytest.mark.parametrize("type_", ["Reconstruction", "MCSimulation", "Replication"])
def test_it_reassigns_only_types_in_reassign(type_):
    decision, at_cap = decide_reassign(tr(type=type_), [fi("/a", "Assigned", 1)], {1: "Failed"}, {"/a": 5}, SEED)
    assert decision is None
    assert at_cap == []


def test_it_explains_reassign():
    files = [fi("/a", "Assigned", 1), fi("/b", "Assigned", 1), fi("/c", "Assigned", 2)]
    decision, _ = decide_reassign(tr(), files, {1: "Failed", 2: "Killed"}, {}, SEED)
    assert decision.reason == "3 Assigned files of 2 failed or killed tasks"
    assert decision.as_dict() == {
        "kind": "reassign",
        "transformation": TID,
        "reason": "3 Assigned files of 2 failed or killed tasks",
        "tasks": {"1": ["/a", "/b"], "2": ["/c"]},
    }


# -- the whole plan -----------------------------------------------------------------------------


def plan(t=None, *, file_counts=None, tasks=(), job_map=None, parent=None, files=(), counters=None, flush_count=0,
         policy=SEED, kinds=rules.KINDS):
    return plan_transformation(
        t or tr(),
        counts=file_counts if file_counts is not None else counts(),
        tasks=list(tasks),
        jobs=job_map or {},
        parent=parent,
        assigned_files=list(files),
        counters=counters or {},
        flush_count=flush_count,
        policy=policy,
        kinds=kinds,
    )


def kinds_of(p):
    return [d.kind for d in p.decisions]


def test_it_syncs_then_reassigns_with_the_synced_statuses():
    """A task still 'Submitted' whose job Failed gets its Assigned files reassigned in the same plan."""
    p = plan(
        file_counts=counts(Assigned=2, Processed=100),
        tasks=[task(1, 11, "Submitted"), task(2, 12, "Running")],
        job_map=jobs(job(11, "Failed"), job(12, "Done")),
        parent=pv(status="Completed"),
        files=[fi("/a", "Assigned", 1), fi("/b", "Assigned", 2)],
    )
    assert kinds_of(p) == [SYNC, REASSIGN]
    assert p.decisions[0].tasks == {"Done": [2], "Failed": [1]}
    assert p.decisions[0].reason == "2 tasks behind their jobs: 1 to Done, 1 to Failed"
    assert p.decisions[1].tasks == {1: ["/a"]}
    assert p.blockers == [] and p.at_cap == []


def test_it_reassigns_files_of_a_task_whose_job_vanished():
    p = plan(
        file_counts=counts(Assigned=1, Processed=100),
        tasks=[task(1, 11, "Running")],
        parent=pv(status="Completed"),
        files=[fi("/a", "Assigned", 1)],
    )
    assert kinds_of(p) == [SYNC, REASSIGN]
    assert p.decisions[0].tasks == {"Failed": [1]}


def test_it_stops_after_complete():
    p = plan(
        t=tr(parent=-1),
        file_counts=counts(Processed=10),
        tasks=[task(1, 11, "Running")],
        job_map=jobs(job(11, "Failed")),
        files=[fi("/a", "Assigned", 1)],  # contrived: would be reassigned if the plan went on
    )
    assert kinds_of(p) == [SYNC, COMPLETE]
    assert p.decisions[1].as_dict() == {
        "kind": "complete",
        "transformation": TID,
        "reason": "all 10 files Processed and no parent step to wait for",
        "status": "Completed",
        "expected": "Active",
    }


def test_it_stops_when_processed_but_waiting_for_the_parent():
    p = plan(file_counts=counts(Processed=10), parent=pv(), files=[fi("/a", "Assigned", 1)],
             tasks=[task(1, 11, "Failed")], job_map=jobs(job(11, "Failed")))
    assert p.decisions == []
    assert [b.text for b in p.blockers] == ["all files Processed; waiting for 4847 to complete"]


def test_it_stops_when_processed_and_not_in_complete():
    p = plan(t=tr(type="Reconstruction"), file_counts=counts(Processed=10), files=[fi("/a", "Assigned", 1)],
             tasks=[task(1, 11, "Failed")], job_map=jobs(job(11, "Failed")),
             policy=RulesPolicy(reassign_types=frozenset({"Reconstruction"})))
    assert p.decisions == []
    assert p.blockers == []


def test_it_goes_on_for_a_processed_mcsimulation():
    """MCSimulation has no input: 'processed' does not stop it (the agent's hard-coded exception)."""
    policy = RulesPolicy(complete_types=frozenset({"MCSimulation"}), reassign_types=frozenset({"MCSimulation"}))
    p = plan(t=tr(type="MCSimulation", parent=-1), file_counts=counts(Processed=10), policy=policy,
             tasks=[task(1, 11, "Failed")], job_map=jobs(job(11, "Failed")), files=[fi("/a", "Assigned", 1)])
    assert kinds_of(p) == [REASSIGN]


def test_it_does_not_reassign_in_the_cycle_it_flushes():
    p = plan(
        file_counts=counts(Unused=10, Assigned=1, Processed=100),
        tasks=[task(1, 11, "Submitted")],
        job_map=jobs(job(11, "Failed")),
        parent=pv(status="Completed"),
        files=[fi("/a", "Assigned", 1)],
    )
    assert kinds_of(p) == [SYNC, FLUSH_ACTION]
    assert p.decisions[1].as_dict() == {
        "kind": "flush",
        "transformation": TID,
        "reason": "10 Unused files, fewer than the group size 50",
        "status": "Flush",
        "expected": "Active",
    }


def test_it_reassigns_when_the_flush_is_blocked():
    p = plan(
        file_counts=counts(Unused=10, Assigned=1, Processed=100),
        tasks=[task(1, 11, "Failed")],
        job_map=jobs(job(11, "Failed")),
        files=[fi("/a", "Assigned", 1)],
        flush_count=2,
    )
    assert kinds_of(p) == [REASSIGN]
    assert [b.text for b in p.blockers] == ["flush limit reached (2 of 2) with 10 Unused files"]


def test_it_reports_every_blocker():
    p = plan(
        file_counts=counts(Unused=10, Assigned=2, Processed=100),
        tasks=[task(1, 11, "Failed")],
        job_map=jobs(job(11, "Failed")),
        parent=pv(),
        files=[fi("/a", "Assigned", 1), fi("/b", "Assigned", 1)],
        counters={"/a": 3},
    )
    assert kinds_of(p) == [REASSIGN]
    assert p.decisions[0].tasks == {1: ["/b"]}
    assert p.at_cap == ["/a"]
    assert [b.text for b in p.blockers] == [
        "10 Unused files; waiting for 4847 to complete before flushing",
        "1 file reached MaxReassign (3) and stays Assigned",
    ]
    assert [(b.code, b.count, b.limit, b.related) for b in p.blockers] == [
        (blockers.WAITING, 10, None, PARENT), (AT_CAP, 1, 3, None),
    ]


FLUSH_AND_REASSIGN = dict(
    file_counts=counts(Unused=10, Assigned=1, Processed=100),
    tasks=[task(1, 11, "Submitted")],
    job_map=jobs(job(11, "Failed")),
    parent=pv(status="Completed"),
    files=[fi("/a", "Assigned", 1)],
)


@pytest.mark.parametrize(
    "kinds, expected",
    [
        (rules.KINDS, [SYNC, FLUSH_ACTION]),
        ([SYNC], [SYNC]),
        ([FLUSH_ACTION], [FLUSH_ACTION]),
        # Without the flush, the reassign goes ahead, still seeing the task as Failed.
        ([REASSIGN], [REASSIGN]),
        ([SYNC, REASSIGN], [SYNC, REASSIGN]),
        ([COMPLETE], []),
        ([], []),
    ],
)
def test_it_restricts_the_plan_to_kinds(kinds, expected):
    assert kinds_of(plan(**FLUSH_AND_REASSIGN, kinds=kinds)) == expected


@pytest.mark.parametrize("kinds, expected", [([COMPLETE], [COMPLETE]), ([SYNC, FLUSH_ACTION, REASSIGN], [SYNC])])
def test_it_restricts_completion_to_kinds(kinds, expected):
    p = plan(t=tr(parent=-1), file_counts=counts(Processed=3), tasks=[task(1, 11, "Running")],
             job_map=jobs(job(11, "Done")), kinds=kinds)
    assert kinds_of(p) == expected


def test_it_plans_nothing_for_a_quiet_transformation():
    p = plan(file_counts=counts(Assigned=50, Processed=100, Unused=60), tasks=[task(1, 11, "Running")],
             job_map=jobs(job(11, "Running")), parent=pv(status="Completed"), files=[fi("/a", "Assigned", 1)])
    assert p.decisions == [] and p.blockers == [] and p.at_cap == []
    assert p.transformation == TID


def test_it_describes_a_sync_decision_as_data():
    p = plan(tasks=[task(2, 12, "Submitted"), task(1, 11, "Submitted")], job_map=jobs(job(11, "Done"),
             job(12, "Done")), kinds=[SYNC])
    assert p.decisions[0].as_dict() == {
        "kind": "sync",
        "transformation": TID,
        "reason": "2 tasks behind their jobs: 2 to Done",
        "tasks": {"Done": [1, 2]},
    }
    assert p.decisions[0].lfns == []


def test_it_plans_the_seed_chain_parents_first():
    """The seed's chain: DataReprocessing 4846 -> Merging 4847 (50) -> Merging 4848 (10000)."""
    root = tr(id=4846, type="DataReprocessing", parent=-1, group_size=5)
    merge50 = tr(id=4847, type="Merging", parent=4846, group_size=50)
    merge10k = tr(id=4848, type="Merging", parent=4847, group_size=10000)

    # The root has processed everything: it completes.
    p = plan(t=root, file_counts=counts(Processed=400))
    assert kinds_of(p) == [COMPLETE]
    # Its child sees it Completed after its turn, and flushes its last 10 files.
    root_after = parent_view(TransformationInfo(4846, "t", "DataReprocessing", "Completed", 5, 7, -1),
                             counts(Processed=400))
    p = plan(t=merge50, file_counts=counts(Processed=50, Unused=10), parent=root_after,
             tasks=[task(1, 11, "Done")], job_map=jobs(job(11, "Done")))
    assert kinds_of(p) == [FLUSH_ACTION]
    # The grandchild waits for 4847, which is neither processed nor final yet.
    p = plan(t=merge10k, file_counts=counts(Unused=1), parent=parent_view(merge50, counts(Processed=50, Unused=10)))
    assert p.decisions == []
    assert [b.text for b in p.blockers] == ["1 Unused file; waiting for 4847 to complete before flushing"]


# -- helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tasks, job_map, type_, expected",
    [
        ([task(1, 11, "Submitted")], jobs(job(11, "Failed")), "Merging", True),
        ([task(1, 11, "Killed")], jobs(job(11, "Killed")), "Merging", True),
        ([task(1, 11, "Running")], {}, "Merging", True),  # job vanished: Failed
        ([task(1, 11, "Failed")], jobs(job(11, "Running")), "Merging", False),  # rescheduled
        # A Done task's files should be Processed; Assigned ones are an attention item.
        ([task(1, 11, "Submitted")], jobs(job(11, "Done")), "Merging", True),
        ([task(1, 11, "Submitted")], jobs(job(11, "Running")), "Merging", False),
        ([task(1, 0, "Created")], {}, "Merging", False),
        ([task(1, 11, "Failed")], jobs(job(11, "Failed")), "Reconstruction", False),
    ],
)
def test_it_knows_when_assigned_files_are_needed(tasks, job_map, type_, expected):
    assert needs_assigned_files(tr(type=type_), tasks, job_map, SEED) is expected


@pytest.mark.parametrize("parent, expected", [(None, None), (-1, None), (4847, 4847)])
def test_it_finds_the_parent_to_wait_for(parent, expected):
    assert parent_of(tr(parent=parent)) == expected


def test_it_builds_a_parent_view():
    t = tr(id=4847, status="Flush", type="Merging")
    assert parent_view(None, counts(Processed=1)) is None
    assert parent_view(t, None) == ParentView(4847, "Merging", "Flush", False)
    assert parent_view(t, counts(Processed=1)) == ParentView(4847, "Merging", "Flush", True)
    assert parent_view(t, counts(Processed=1, Unused=1)).processed is False


def test_it_counts_assigned_files_of_done_tasks_and_tasks_without_job():
    from failover.domain import TaskSummary
    from failover.rules import assigned_to_done_tasks, summarise

    tasks = [task(1, 11, "Done"), task(2, 12, "Failed"), task(3, 0, "Created")]
    files = [FileInfo(4847, "/a", "Assigned", 1), FileInfo(4847, "/b", "Processed", 1),
             FileInfo(4847, "/c", "Assigned", 2), FileInfo(4847, "/d", "Assigned", 3)]
    assert assigned_to_done_tasks(files, tasks) == 1
    assert summarise(tasks) == TaskSummary(total=3, not_final=1, failed=1, done=1, without_job=1,
                                           oldest_without_job=3)


# -- reassign and recovery combined (issue 16 item 2) -----------------------------------------


@pytest.mark.parametrize("registered, expected, recoverable", [
    # No catalogue configured: reassign exactly as before.
    (None, {1: ["/a"], 2: ["/b"]}, []),
    # A catalogue that knows no outputs of either job: both reassigned.
    (frozenset(), {1: ["/a"], 2: ["/b"]}, []),
    # Task 1's job registered outputs: its inputs stay Assigned, recovery's case applies.
    (frozenset({1}), {2: ["/b"]}, [1]),
    (frozenset({1, 2}), None, [1, 2]),
    # A Done task's registration changes nothing (reassign never looked at it).
    (frozenset({3}), {1: ["/a"], 2: ["/b"]}, []),
])
def test_reassign_leaves_failed_jobs_with_registered_outputs_to_recovery(registered, expected, recoverable):
    files = [fi("/a", "Assigned", 1), fi("/b", "Assigned", 2), fi("/c", "Assigned", 3)]
    tasks = [task(1, 11, "Failed"), task(2, 12, "Killed"), task(3, 13, "Done")]
    plan = plan_transformation(
        tr(), counts=counts(Assigned=3), tasks=tasks, jobs=jobs(job(11, "Failed"), job(12, "Killed"), job(13, "Done")),
        parent=pv(), assigned_files=files, counters={}, flush_count=0, policy=SEED, registered=registered,
    )
    reassign = [d for d in plan.decisions if d.kind == REASSIGN]
    assert (reassign[0].tasks if reassign else None) == expected
    assert plan.recoverable == recoverable
    codes = [b.code for b in plan.blockers]
    assert (blockers.RECOVERABLE in codes) == bool(recoverable)
    if recoverable:
        b = next(b for b in plan.blockers if b.code == blockers.RECOVERABLE)
        assert b.count == len(recoverable) and b.fix is None  # recovery's own finding carries the fix
