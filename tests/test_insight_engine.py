"""Insight through the engine on the simulated DIRAC: the site hint over cycles, the history the
cycle writes, forecasts on frozen-time histories, alerts' ages kept across cycles, pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from failover import attention, blockers, history
from failover.domain import FileCounts, TransformationInfo
from failover.maintenance import prune
from failover.models import BlockerRecord, ProgressSample, TransformationState
from tests.factories import (
    BLACKHOLE as BAD,
    BLACKHOLE_TID as TID,
    GOOD_SITES as GOOD,
    blackhole_fails as fails,
    blackhole_scenario as scenario,
    load_scenario,
    run_cycle,
    seed_policy,
)

pytestmark = pytest.mark.django_db(databases="__all__")

def hints() -> list:
    return [b for b in attention.blockers_of(TID) if b.code == blockers.SITE_HINT]


def test_the_site_hint_appears_after_the_cycles_that_see_it_names_that_site_only_and_clears(settings):
    settings.FAILOVER_INSIGHT_WINDOW_JOBS = 400
    seed_policy(reassign_types=[])
    # Cycle 1: 5 finished jobs per site: too few to say anything.
    load_scenario(scenario(per_site=200, final=5))
    run_cycle(["sync"])
    assert hints() == []
    # Cycle 2: 100 finished jobs per site, 60 % failed at BAD against 5 % elsewhere.
    load_scenario(scenario(per_site=200, final=100))
    run_cycle(["sync"])
    (hint,) = hints()
    d = hint.details
    assert (d["site"], d["failed"], d["total"], d["rest_failed"], d["rest_total"]) == (BAD, 60, 100, 15, 300)
    assert d["signature"] == ("Application Finished With Errors | "
                              "Operation not permitted ( N : cta-prod-setup-software Exited With Status N)")
    began = hint.since
    item = attention.items_for([TransformationState.objects.get(pk=TID)])[TID]
    assert [i.code for i in item] == [blockers.SITE_HINT] and BAD in item[0].text
    # Cycle 3: still failing, more jobs (the latest 400 finished are looked at): the same hint, the
    # same start.
    load_scenario(scenario(per_site=200, final=130))
    run_cycle(["sync"])
    (hint,) = hints()
    assert hint.since == began and (hint.details["failed"], hint.details["total"]) == (60, 100)
    # Cycle 4: BAD's jobs from the 100th on succeed; once the latest 400 finished jobs are mostly
    # after the recovery, the hint is gone.
    load_scenario(scenario(per_site=200, final=200, recovered_from=100))
    run_cycle(["sync"])
    assert hints() == []


def test_a_cycle_writes_a_sample_when_something_changed_and_prune_drops_old_ones(time_machine):
    seed_policy(reassign_types=[])
    time_machine.move_to(datetime(2026, 1, 1, tzinfo=UTC), tick=False)
    load_scenario(scenario(per_site=10, final=5))
    run_cycle(["sync"])
    time_machine.move_to(datetime(2026, 1, 1, 1, tzinfo=UTC), tick=False)
    run_cycle(["sync"])                       # nothing changed: no second sample
    assert ProgressSample.objects.filter(transformation_id=TID).count() == 1
    time_machine.move_to(datetime(2026, 1, 1, 2, tzinfo=UTC), tick=False)
    load_scenario(scenario(per_site=10, final=8))
    run_cycle(["sync"])
    first, last = ProgressSample.objects.filter(transformation_id=TID)
    done = sum(1 for s in (BAD, *GOOD) for k in range(8) if not fails(s, k, 0.6))
    assert (first.at.hour, last.at.hour) == (0, 2)
    assert (last.processed, last.assigned, last.unused, last.jobs_done, last.jobs_failed) == (
        done, 40 - done, 0, done, 32 - done)
    time_machine.move_to(datetime(2026, 3, 1, tzinfo=UTC), tick=False)
    result = prune(30)
    assert ProgressSample.objects.filter(transformation_id=TID).count() == 0
    assert "2 history samples" in str(result)


T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def built_history(tid: int, points, status="Active"):
    """ProgressSample rows an hour apart from T0: each point (unused, assigned, processed)."""
    for i, (u, a, p) in enumerate(points):
        ProgressSample.objects.create(transformation_id=tid, at=T0 + timedelta(hours=i), status=status, unused=u,
                                      assigned=a, processed=p, jobs_done=p)


def info(tid, status="Active", parent=None):
    return TransformationInfo(tid, f"t{tid}", "DataReprocessing", status, 1, 7 if parent else None, parent)


def test_forecasts_match_their_frozen_time_history_exactly(time_machine):
    # 12 files an hour over five cycles; at T0+5h 60 files remain: Processed at T0+10h.
    built_history(1, [(120 - 12 * i, 0, 12 * i) for i in range(5)])
    time_machine.move_to(T0 + timedelta(hours=5), tick=False)
    obs = history.observe(info(1), FileCounts({"Unused": 50, "Assigned": 10, "Processed": 60}), [], [], None, None)
    assert obs.forecast.basis == "forecast" and obs.forecast.rate == 12.0
    assert obs.fields["eta"] == obs.fields["eta_low"] == obs.fields["eta_high"] == T0 + timedelta(hours=10)
    assert obs.blockers == []


def test_a_stalled_history_says_no_progress_since_and_alerts(time_machine, settings):
    settings.FAILOVER_STALL_HOURS = 6
    built_history(2, [(20, 5, 3), (20, 5, 4)] + [(20, 5, 4)] * 8)
    time_machine.move_to(T0 + timedelta(hours=10), tick=False)
    obs = history.observe(info(2), FileCounts({"Unused": 20, "Assigned": 5, "Processed": 4}), [], [], None, None)
    assert obs.fields["eta"] is None and obs.fields["eta_basis"] == "no_basis"
    assert obs.fields["eta_note"] == "no progress since 2026-03-01 13:00 UTC"
    (alert,) = obs.blockers
    assert alert.code == blockers.STALLED and alert.since == T0 + timedelta(hours=1)


def test_too_few_cycles_is_no_basis(time_machine):
    built_history(3, [(20, 0, 0)])
    time_machine.move_to(T0 + timedelta(hours=1), tick=False)
    obs = history.observe(info(3), FileCounts({"Unused": 19, "Processed": 1}), [], [], None, None)
    assert obs.fields["eta"] is None and obs.fields["eta_note"].startswith("no basis: 2 of 3 cycles")


def test_a_child_is_forecast_after_its_parent_from_the_parents_row(time_machine):
    built_history(10, [(100 - 10 * i, 0, 10 * i) for i in range(5)])     # parent: 60 left, 10/h -> T0+10h
    built_history(11, [(20 - 5 * i, 0, 5 * i) for i in range(4)])         # child: 5 left, 5/h -> T0+4h
    time_machine.move_to(T0 + timedelta(hours=4), tick=False)
    parent = history.observe(info(10), FileCounts({"Unused": 60, "Processed": 40}), [], [], None, None)
    TransformationState.objects.create(transformation_id=10, status="Active", **parent.fields)
    assert parent.fields["eta"] == T0 + timedelta(hours=10)
    time_machine.move_to(T0 + timedelta(hours=3), tick=False)
    child = history.observe(info(11, parent=10), FileCounts({"Unused": 5, "Processed": 15}), [], [],
                            info(10), None)
    assert child.fields["eta"] == T0 + timedelta(hours=10) and child.fields["eta_basis"] == "after_parent"
    steps = [TransformationState(transformation_id=10, parent_id=-1, **parent.fields),
             TransformationState(transformation_id=11, parent_id=10, **child.fields)]
    f, step = history.production_forecast(steps)
    assert step == 11 and f.eta == T0 + timedelta(hours=10)


def test_an_items_age_is_kept_while_it_lasts_and_restarts_after_it_cleared(time_machine):
    time_machine.move_to(T0, tick=False)
    b = blockers.Blocker(blockers.MANY_FAILED, "26 of 50 failed", count=26)
    attention.save_blockers(7, [b])
    time_machine.move_to(T0 + timedelta(hours=2), tick=False)
    attention.save_blockers(7, [blockers.Blocker(blockers.MANY_FAILED, "27 of 50 failed", count=27)])
    (row,) = BlockerRecord.objects.filter(transformation_id=7)
    assert row.since == T0 and row.text == "27 of 50 failed"
    (item,) = attention.items_for([TransformationState(transformation_id=7)])[7]
    assert item.age() == timedelta(hours=2)
    attention.save_blockers(7, [])
    time_machine.move_to(T0 + timedelta(hours=3), tick=False)
    attention.save_blockers(7, [b])
    assert BlockerRecord.objects.get(transformation_id=7).since == T0 + timedelta(hours=3)


def test_a_batch_read_ahead_gives_each_transformation_its_latest_samples_once():
    built_history(21, [(10, 0, i) for i in range(5)])
    built_history(22, [(10, 0, 2 * i) for i in range(4)])
    direct = {tid: history.samples(tid, limit=3) for tid in (21, 22)}
    history.prefetch([21, 22, 23], limit=3)
    assert history._ahead[21] == direct[21] and [s.processed for s in direct[21]] == [2, 3, 4]
    assert [history.samples(tid) for tid in (21, 22, 23)] == [direct[21], direct[22], []]
    assert history._ahead == {}


def test_a_final_transformation_is_done_whatever_its_files(time_machine):
    time_machine.move_to(T0, tick=False)
    obs = history.observe(info(4, status="Completed"), FileCounts({"Unused": 3, "Processed": 7}), [], [], None, None)
    assert (obs.fields["eta_basis"], obs.fields["eta_note"], obs.fields["eta"]) == ("done", "Completed", T0)
