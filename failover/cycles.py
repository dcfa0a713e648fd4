"""Fanned-out cycles: one Celery task per transformation, a chain per production.

The cycle task reads the selection once, records the cycle and one ``CycleItem`` per
transformation, and only after that commit enqueues the work: a chain per production (parents
before children, so a child sees its parent's state after the parent's turn) and productions in
parallel. Each transformation task re-reads what it needs, takes the transformation's lock, acts
through the engine and records its outcome; the last one to finish closes the cycle.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from celery import chain, signature
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from failover import rules
from failover.backends import get_backend
from failover.engine import Engine, topological
from failover.errors import FailoverError
from failover.models import ActionLog, Cycle, CycleItem, Heartbeat, Policy

log = logging.getLogger(__name__)

# The Celery task that treats one transformation of a fanned-out cycle (failover/tasks.py).
TREAT_TASK = "failover.treat_transformation"


def is_due(now=None) -> tuple[bool, str]:
    """Whether beat's tick should start a cycle now, and why (or why not)."""
    now = now or timezone.now()
    policy = Policy.current()
    last = Cycle.objects.scheduled().order_by("-started").first()
    if last is None:
        return True, "no cycle yet"
    if last.state == Cycle.State.RUNNING:
        if not last.is_stuck(policy.polling_time, now):
            return False, f"cycle {last.pk} still running"
        close_stuck(last)
        return True, f"cycle {last.pk} was stuck"
    elapsed = (now - last.started).total_seconds()
    if elapsed < policy.polling_time:
        return False, f"next cycle in {policy.polling_time - elapsed:.0f} s"
    return True, f"PollingTime {policy.polling_time} s passed"


def close_stuck(cycle: Cycle) -> None:
    lost = CycleItem.objects.filter(cycle=cycle, state=CycleItem.State.QUEUED).update(
        state=CycleItem.State.LOST, outcome="no worker reported on it", finished=timezone.now()
    )
    Cycle.objects.filter(pk=cycle.pk, state=Cycle.State.RUNNING).update(
        state=Cycle.State.FAILED,
        finished=timezone.now(),
        message=f"stuck: {lost} transformations never reported; their actions are reconciled next cycle",
    )


def start_cycle(trigger: str = Cycle.Trigger.BEAT) -> Cycle:
    """Read the selection, record the cycle and its items, and enqueue the work after commit."""
    policy = Policy.current()
    engine = Engine(get_backend(), policy, trigger=trigger)
    try:
        selected = engine.select()
    except FailoverError as exc:
        cycle = Cycle.objects.create(
            trigger=trigger, backend=engine.backend.name, state=Cycle.State.FAILED, finished=timezone.now(),
            message=f"cycle stopped: {exc}", calls=engine.backend.calls.snapshot(), errors=1,
        )
        log.error("cycle %s stopped: %s", cycle.pk, exc)
        return cycle
    chains: dict[object, list] = defaultdict(list)
    for t in topological(selected):
        # A production's steps in one chain; a transformation outside productions on its own.
        chains[t.production if t.production is not None else ("alone", t.id)].append(t)
    with transaction.atomic():
        cycle = Cycle.objects.create(
            trigger=trigger,
            backend=engine.backend.name,
            transformations=len(selected),
            calls=engine.backend.calls.snapshot(),
        )
        CycleItem.objects.bulk_create(
            CycleItem(cycle=cycle, transformation_id=t.id, production_id=t.production) for t in selected
        )
        if not selected:
            finish_if_complete(cycle.pk)

        def enqueue() -> None:
            for steps in chains.values():
                # By the task's name (failover/tasks.py), which imports this module.
                signatures = [
                    signature(TREAT_TASK, args=(cycle.pk, t.id, rules.parent_of(t)), immutable=True) for t in steps
                ]
                (chain(*signatures) if len(signatures) > 1 else signatures[0]).apply_async()

        transaction.on_commit(enqueue)
    return cycle


def treat_in_cycle(cycle_id: int, transformation_id: int, parent_id: int | None, worker: str = "") -> str:
    """One transformation's turn in a fanned-out cycle. Safe to run twice: a finished item is
    left alone, and the lock owner is derived from the item so a redelivered task takes its own
    lock back."""
    item = (
        CycleItem.objects.select_related("cycle").filter(cycle_id=cycle_id, transformation_id=transformation_id).first()
    )
    if item is None or item.state != CycleItem.State.QUEUED:
        return "already done"
    CycleItem.objects.filter(pk=item.pk).update(
        started=timezone.now(), worker=worker[:255], attempts=item.attempts + 1
    )
    engine = Engine(trigger=item.cycle.trigger, lock_owner=f"cycle-{cycle_id}-t{transformation_id}")
    result = engine.run_cycle(
        [transformation_id], cycle=item.cycle, selected_only=True, also_read=[parent_id] if parent_id else ()
    )
    outcome = result.outcomes.get(transformation_id)
    if outcome is None:
        state, text = CycleItem.State.ERROR, result.message or "not treated"
    else:
        state = {"ok": CycleItem.State.OK, "skipped": CycleItem.State.SKIPPED}.get(outcome.state, CycleItem.State.ERROR)
        kinds = ", ".join(d.kind for d in outcome.decisions)
        text = outcome.message or (f"did {kinds}" if kinds else "nothing to do")
    CycleItem.objects.filter(pk=item.pk, state=CycleItem.State.QUEUED).update(
        state=state, outcome=text, finished=timezone.now(), calls=sum(result.calls.values())
    )
    finish_if_complete(cycle_id)
    return f"{state}: {text}"


def finish_if_complete(cycle_id: int) -> bool:
    if CycleItem.objects.filter(cycle_id=cycle_id, state=CycleItem.State.QUEUED).exists():
        return False
    items = CycleItem.objects.filter(cycle_id=cycle_id)
    by_state = dict(items.values_list("state").annotate(n=Count("id")))
    calls = items.aggregate(n=Sum("calls"))["n"] or 0
    cycle = Cycle.objects.get(pk=cycle_id)
    outcomes = {
        str(tid): f"{state}: {text}" for tid, state, text in items.values_list("transformation_id", "state", "outcome")
    }
    updated = Cycle.objects.filter(pk=cycle_id, state=Cycle.State.RUNNING).update(
        state=Cycle.State.FINISHED,
        finished=timezone.now(),
        errors=by_state.get(CycleItem.State.ERROR, 0),
        outcomes=outcomes,
        actions=ActionLog.objects.filter(cycle_id=cycle_id).count(),
        calls={**cycle.calls, "transformation tasks": calls},
    )
    if updated:
        Heartbeat.beat("cycle", f"cycle {cycle_id} finished")
    return bool(updated)
