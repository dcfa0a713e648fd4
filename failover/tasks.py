"""Celery tasks: thin wrappers around the engine and the fan-out (failover/cycles.py)."""

from __future__ import annotations

import logging
import socket

from celery import shared_task
from django.conf import settings

from failover import actions, cycles, maintenance
from failover.engine import Engine
from failover.models import Cycle, Heartbeat
from failover.outcomes import count

log = logging.getLogger(__name__)


@shared_task(name="failover.tick", ignore_result=True)
def tick() -> str:
    """Beat's heartbeat: start a cycle when the policy's PollingTime has passed.

    Beat ticks every FAILOVER_TICK_SECONDS with ``expires`` set, so ticks missed while workers
    were busy are dropped rather than piled up, and an edited PollingTime applies at once.
    """
    Heartbeat.beat("beat")
    # The work of workers that are gone goes back on the queue first (a tick plus the lease).
    requeued = cycles.requeue_expired()
    stalled = actions.requeue_stalled(run_action_request.delay)
    due, why = cycles.is_due()
    if requeued:
        why = f"{why}; {count(len(requeued), 'chain')} of gone workers put back on the queue"
    if stalled:
        why = f"{why}; {count(len(stalled), 'operator action request')} put back on the queue"
    if not due:
        return why
    if settings.FAILOVER_FANOUT:
        cycle = cycles.start_cycle(trigger=Cycle.Trigger.BEAT)
        return f"cycle {cycle.pk} started ({why})"
    run_cycle.delay(Cycle.Trigger.BEAT)
    return f"single-task cycle queued ({why})"


@shared_task(name="failover.run_cycle", ignore_result=True, acks_late=True)
def run_cycle(trigger: str = Cycle.Trigger.BEAT) -> str:
    """The whole cycle in one task: the same engine as ``manage.py failover cycle``."""
    result = Engine(trigger=trigger).run_cycle()
    Heartbeat.beat("cycle", f"cycle {result.cycle_id} finished")
    return result.summary()


@shared_task(
    name=cycles.TREAT_TASK,
    bind=True,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def treat_transformation(self, cycle_id: int, transformation_id: int, parent_id: int | None = None) -> str:
    """One transformation's turn, as cycles fanned out before groups sent it (a message of such a
    cycle may still wait on the broker after an upgrade). Idempotent: see cycles.treat_in_cycle."""
    worker = f"{self.request.hostname or socket.gethostname()}"
    Heartbeat.beat(f"worker:{worker}")
    outcome = cycles.treat_in_cycle(cycle_id, transformation_id, parent_id, worker=worker)
    if outcome == cycles.HELD:
        # Another attempt works on this item and carries the rest of the chain on: a copy of this
        # task (a redelivered message, or one put back by beat) stops here.
        self.request.chain = None
    return outcome


@shared_task(
    name=cycles.GROUP_TASK,
    bind=True,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def treat_group(self, cycle_id: int, transformation_ids: list[int], carried: dict | None = None) -> str:
    """A group's turn (whole productions, parents first) in a fanned-out cycle: cycles.treat_group.
    ``carried``: what the cycle's start read for the group (absent from a message beat put back)."""
    worker = f"{self.request.hostname or socket.gethostname()}"
    Heartbeat.beat(f"worker:{worker}")
    return cycles.treat_group(cycle_id, [int(t) for t in transformation_ids], worker=worker, carried=carried)


@shared_task(name="failover.run_action_request", bind=True, ignore_result=True, acks_late=True,
             reject_on_worker_lost=True, max_retries=None)
def run_action_request(self, request_id: int) -> str:
    """An operator's confirmed action (failover.models.ActionRequest). Idempotent: see actions.run_request.

    A copy of the message (redelivered after its worker died) that finds the request held under a
    live lease looks again one lease later: by then the holder has finished it, or is gone and
    its lease ran out, and this copy takes it over.
    """
    outcome = actions.run_request(request_id)
    if outcome == actions.HELD:
        raise self.retry(countdown=settings.FAILOVER_LEASE_SECONDS + 1)
    return outcome


@shared_task(name="failover.prune", ignore_result=True)
def prune() -> str:
    return str(maintenance.prune(settings.FAILOVER_KEEP_DAYS))


@shared_task(name="failover.recovery_tick", ignore_result=True)
def recovery_tick() -> str:
    """Start the recovery checks when the recovery policy's PollingTime has passed since the last
    start. Only with a stored, enabled recovery policy (``failover import-config`` of a cfg with a
    DataRecoveryAgent section, or the admin): without one, recovery runs only when asked."""
    from datetime import timedelta

    from django.utils import timezone

    from failover.models import RecoveryPolicy

    policy = RecoveryPolicy.objects.filter(enabled=True).order_by("id").first()
    if policy is None:
        return "no recovery policy stored"
    last = Heartbeat.objects.filter(name="recovery").first()
    now = timezone.now()
    if last is not None and now - last.at < timedelta(seconds=policy.polling_time):
        return f"next recovery check in {(last.at + timedelta(seconds=policy.polling_time) - now).seconds} s"
    Heartbeat.beat("recovery", "started")
    run_recovery.delay()
    return f"recovery queued (PollingTime {policy.polling_time} s)"


@shared_task(name="failover.run_recovery", ignore_result=True, acks_late=True)
def run_recovery() -> str:
    """One recovery check over the recovery policy's selection, in its mode (failover/cycle/recover.py)."""
    from failover.cycle.recover import run_recovery as run

    result = run()
    Heartbeat.beat("recovery", result.summary())
    return result.summary()
