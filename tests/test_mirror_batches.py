"""The mirror across batches: one delta read for a cycle's whole selection however many batches
it has (``Reading.read_deltas``), and first fills read group by group (FAILOVER_FILL_FILES); both
on the simulated DIRAC, never missing a change."""

from __future__ import annotations

import pytest
from django.utils import timezone

from failover import mirror
from failover.models import MirrorJob, MirrorState, MirrorTask
from failover.simulated.backend import SimulatedDirac
from failover.simulated.models import SimJob
from tests.factories import load_scenario, seed_policy
from tests.test_mirror import IDS, START, ChangeDuringRead, job_of, run, steady_scenario

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def batches(time_machine, settings):
    """The steady scenario's three transformations, one per batch, after a first cycle."""
    settings.FAILOVER_REPLAN_MINUTES = 0
    settings.FAILOVER_BATCH_SIZE = 1
    time_machine.move_to(START, tick=False)
    seed_policy()
    load_scenario(steady_scenario())
    first = run()
    assert first.errors == 0 and not first.decisions
    return time_machine


def mirror_rows():
    return (sorted(MirrorTask.objects.values_list("transformation_id", "task_id", "job_id", "status")),
            sorted(MirrorJob.objects.values_list("job_id", "transformation_id", "status", "minor_status",
                                                 "application_status", "site")))


def test_three_batches_read_what_changed_in_one_pair_of_calls(batches, settings):
    batches.shift(600)
    run()
    batches.shift(600)
    quiet = run()
    assert quiet.errors == 0 and not quiet.decisions
    assert quiet.calls["tasks_changed_since"] == 1
    assert "tasks" not in quiet.calls and "jobs" not in quiet.calls
    # The same calls as one batch of all three.
    settings.FAILOVER_BATCH_SIZE = 200
    batches.shift(600)
    assert run().calls == quiet.calls
    settings.FAILOVER_BATCH_SIZE = 1
    # Every cut moved to that one read's start.
    cuts = set(MirrorState.objects.values_list("cut", flat=True))
    assert len(cuts) == 1
    # A job of the last batch's transformation changes: seen, planned and synced, still one delta read.
    batches.shift(600)
    SimJob.objects.filter(id=job_of(503, 3)).update(status="Done", minor_status="Execution Complete",
                                                     last_update=timezone.now())
    changed = run()
    assert changed.calls["tasks_changed_since"] == 1
    assert sorted((d.transformation, d.kind) for d in changed.decisions if d.kind == "sync") == [(503, "sync")]
    assert MirrorJob.objects.get(pk=job_of(503, 3)).status == "Done"


def test_a_change_during_the_cycles_delta_read_is_seen_by_the_next_cycle(batches):
    batches.shift(600)
    changed = job_of(501, 1)
    during = run(ChangeDuringRead(changed))
    assert not during.decisions
    assert MirrorJob.objects.get(pk=changed).status == "Running"
    batches.shift(600)
    after = run()
    assert MirrorJob.objects.get(pk=changed).status == "Failed"
    assert [d.transformation for d in after.decisions if d.kind == "sync"] == [501]


def test_a_first_fill_in_groups_writes_the_same_mirror(time_machine, settings):
    time_machine.move_to(START, tick=False)
    seed_policy()
    load_scenario(steady_scenario())
    whole = run(SimulatedDirac())
    assert whole.calls["tasks"] == 1
    expected = mirror_rows()
    for tid in IDS:
        mirror.forget(tid)
    # One transformation's tasks and jobs at a time (each has three files).
    settings.FAILOVER_FILL_FILES = 3
    grouped = run(SimulatedDirac())
    assert grouped.errors == 0 and grouped.calls["tasks"] == 3
    assert mirror_rows() == expected
    assert sorted(MirrorState.objects.values_list("transformation_id", "tasks", "jobs")) == [
        (tid, 3, 3) for tid in IDS]
