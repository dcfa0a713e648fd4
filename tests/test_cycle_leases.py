"""Cycle items as the work: claimed for a lease, renewed, and put back by beat when the worker is gone."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from failover import cycles, leases, locks
from failover.engine import Engine
from failover.models import ActionLog, Cycle, CycleItem, TransformationState
from tests.factories import chain_scenario, load_scenario, seed_policy

pytestmark = pytest.mark.django_db(databases="__all__")

LEASE = 60


@pytest.fixture(autouse=True)
def lease(settings):
    settings.FAILOVER_LEASE_SECONDS = LEASE


@pytest.fixture
def eager():
    import failover.tasks  # noqa: F401 - registers the tasks by name
    from dashboard.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def a_cycle() -> Cycle:
    """A fanned-out cycle over the chain production, recorded but not yet sent to any worker."""
    seed_policy()
    load_scenario(chain_scenario())
    return cycles.start_cycle(trigger="beat")  # inside the test's transaction: nothing is enqueued


def item(cycle: Cycle, tid: int) -> CycleItem:
    return CycleItem.objects.get(cycle=cycle, transformation_id=tid)


def test_items_record_their_place_in_the_chain():
    cycle = a_cycle()
    rows = list(CycleItem.objects.filter(cycle=cycle).order_by("position").values_list(
        "transformation_id", "parent_id", "position", "lease_until"))
    assert rows == [(4846, None, 0, None), (4847, 4846, 1, None), (4848, 4847, 2, None)]


def test_only_one_attempt_holds_an_item_until_its_lease_runs_out(time_machine):
    time_machine.move_to("2026-12-01 10:00:00Z", tick=False)
    cycle = a_cycle()
    first = item(cycle, 4846)
    assert cycles.claim(first, "w1@host") == 1
    # A second copy of the task (a redelivered message) while the first attempt's lease is live.
    assert cycles.claim(item(cycle, 4846), "w2@host") is None
    time_machine.move_to("2026-12-01 10:00:59Z", tick=False)
    assert cycles.claim(item(cycle, 4846), "w2@host") is None
    time_machine.move_to("2026-12-01 10:01:01Z", tick=False)
    assert cycles.claim(item(cycle, 4846), "w2@host") == 2
    claimed = item(cycle, 4846)
    assert claimed.worker == "w2@host" and claimed.attempts == 2
    assert claimed.lease_until == timezone.now() + timedelta(seconds=LEASE)


def test_renewing_extends_only_the_own_attempts_lease(time_machine):
    time_machine.move_to("2026-12-01 10:00:00Z", tick=False)
    cycle = a_cycle()
    assert cycles.claim(item(cycle, 4846), "w1") == 1
    time_machine.move_to("2026-12-01 10:00:40Z", tick=False)
    assert cycles.renew(item(cycle, 4846).pk, 1) == 1
    assert item(cycle, 4846).lease_until == timezone.now() + timedelta(seconds=LEASE)
    # A renewal of a superseded attempt changes nothing.
    assert cycles.renew(item(cycle, 4846).pk, 2) == 0


def test_an_item_of_a_worker_that_is_gone_is_put_back_with_the_rest_of_its_chain(time_machine):
    time_machine.move_to("2026-12-01 10:00:00Z", tick=False)
    cycle = a_cycle()
    assert cycles.claim(item(cycle, 4846), "w1") == 1  # then the worker is SIGKILLed
    sent = []
    # Within the lease: the worker may still be working.
    time_machine.move_to("2026-12-01 10:00:59Z", tick=False)
    assert cycles.requeue_expired(send=sent.append) == [] and sent == []
    time_machine.move_to("2026-12-01 10:01:01Z", tick=False)
    assert cycles.requeue_expired(send=sent.append) == [item(cycle, 4846).pk]
    (signature,) = sent
    # The production goes back as one group task, its steps parents first.
    assert (signature.task, signature.args) == ("failover.treat_group", (cycle.pk, [4846, 4847, 4848]))
    head = item(cycle, 4846)
    assert head.requeued == 1 and head.requeued_at == timezone.now()
    # Not again on the next ticks while the copy waits for a worker: once per lease at most.
    time_machine.move_to("2026-12-01 10:01:30Z", tick=False)
    assert cycles.requeue_expired(send=sent.append) == [] and len(sent) == 1
    time_machine.move_to("2026-12-01 10:02:02Z", tick=False)
    assert cycles.requeue_expired(send=sent.append) == [head.pk] and len(sent) == 2


def test_a_chain_is_put_back_from_the_item_that_was_lost(time_machine):
    time_machine.move_to("2026-12-01 10:00:00Z", tick=False)
    cycle = a_cycle()
    CycleItem.objects.filter(cycle=cycle, transformation_id=4846).update(state="ok")
    assert cycles.claim(item(cycle, 4847), "w1") == 1
    time_machine.move_to("2026-12-01 10:02:00Z", tick=False)
    sent = []
    cycles.requeue_expired(send=sent.append)
    assert [s.args[1] for s in sent] == [[4847, 4848]]


def test_nothing_is_put_back_for_finished_or_stuck_cycles(time_machine):
    time_machine.move_to("2026-12-01 10:00:00Z", tick=False)
    cycle = a_cycle()
    cycles.claim(item(cycle, 4846), "w1")
    cycles.close_stuck(cycle)
    time_machine.move_to("2026-12-01 10:05:00Z", tick=False)
    sent = []
    assert cycles.requeue_expired(send=sent.append) == [] and sent == []


def test_the_put_back_chain_finishes_the_cycle_and_acts_once(time_machine, eager):
    time_machine.move_to("2026-12-01 10:00:00Z", tick=True)
    cycle = a_cycle()
    # The first attempt died after taking the transformation's lock.
    assert cycles.claim(item(cycle, 4846), "w1") == 1
    assert locks.acquire(4846, f"cycle-{cycle.pk}-t4846-a1", LEASE)
    time_machine.move_to("2026-12-01 10:01:05Z", tick=True)
    assert cycles.requeue_expired() == [item(cycle, 4846).pk]  # runs the chain here (eager)
    cycle.refresh_from_db()
    assert cycle.state == "finished", cycle.outcomes
    states = dict(CycleItem.objects.filter(cycle=cycle).values_list("transformation_id", "state"))
    assert states == {4846: "ok", 4847: "ok", 4848: "ok"}
    assert item(cycle, 4846).attempts == 2 and item(cycle, 4847).attempts == 1
    done = ActionLog.objects.filter(state="done").exclude(kind="sync").values_list("transformation_id", "kind")
    assert sorted(done) == sorted(set(done)) and (4846, "complete") in done
    assert not TransformationState.objects.exclude(locked_by="").exists()


def test_a_copy_of_a_task_whose_item_is_held_stops_its_chain(eager):
    cycle = a_cycle()
    assert cycles.claim(item(cycle, 4846), "w1") == 1
    from failover.tasks import treat_transformation

    result = treat_transformation.si(cycle.pk, 4846, None).apply()
    assert result.get() == cycles.HELD
    assert item(cycle, 4846).attempts == 1 and item(cycle, 4847).attempts == 0


def test_a_copy_of_a_group_leaves_a_held_production_to_its_holder(eager):
    # A redelivered group task while the first attempt holds the production's first step: the
    # copy takes none of its steps (the holder carries them on, parents first).
    cycle = a_cycle()
    assert cycles.claim(item(cycle, 4846), "w1") == 1
    from failover.tasks import treat_group

    result = treat_group.si(cycle.pk, [4846, 4847, 4848]).apply()
    assert "3 held by another attempt" in result.get()
    assert [item(cycle, t).attempts for t in (4846, 4847, 4848)] == [1, 0, 0]
    assert not ActionLog.objects.exists()


def test_a_recovery_takes_over_the_lock_of_a_holder_that_is_gone(time_machine):
    # Issue 12, 11: a crashed cycle's lock (owner cycle-1-t4847) must not make the recovery skip.
    time_machine.move_to("2026-12-01 10:00:00Z", tick=False)
    seed_policy()
    load_scenario(chain_scenario())
    assert locks.acquire(4847, "cycle-1-t4847-a1", LEASE)
    time_machine.move_to("2026-12-01 10:00:30Z", tick=False)
    held = Engine(trigger="beat").run_cycle([4847])
    assert held.outcomes[4847].state == "skipped" and "cycle-1-t4847-a1" in held.outcomes[4847].message
    time_machine.move_to("2026-12-01 10:01:01Z", tick=False)
    recovered = Engine(trigger="beat").run_cycle([4847])
    assert recovered.outcomes[4847].state == "ok"


def test_the_engine_takes_its_locks_for_the_lease(time_machine, monkeypatch):
    time_machine.move_to("2026-12-01 10:00:00Z", tick=False)
    seed_policy()
    load_scenario(chain_scenario())
    seen = []
    real = locks.acquire
    def acquire(tid, owner, seconds=None):
        seen.append(seconds)
        return real(tid, owner, seconds)

    monkeypatch.setattr(locks, "acquire", acquire)
    Engine(trigger="beat").run_cycle([4847])
    assert seen == [LEASE]


def test_renew_extends_every_lock_of_the_owner_only(time_machine):
    time_machine.move_to("2026-12-01 10:00:00Z", tick=False)
    assert locks.acquire(1, "me", 10) and locks.acquire(2, "me", 10) and locks.acquire(3, "other", 10)
    time_machine.move_to("2026-12-01 10:00:05Z", tick=False)
    assert locks.renew("me", LEASE) == 2
    until = dict(TransformationState.objects.values_list("transformation_id", "locked_until"))
    assert until[1] == until[2] == timezone.now() + timedelta(seconds=LEASE)
    assert until[3] < until[1]


def test_the_keeper_renews_until_its_block_ends_and_survives_a_failed_renewal(caplog):
    calls = []
    failed = threading.Event()

    def renew():
        calls.append(1)
        if len(calls) == 2:
            failed.set()
            raise RuntimeError("database is locked")

    with leases.Keeper(renew, interval=0.01, name="test"):
        assert failed.wait(30)
        while len(calls) < 4:
            failed.wait(0.01)
    stopped_at = len(calls)
    assert stopped_at >= 4
    assert "renewing test failed: database is locked" in caplog.text
    threading.Event().wait(0.1)
    assert len(calls) == stopped_at  # no renewal after the block


def test_a_keeper_with_nothing_to_renew_starts_no_thread():
    before = threading.active_count()
    with leases.Keeper():
        assert threading.active_count() == before


def test_a_chain_whose_next_step_was_never_sent_is_put_back(time_machine):
    # The worker finished 4846 and died before sending 4847's task (on Redis that message then
    # stays unacknowledged for an hour).
    time_machine.move_to("2026-12-01 10:00:00Z", tick=False)
    cycle = a_cycle()
    CycleItem.objects.filter(cycle=cycle, transformation_id=4846).update(state="ok", finished=timezone.now())
    sent = []
    time_machine.move_to("2026-12-01 10:00:59Z", tick=False)
    assert cycles.requeue_expired(send=sent.append) == []  # the message may just be waiting its turn
    time_machine.move_to("2026-12-01 10:01:01Z", tick=False)
    assert cycles.requeue_expired(send=sent.append) == [item(cycle, 4847).pk]
    assert [s.args[1] for s in sent] == [[4847, 4848]]
    assert cycles.requeue_expired(send=sent.append) == []  # once per lease


def test_chain_heads_nobody_took_yet_are_left_to_the_broker(time_machine):
    time_machine.move_to("2026-12-01 10:00:00Z", tick=False)
    a_cycle()
    time_machine.move_to("2026-12-01 10:10:00Z", tick=False)
    sent = []
    assert cycles.requeue_expired(send=sent.append) == [] and sent == []
