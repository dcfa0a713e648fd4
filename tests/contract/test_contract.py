"""What any DIRAC adapter must do. Runs against the simulator, and against real DIRAC 9.1
services when they are started (tests/dirac/services.sh)."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta, timezone

import pytest

from failover.backends.base import DiracBackend
from failover.circuit import CALLS
from failover.errors import BackendError
from tests.contract.scenario import EDGE, OLD

pytestmark = pytest.mark.django_db(databases="__all__")

A1, A2, B1, C1, C2, U1 = (f"/ctao/c/{n}.h5" for n in ("a1", "a2", "b1", "c1", "c2", "u1"))


def test_it_satisfies_the_protocol(world):
    """Every method of the Protocol, with its parameters (a runtime-checkable isinstance only sees names)."""
    assert world.backend.name in ("simulated", "dirac")
    wanted = [n for n, v in vars(DiracBackend).items() if callable(v) and not n.startswith("_")]
    assert wanted
    for name in wanted:
        expected = inspect.signature(getattr(DiracBackend, name))
        actual = inspect.signature(getattr(type(world.backend), name))
        assert list(actual.parameters) == list(expected.parameters), name
        for param, spec in expected.parameters.items():
            assert actual.parameters[param].kind == spec.kind, (name, param)


def test_it_selects_transformations_by_status_type_and_id(world):
    b = world.backend
    active = {t.id for t in b.transformations(statuses=["Active"])}
    assert {world.t(4847), world.t(4848)} <= active and world.t(4849) not in active
    merging = {t.id for t in b.transformations(statuses=["Active", "Stopped"], types=["Merging"])}
    assert world.t(4849) not in merging and world.t(4847) in merging
    (t,) = b.transformations(ids=[world.t(4848)])
    assert (t.type, t.status, t.group_size) == ("Merging", "Active", 10000)
    assert t.parent == world.t(4847)
    (root,) = b.transformations(ids=[world.t(4847)])
    assert root.parent == -1 and root.production is not None
    (alone,) = b.transformations(ids=[world.t(4849)])
    assert alone.parent is None and alone.production is None


def test_it_omits_unknown_transformations(world):
    assert world.backend.transformations(ids=[world.missing_transformation()]) == []


def test_it_counts_files_by_status_in_one_batch(world):
    counts = world.backend.file_counts([world.t(4847), world.t(4848), world.t(4849)])
    c = counts[world.t(4847)]
    assert c.by_status == {"Assigned": 3, "Processed": 2, "MaxReset": 1, "Unused": 1}
    assert c.total == 7 and not c.processed
    assert counts[world.t(4848)].by_status == {"Unused": 1}
    assert counts[world.t(4849)].total == 0


def test_it_lists_tasks_with_their_jobs(world):
    tasks = world.backend.tasks([world.t(4847), world.t(4848)])
    got = {(t.transformation, t.task): (t.job, t.status) for t in tasks}
    assert got == {
        (world.t(4847), 1): (world.j(1001), "Submitted"),
        (world.t(4847), 2): (world.j(1002), "Done"),
        (world.t(4847), 3): (world.j(1003), "Running"),
        (world.t(4847), 4): (0, "Created"),
    }


def test_it_filters_files_by_status_and_lfn(world):
    b = world.backend
    assigned = b.files([world.t(4847)], statuses=["Assigned"])
    assert sorted(f.lfn for f in assigned) == [A1, A2, C1]
    by_lfn = {f.lfn: f for f in b.files([world.t(4847)], lfns=[C1, U1])}
    assert set(by_lfn) == {C1, U1}
    assert (by_lfn[C1].status, by_lfn[C1].task, by_lfn[C1].error_count) == ("Assigned", 3, 10)
    assert by_lfn[U1].task is None


def test_it_reads_job_states_and_sites_and_omits_unknown_jobs(world):
    jobs = world.backend.jobs([world.j(1001), world.j(1003), 987654321])
    assert set(jobs) == {world.j(1001), world.j(1003)}
    j = jobs[world.j(1001)]
    assert (j.status, j.minor_status, j.application_status, j.site) == (
        "Failed", "Maximum of reschedulings reached", "Failed Input Data Resolution", "LCG.GRIF.fr")


def test_it_sets_several_task_statuses_in_one_call(world):
    b = world.backend
    before = b.calls.total
    b.set_task_status(world.t(4847), [1, 3, 999], "Failed")
    assert b.calls.total - before == 1
    got = {t.task: t.status for t in b.tasks([world.t(4847)])}
    assert got == {1: "Failed", 2: "Done", 3: "Failed", 4: "Created"}


def test_it_sets_assigned_files_unused_and_counts_the_error(world):
    b = world.backend
    written = b.set_file_status(world.t(4847), [A1, A2], "Unused")
    assert dict(written) == {A1: "Unused", A2: "Unused"}
    files = {f.lfn: f for f in b.files([world.t(4847)], lfns=[A1, A2])}
    assert files[A1].status == "Unused" and files[A1].error_count == 1
    # DIRAC keeps the task a file last belonged to.
    assert files[A1].task == 1


def test_it_keeps_processed_files_processed(world):
    b = world.backend
    written = b.set_file_status(world.t(4847), [B1], "Unused")
    assert B1 not in written
    (f,) = b.files([world.t(4847)], lfns=[B1])
    assert f.status == "Processed"


def test_it_turns_unused_into_maxreset_at_the_reset_counter(world):
    b = world.backend
    written = b.set_file_status(world.t(4847), [C1, C2], "Unused")
    assert written.get(C1) == "MaxReset"
    assert C2 not in written  # MaxReset cannot return to Unused
    files = {f.lfn: f for f in b.files([world.t(4847)], lfns=[C1, C2])}
    assert files[C1].status == "MaxReset" and files[C1].error_count == 11
    assert files[C2].status == "MaxReset"


def test_it_drops_unknown_and_unchanged_lfns(world):
    written = world.backend.set_file_status(world.t(4847), [U1, "/ctao/c/nowhere.h5"], "Unused")
    assert dict(written) == {}


def test_it_changes_status_only_if_still_expected(world):
    b = world.backend
    b.set_transformation_status(world.t(4847), "Flush", expected="Active")
    assert b.transformations(ids=[world.t(4847)])[0].status == "Flush"
    with pytest.raises(BackendError):
        b.set_transformation_status(world.t(4847), "Completed", expected="Active")
    assert b.transformations(ids=[world.t(4847)])[0].status == "Flush"


def test_it_refuses_status_writes_to_unknown_transformations(world):
    missing = world.missing_transformation()
    with pytest.raises(BackendError):
        world.backend.set_transformation_status(missing, "Flush", expected="Active")
    with pytest.raises(BackendError):
        world.backend.set_task_status(missing, [1], "Done")
    # DIRAC finds none of the files of an unknown transformation: nothing written, no error.
    assert dict(world.backend.set_file_status(missing, [A1], "Unused")) == {}


def test_it_counts_its_calls(world):
    b = world.backend
    b.calls.reset()
    assert b.calls.total == 0 and b.calls.snapshot() == {}
    b.transformations(statuses=["Active"])
    one = b.calls.snapshot()
    assert one and all(n >= 1 for n in one.values()) and b.calls.total == sum(one.values())
    b.file_counts([world.t(4847)])
    two = b.calls.snapshot()
    # The second read is counted on top of the first, and a snapshot is a copy the next call leaves alone.
    assert sum(two.values()) > sum(one.values()) and all(two.get(k, 0) >= n for k, n in one.items())
    assert b.calls.snapshot() == two and one != two


# -- delta reads (DELTA_SCENARIO: everything last updated at OLD, task 2 / job 2002 at EDGE) --

def _utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def test_the_circuit_guards_every_call_of_the_protocol():
    wanted = {n for n, v in vars(DiracBackend).items() if callable(v) and not n.startswith("_")}
    assert CALLS == wanted


def test_a_task_whose_status_was_set_is_changed_and_an_untouched_one_is_not(delta_world):
    w = delta_world
    b = w.backend
    a, other = w.t(4851), w.t(4852)
    assert {t.task for t in b.tasks_changed_since([a, other], _utc(OLD))} >= {1, 2, 3}
    cut = _now()
    b.set_task_status(a, [1], "Done")
    changed = b.tasks_changed_since([a, other], cut)
    assert [(t.transformation, t.task, t.job, t.status) for t in changed] == [(a, 1, w.j(2001), "Done")]
    # The same TaskInfo as tasks() gives.
    assert changed == [t for t in b.tasks([a]) if t.task == 1]
    # Only the transformations asked about.
    assert b.tasks_changed_since([other], cut) == []
    assert b.tasks_changed_since([], cut) == []


def test_set_task_status_moves_the_time_even_when_the_status_is_the_same(delta_world):
    w = delta_world
    cut = _now()
    w.backend.set_task_status(w.t(4851), [3], "Running")  # already Running
    assert [t.task for t in w.backend.tasks_changed_since([w.t(4851)], cut)] == [3]


def test_a_task_changed_at_the_cut_is_not_lost(delta_world):
    w = delta_world
    edge = _utc(EDGE)
    at = lambda since: {t.task for t in w.backend.tasks_changed_since([w.t(4851)], since)}  # noqa: E731
    assert at(edge) == {2}  # the bound is inclusive (LastUpdateTime >= since)
    # DIRAC keeps whole seconds: a change stored at EDGE may have happened up to a second
    # later, so a cut inside that second still returns it.
    assert at(edge + timedelta(microseconds=999_999)) == {2}
    assert at(edge + timedelta(seconds=1)) == set()
    # Any timezone, the same instant.
    assert at(edge.astimezone(timezone(timedelta(hours=2)))) == {2}


def test_a_job_whose_status_changed_is_returned_with_its_new_state(delta_world):
    w = delta_world
    b = w.backend
    a, other = w.t(4851), w.t(4852)
    cut = _now()
    w.jobdb.set_status(w.j(2001), "Done", "Execution Complete", "Workflow successful")
    w.jobdb.set_status(w.j(2004), "Failed", "Application Finished With Errors", "Step1 failed")
    changed = b.jobs_changed_since([a], cut)
    assert set(changed) == {w.j(2001)}  # 2002, 2003 untouched; 2004 is of another transformation
    j = changed[w.j(2001)]
    assert (j.status, j.minor_status, j.application_status, j.site) == (
        "Done", "Execution Complete", "Workflow successful", "LCG.GRIF.fr")
    assert changed == b.jobs([w.j(2001)])
    both = b.jobs_changed_since([a, other], cut)
    assert set(both) == {w.j(2001), w.j(2004)}
    assert b.jobs_changed_since([], cut) == {}


def test_a_job_changed_at_the_cut_is_not_lost(delta_world):
    w = delta_world
    edge = _utc(EDGE)
    at = lambda since: set(w.backend.jobs_changed_since([w.t(4851)], since))  # noqa: E731
    assert at(edge) == {w.j(2002)}
    assert at(edge + timedelta(microseconds=999_999)) == {w.j(2002)}
    assert at(edge + timedelta(seconds=1)) == set()
    assert at(_utc(OLD)) == {w.j(2001), w.j(2002), w.j(2003)}


def test_a_change_just_after_the_cut_in_the_same_second_is_seen(delta_world):
    """The cut is taken, then DIRAC writes within the same second: DIRAC stores the whole second,
    which is before the cut's fraction, and the read still returns it."""
    w = delta_world
    cut = _now()
    w.jobdb.set_status(w.j(2002), "Done", "Execution Complete", "Workflow successful")
    w.backend.set_task_status(w.t(4851), [2], "Done")
    assert set(w.backend.jobs_changed_since([w.t(4851)], cut)) == {w.j(2002)}
    assert [t.task for t in w.backend.tasks_changed_since([w.t(4851)], cut)] == [2]


