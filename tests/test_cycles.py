"""The schedule and the one settle path: which cycles count for PollingTime, and that every way a
proposal is settled announces it (``action_finished``)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from failover import actions, cycles
from failover.models import ActionLog, Cycle
from failover.signals import action_finished
from tests.factories import seed_policy

pytestmark = pytest.mark.django_db(databases="__all__")


def test_a_button_press_does_not_postpone_the_next_scheduled_cycle(time_machine):
    # Defect 1: is_due ignored only "user" and "cli" cycles, so an operator's button (trigger
    # "web") counted as the last cycle and postponed beat's next one by a whole PollingTime.
    seed_policy(polling_time=600)
    time_machine.move_to("2026-11-25 10:00:00Z", tick=False)
    Cycle.objects.create(trigger=Cycle.Trigger.BEAT, state=Cycle.State.FINISHED)
    time_machine.move_to("2026-11-25 10:09:00Z", tick=False)
    Cycle.objects.create(trigger=Cycle.Trigger.WEB, state=Cycle.State.FINISHED)
    time_machine.move_to("2026-11-25 10:10:01Z", tick=False)
    due, why = cycles.is_due()
    assert due, why


def test_a_scheduled_cycle_is_beats_or_a_fanned_out_one(time_machine):
    for trigger in Cycle.Trigger.values:
        Cycle.objects.create(trigger=trigger)
    assert set(Cycle.objects.scheduled().values_list("trigger", flat=True)) == {"beat", "cli-fanout"}


def test_a_cycle_is_stuck_only_while_running_past_the_limit(settings, time_machine):
    settings.FAILOVER_STUCK_SECONDS = 120
    time_machine.move_to("2026-11-25 10:00:00Z", tick=False)
    running = Cycle.objects.create(trigger=Cycle.Trigger.BEAT)
    done = Cycle.objects.create(trigger=Cycle.Trigger.BEAT, state=Cycle.State.FINISHED)
    time_machine.move_to("2026-11-25 10:01:59Z", tick=False)
    assert not running.is_stuck(polling_time=60)
    assert running.is_stuck(polling_time=60, now=running.started + Cycle.stuck_after(60))
    time_machine.move_to("2026-11-25 10:05:00Z", tick=False)
    assert running.is_stuck(polling_time=60) and not done.is_stuck(polling_time=60)
    assert not running.is_stuck(polling_time=600)  # PollingTime, when longer, is the limit


@pytest.fixture
def announced():
    ids: list[int] = []

    def receiver(sender, action_id=None, **kwargs):
        ids.append(action_id)

    action_finished.connect(receiver, weak=False)
    yield ids
    action_finished.disconnect(receiver)


def test_a_rejection_announces_the_settled_proposal(announced):
    # Defect 2: actions.reject settled a proposal without sending action_finished, so a rejection
    # reached OpenSearch only through the sweep.
    alice = get_user_model().objects.create_user("alice")
    proposal = ActionLog.objects.create(transformation_id=4847, kind="flush", state=ActionLog.State.PROPOSED)
    [result] = actions.reject([proposal], user=alice, reason="not now")
    assert result.state == "rejected"
    assert announced == [proposal.pk]
    # A second rejection changes nothing and announces nothing.
    [again] = actions.reject([proposal], user=alice)
    assert again.state == "stale" and announced == [proposal.pk]


def test_settle_moves_an_entry_once_and_announces_it_once(announced):
    action = ActionLog.objects.create(transformation_id=4847, kind="sync")
    assert action.settle(ActionLog.State.DONE, "2 tasks set Done")
    assert not action.settle(ActionLog.State.FAILED, "late")
    assert action.state == "done" and action.outcome == "2 tasks set Done" and action.finished is not None
    assert announced == [action.pk]
