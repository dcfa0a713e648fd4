"""The simulator's LastUpdateTime rules (docs/scenario.md, "LastUpdateTime: which writes move it")."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from failover.errors import ScenarioError
from failover.simulated import wms
from failover.simulated.advance import advance
from failover.simulated.backend import SimulatedDirac
from failover.simulated.models import SimJob, SimTask
from failover.simulated.scenario import validate
from failover.simulated.store import dump, load

pytestmark = pytest.mark.django_db(databases="__all__")

T0 = datetime(2026, 3, 1, 8, 0, 0, 700_000, tzinfo=UTC)
T1 = datetime(2026, 3, 1, 9, 30, 0, 250_000, tzinfo=UTC)
WHOLE_T0 = T0.replace(microsecond=0)
WHOLE_T1 = T1.replace(microsecond=0)


def scenario(**extra) -> dict:
    return {
        "transformations": [{"id": 1, "name": "t1", "type": "Merging", "status": "Active", "group_size": 1}],
        "files": [{"transformation": 1, "lfn": "/f/1", "status": "Assigned", "task": 1},
                  {"transformation": 1, "lfn": "/f/2", "status": "Unused", "task": None}],
        "tasks": [{"transformation": 1, "task": 1, "job": 11, "status": "Submitted", **extra}],
        "jobs": [{"id": 11, "status": "Received", "site": "ANY", **extra}],
    }


def times() -> tuple[dict, dict]:
    return (dict(SimTask.objects.values_list("task", "last_update")),
            dict(SimJob.objects.values_list("id", "last_update")))


def test_load_without_last_update_uses_the_load_time_in_whole_seconds():
    with time_machine.travel(T0, tick=False):
        load(validate(scenario()))
    tasks, jobs = times()
    assert tasks == {1: WHOLE_T0} and jobs == {11: WHOLE_T0}
    # dump leaves the times out of a scenario that had none
    assert "last_update" not in dump().tasks[0]


def test_load_keeps_a_given_last_update_and_dump_round_trips_it():
    with time_machine.travel(T0, tick=False):
        load(validate(scenario(last_update="2026-01-02T03:04:05.9+01:00")))
    tasks, jobs = times()
    assert tasks[1] == jobs[11] == datetime(2026, 1, 2, 2, 4, 5, tzinfo=UTC)
    dumped = dump()
    assert dumped.tasks[0]["last_update"] == dumped.jobs[0]["last_update"] == "2026-01-02 02:04:05"
    load(validate(dumped.as_dict()))
    assert times() == (tasks, jobs)


@pytest.mark.parametrize(
    "value", ["yesterday", 12, "2026-13-01 00:00:00", "0999-12-31 23:59:59", "0001-01-01T00:00:00+01:00"]
)
def test_a_bad_last_update_is_refused_naming_its_place(value):
    with pytest.raises(ScenarioError, match=r"jobs\[0\]\.last_update"):
        validate(scenario(last_update=value))


def test_a_yaml_date_without_time_is_refused():
    from failover.simulated.scenario import read_text

    text = ("transformations: [{id: 1, name: t, type: M, status: Active}]\n"
            "jobs: [{id: 11, status: Done, last_update: 2026-01-02}]\n")
    with pytest.raises(ScenarioError, match="not the date 2026-01-02"):
        read_text(text)


def test_set_task_status_moves_it_for_every_task_named_even_unchanged():
    with time_machine.travel(T0, tick=False):
        load(validate(scenario()))
        SimTask.objects.create(transformation=1, task=2, job=0, status="Created")
    with time_machine.travel(T1, tick=False):
        SimulatedDirac().set_task_status(1, [1], "Submitted")  # the same status
    tasks, _ = times()
    assert tasks == {1: WHOLE_T1, 2: WHOLE_T0}


def test_job_status_updates_move_it_a_site_or_a_heartbeat_do_not():
    with time_machine.travel(T0, tick=False):
        load(validate(scenario()))
    with time_machine.travel(T1, tick=False):
        wms.set_job_site(11, "LCG.CNAF.it")
        wms.heartbeat(11)
    job = SimJob.objects.get(id=11)
    assert (job.site, job.status, job.last_update) == ("LCG.CNAF.it", "Running", WHOLE_T0)
    with time_machine.travel(T1, tick=False):
        wms.set_job_status(11, application_status="Executing Step1")
    job.refresh_from_db()
    assert (job.status, job.application_status, job.last_update) == ("Running", "Executing Step1", WHOLE_T1)


def test_advance_moves_it_on_new_tasks_submissions_and_job_moves_only():
    with time_machine.travel(T0, tick=False):
        load(validate(scenario()))
    with time_machine.travel(T1, tick=False):
        result = advance(seed=3)
    assert result.tasks_created == 1 and result.jobs_submitted == 1
    tasks, jobs = times()
    # Task 1 was not touched (advance never copies job statuses into tasks); task 2 is new and
    # submitted; job 11 moved Received -> Waiting, job 12 is new.
    assert tasks == {1: WHOLE_T0, 2: WHOLE_T1}
    assert jobs[11] == WHOLE_T1 and jobs[max(jobs)] == WHOLE_T1


def test_the_delta_reads_follow_those_times():
    with time_machine.travel(T0, tick=False):
        load(validate(scenario()))
    b = SimulatedDirac()
    with time_machine.travel(T1, tick=False):
        wms.set_job_status(11, "Waiting", "Pilot Agent Submission")
    assert list(b.jobs_changed_since([1], T1)) == [11]
    assert b.tasks_changed_since([1], T1) == []
    assert [t.task for t in b.tasks_changed_since([1], T0)] == [1]
