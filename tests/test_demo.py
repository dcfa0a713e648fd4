"""The demo behind ``make run``: it loads, and a few fast cycles show every kind of attention item."""

from __future__ import annotations

from collections import Counter

import pytest

from dashboard.run import PROPOSE_POLICY, ensure_policies
from failover import blockers
from failover.engine import Engine
from failover.models import ActionLog, BlockerRecord, Policy, ReassignCounter, TransformationState
from failover.simulated import demo
from failover.simulated.advance import advance
from failover.simulated.backend import SimulatedDirac
from failover.simulated.models import SimJob, SimProduction, SimTransformation

pytestmark = pytest.mark.django_db(databases="__all__")

# What the demo is made to show: every code the engine makes, but a failed read.
EXPECTED = {blockers.AT_CAP, blockers.ASSIGNED_FINAL, blockers.TASKS_WITHOUT_JOB, blockers.FLUSH_LIMIT,
            blockers.NO_PROGRESS, blockers.CHILD_ACTIVE, blockers.CANNOT_COMPLETE}


def cycle():
    return Engine(SimulatedDirac(), retries=0, backoff=0).run_cycle(None)


@pytest.fixture
def played(settings):
    """The demo (small productions, one arrival) after 16 rounds of DIRAC's agents and a failover cycle."""
    settings.FAILOVER_STALL_CYCLES = 3
    ensure_policies(15)
    demo.load_demo(files=100)
    demo.arrive(files=300)
    for _ in range(16):
        advance(max_jobs=None)
        cycle()


def test_the_demo_loads_with_its_behaviour():
    scenario = demo.load_demo(files=100)
    assert {p["id"] for p in scenario.productions} >= {7, 8, 9, 10, 11, 12, 13}
    knobs = demo.behaviour()
    assert knobs["site_failure"] == {demo.BLACK_HOLE: 0.85}
    assert knobs["stalled"] == [demo.STALLED]
    assert knobs["outcomes"][str(demo.FAILING_CONFIG)][1] == "Exception During Execution"


def test_a_few_fast_cycles_show_every_kind_of_attention_item(played):
    codes = set(BlockerRecord.objects.values_list("code", flat=True))
    assert EXPECTED <= codes, f"missing {EXPECTED - codes}"
    where = {code: set(BlockerRecord.objects.filter(code=code).values_list("transformation_id", flat=True))
             for code in EXPECTED}
    assert demo.FAILING_CONFIG in where[blockers.AT_CAP]
    assert demo.FLUSH_LIMITED in where[blockers.FLUSH_LIMIT]
    assert demo.STALLED in where[blockers.NO_PROGRESS]
    assert demo.BOOKKEEPING in where[blockers.ASSIGNED_FINAL] & where[blockers.TASKS_WITHOUT_JOB]
    assert demo.CANNOT_COMPLETE in where[blockers.CANNOT_COMPLETE] & where[blockers.CHILD_ACTIVE]
    # Each file of the failing configuration was reset exactly MaxReassign times.
    counts = set(ReassignCounter.objects.filter(transformation_id=demo.FAILING_CONFIG).values_list("count", flat=True))
    assert counts == {Policy.current().max_reassign}


def test_the_failing_configuration_fails_every_job_the_same_way(played):
    jobs = SimJob.objects.filter(job_group=f"{demo.FAILING_CONFIG:08d}", status="Failed")
    errors = Counter((j.minor_status, j.application_status) for j in jobs)
    assert len(errors) == 1 and sum(errors.values()) >= 24
    assert not SimJob.objects.filter(job_group=f"{demo.FAILING_CONFIG:08d}", status="Done").exists()


def test_the_black_hole_fails_far_more_often_than_the_other_sites(played):
    finished = SimJob.objects.filter(status__in=["Done", "Failed", "Killed"]).exclude(
        job_group__in=[f"{t:08d}" for t in (demo.FAILING_CONFIG, demo.FLUSH_LIMITED)])
    # Jobs run by advance (not the loaded history, which has its own site mix).
    ran = finished.filter(id__gt=demo_last_loaded_job())
    hole, others = ran.filter(site=demo.BLACK_HOLE), ran.exclude(site=demo.BLACK_HOLE)
    assert hole.count() >= 10 and others.count() >= 40

    def failed_share(jobs) -> float:
        return jobs.exclude(status="Done").count() / jobs.count()

    assert failed_share(hole) > 0.6
    assert failed_share(others) < 0.3


def demo_last_loaded_job() -> int:
    return max(j["id"] for j in demo.demo_scenario(files=100).jobs)


def test_the_stalled_step_never_moves(played):
    jobs = SimJob.objects.filter(job_group=f"{demo.STALLED:08d}")
    assert jobs.count() == 4 and set(jobs.values_list("status", flat=True)) == {"Running"}


def test_productions_keep_arriving_until_the_limit():
    demo.load_demo(files=100)
    first = demo.arrive(files=50, limit=2)
    second = demo.arrive(files=50, limit=2)
    assert (first, second) == (demo.FIRST_ARRIVAL_PRODUCTION, demo.FIRST_ARRIVAL_PRODUCTION + 1)
    assert demo.arrive(files=50, limit=2) is None
    assert SimProduction.objects.filter(id__gte=demo.FIRST_ARRIVAL_PRODUCTION).count() == 2
    steps = SimTransformation.objects.filter(production=second).order_by("id")
    assert [s.parent for s in steps] == [-1, steps[0].id, steps[1].id]
    # The engine takes a new production up like any other.
    ensure_policies(15)
    advance(max_jobs=None)
    cycle()
    assert TransformationState.objects.filter(production_id=second).count() == 3


def test_the_second_policy_shows_propose_mode_with_proposals_waiting(settings):
    ensure_policies(15)
    assert Policy.current().name == "default" and Policy.current().mode == Policy.Mode.ACT
    demo.load_demo(files=100)
    advance(max_jobs=None)
    cycle()
    Policy.objects.update(enabled=False)
    Policy.objects.filter(name=PROPOSE_POLICY).update(enabled=True)
    for _ in range(3):
        advance(max_jobs=None)
        cycle()
    assert ActionLog.objects.filter(state=ActionLog.State.PROPOSED).exists()