def test_a_site_set_alone_or_a_heartbeat_does_not_move_the_time(delta_world):
    """As in DIRAC 9.1: JobStateUpdate's setJobSite writes the site without LastUpdateTime, and a
    heartbeat sets the job Running (here a Stalled one) without it either."""
    w = delta_world
    cut = _now()
    w.jobdb.set_site(w.j(2001), "LCG.DESY-ZEUTHEN.de")
    w.jobdb.heartbeat(w.j(2003))
    assert w.backend.jobs_changed_since([w.t(4851)], cut) == {}
    now = w.backend.jobs([w.j(2001), w.j(2003)])
    assert now[w.j(2001)].site == "LCG.DESY-ZEUTHEN.de"
    assert now[w.j(2003)].status == "Running"


def test_delta_reads_refuse_a_naive_time(delta_world):
    naive = datetime(2026, 6, 1, 12, 0, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        delta_world.backend.tasks_changed_since([delta_world.t(4851)], naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        delta_world.backend.jobs_changed_since([delta_world.t(4851)], naive)


def test_delta_reads_are_batched(delta_world):
    w = delta_world
    b = w.backend
    ids = [w.t(4851), w.t(4852)]
    b.calls.reset()
    b.tasks_changed_since(ids, _utc(OLD))
    assert b.calls.total == 1
    b.calls.reset()
    b.jobs_changed_since(ids, _utc(OLD))
    # getJobs, then getJobsStates and getJobsSites for the changed jobs.
    assert b.calls.total == 3
