"""Fanned-out cycles: one Celery task per production, its steps parents first inside it.

The cycle task reads the selection, its parents and file counts and what changed in DIRAC once
(the delta read, written to the mirror at once: ``Reading.carry``), records the cycle and one
``CycleItem`` per transformation, and only after that commit enqueues the work: one task per
production (small productions packed whole into one task, up to FAILOVER_FANOUT_GROUP
transformations; the transformations outside any production in batches of as many), each
message carrying its part of those reads (``Carried``), the tasks in parallel on the workers. So
a cycle in which nothing changed makes the calls of a one-task cycle, however many tasks it
has. A task claims its items for a lease, then runs the engine once over them: what its batch
still needs (the tasks and jobs of a mirror to fill or resync, the Assigned files of those
planned) in one call each for the whole group, each transformation under its lock, parents first (a
child sees its parent's state after the parent's turn), their writes overlapped
(FAILOVER_DIRAC_CONCURRENCY); it records each item's outcome, and the last task to finish closes
the cycle.

The items, not the broker's messages, are the work. A worker renews its item's lease while it
works; beat's tick (``requeue_expired``) puts back on the queue every item whose lease ran out
while it was still queued, so the work of a worker that is gone resumes within one tick plus
FAILOVER_LEASE_SECONDS, whatever the broker does with the lost message. A message that comes
twice is harmless: a finished item is left alone, a live lease sends the copy away (with the
rest of that production, which its holder carries on), and the transformation lock and the
reconcile of pending actions guard the actions themselves.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import timedelta

from celery import signature
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from failover import leases, rules
from failover.backends import get_backend
from failover.cycle.read import Carried
from failover.engine import Engine, topological
from failover.errors import FailoverError
from failover.models import ActionLog, Cycle, CycleItem, Heartbeat, Policy
from failover.outcomes import count

log = logging.getLogger(__name__)

# The Celery task that treats one group (whole productions) of a fanned-out cycle (failover/tasks.py).
GROUP_TASK = "failover.treat_group"
# One transformation's task, as cycles before the grouped fan-out sent it (kept for their messages).
TREAT_TASK = "failover.treat_transformation"


def pack(chains: Iterable[Sequence], size: int) -> list[list]:
    """Whole chains (a production's steps, parents first) packed in order into groups of up to
    ``size`` members; a chain longer than ``size`` is a group of its own, never split."""
    groups: list[list] = []
    current: list = []
    for steps in chains:
        if current and len(current) + len(steps) > size:
            groups.append(current)
            current = []
        current.extend(steps)
    if current:
        groups.append(current)
    return groups


def group_signature(cycle_id: int, transformation_ids: Sequence[int], carried: Carried | None = None):
    """A group's message; with ``carried``, what the cycle's start read for it (as JSON). Beat's
    requeue sends none: a group put back on the queue reads for itself."""
    args: tuple = (cycle_id, list(transformation_ids))
    if carried is not None:
        args += (carried.as_message(),)
    return signature(GROUP_TASK, args=args, immutable=True)


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
        message=f"stuck: {count(lost, 'transformation')} never reported; their actions are reconciled next cycle",
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
    # The parents, file counts and delta read of the whole selection, once; each group's part
    # travels in its message. Should that fail, every group reads its own.
    carried = None
    try:
        carried = engine.carry(selected)
    except FailoverError as exc:
        log.warning("reading the selection's file counts and changes failed (%s); each group reads its own", exc)
    groups = fanout_groups(topological(selected))
    with transaction.atomic():
        cycle = Cycle.objects.create(
            trigger=trigger,
            backend=engine.backend.name,
            transformations=len(selected),
            calls=engine.backend.calls.snapshot(),
        )
        CycleItem.objects.bulk_create(
            CycleItem(cycle=cycle, transformation_id=t.id, production_id=t.production, parent_id=rules.parent_of(t),
                      position=position)
            for position, t in enumerate(topological(selected))
        )
        if not selected:
            finish_if_complete(cycle.pk)

        def enqueue() -> None:
            for group in groups:
                ids = [t.id for t in group]
                # By the task's name (failover/tasks.py), which imports this module.
                group_signature(cycle.pk, ids, carried.part(ids) if carried is not None else None).apply_async()

        transaction.on_commit(enqueue)
    return cycle


def fanout_groups(ordered: Sequence) -> list[list]:
    """The tasks of a fanned-out cycle: productions whole (parents first), packed up to
    FAILOVER_FANOUT_GROUP members, then the transformations outside productions in batches."""
    productions: dict[object, list] = defaultdict(list)
    alone = []
    for t in ordered:
        if t.production is None:
            alone.append(t)
        else:
            productions[t.production].append(t)
    size = settings.FAILOVER_FANOUT_GROUP
    return pack(productions.values(), size) + pack([[t] for t in alone], size)


#: What treat_in_cycle returns when another attempt holds the item's lease: that attempt carries
#: the rest of the chain on, so this copy stops its own.
HELD = "held by another attempt"


def claim(item: CycleItem, worker: str) -> int | None:
    """Take a queued item for a lease; the attempt number, or None if a live lease holds it.

    A conditional UPDATE that must change exactly one row, so of two copies of one task only
    one works, and a later attempt only after the earlier one's lease ran out.
    """
    now = timezone.now()
    attempt = item.attempts + 1
    won = (
        CycleItem.objects.filter(pk=item.pk, state=CycleItem.State.QUEUED, attempts=item.attempts)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(
            started=now, worker=worker[:255], attempts=attempt,
            lease_until=now + timedelta(seconds=leases.lease_seconds()),
        )
    )
    return attempt if won == 1 else None


def renew(item_id: int, attempt: int) -> int:
    """Extend an item's lease, as long as it is still this attempt's and still queued."""
    return CycleItem.objects.filter(pk=item_id, attempts=attempt, state=CycleItem.State.QUEUED).update(
        lease_until=timezone.now() + timedelta(seconds=leases.lease_seconds())
    )


def treat_in_cycle(cycle_id: int, transformation_id: int, parent_id: int | None, worker: str = "") -> str:
    """One transformation's turn (the task of cycles fanned out before groups): a group of one."""
    return treat_group(cycle_id, [transformation_id], worker=worker, single=True)


def treat_group(cycle_id: int, transformation_ids: Sequence[int], worker: str = "", *, single: bool = False,
                carried: dict | None = None) -> str:
    """A group's turn in a fanned-out cycle: claim its items, run the engine once over them, record
    each item's outcome. Safe to run twice: a finished item is left alone; an item another attempt
    holds is left to it, with the rest of its production (that attempt carries them on, parents
    first); and each attempt has its own lock owner, so it acts only once the locks of an earlier
    attempt are free. Returns a one-line summary (``HELD`` when the first item is held, for a group
    of one). ``carried``: what the cycle's start read for the group (``Carried.as_message``),
    used by a first attempt that starts within one lease of the cycle's start; a later attempt, or
    a late one, reads for itself (statuses and file counts that old are read again)."""
    items = {
        i.transformation_id: i
        for i in CycleItem.objects.select_related("cycle").filter(cycle_id=cycle_id,
                                                                  transformation_id__in=list(transformation_ids))
    }
    claimed: dict[int, tuple[CycleItem, int]] = {}
    left_to_others: set[object] = set()
    done = held = 0
    for tid in transformation_ids:
        item = items.get(tid)
        if item is None or item.state != CycleItem.State.QUEUED:
            done += 1
            continue
        production = item.production_id if item.production_id is not None else ("alone", tid)
        if production in left_to_others:
            held += 1
            continue
        attempt = claim(item, worker)
        if attempt is None:
            # Its holder treats it and the production's steps after it.
            left_to_others.add(production)
            held += 1
            continue
        if attempt > 1:
            log.warning("cycle %s transformation %s: attempt %d (the earlier one's worker is gone)",
                        cycle_id, tid, attempt)
        claimed[tid] = (item, attempt)
    if not claimed:
        if single:
            return "already done" if done else HELD
        return f"nothing to treat: {done} done, {held} held by another attempt"
    first_item = next(iter(claimed.values()))[0]
    cycle = first_item.cycle
    ids = list(claimed)
    parents = sorted({i.parent_id for i, _ in claimed.values() if i.parent_id and i.parent_id not in claimed})
    attempt = max(a for _, a in claimed.values())
    engine = Engine(trigger=cycle.trigger,
                    lock_owner=f"cycle-{cycle_id}-t{ids[0]}-a{attempt}-{uuid.uuid4().hex[:6]}")

    def renew_all() -> None:
        for item, item_attempt in claimed.values():
            renew(item.pk, item_attempt)

    given = None
    if carried is not None and attempt == 1 and timezone.now() - cycle.started <= timedelta(
            seconds=leases.lease_seconds()):
        given = Carried.from_message(carried)
    with leases.Keeper(renew_all, name=f"items of cycle {cycle_id} from transformation {ids[0]}"):
        result = engine.run_cycle(ids, cycle=cycle, selected_only=True, also_read=parents, carried=given)
    states = defaultdict(int)
    # The group's DIRAC calls are counted once, on its first item (the cycle sums its items).
    calls = sum(result.calls.values())
    for tid, (item, item_attempt) in claimed.items():
        outcome = result.outcomes.get(tid)
        if outcome is None:
            state, text = CycleItem.State.ERROR, result.message or "not treated"
        else:
            state = {"ok": CycleItem.State.OK, "skipped": CycleItem.State.SKIPPED}.get(outcome.state,
                                                                                      CycleItem.State.ERROR)
            kinds = ", ".join(d.kind for d in outcome.decisions)
            text = outcome.message or (f"did {kinds}" if kinds else "nothing to do")
        CycleItem.objects.filter(pk=item.pk, state=CycleItem.State.QUEUED, attempts=item_attempt).update(
            state=state, outcome=text, finished=timezone.now(), calls=calls, lease_until=None
        )
        calls = 0
        states[state] += 1
    finish_if_complete(cycle_id)
    if single:
        state = next(iter(states))
        return f"{state}: {text}"
    return ", ".join(f"{n} {state}" for state, n in sorted(states.items())) + (
        f"; {held} held by another attempt" if held else "")


def requeue_expired(now=None, send=None) -> list[int]:
    """Put back on the queue the work of workers that are gone (beat's tick calls this).

    Two signs that a chain's worker is gone:

    - an item still queued although its lease ran out: its worker stopped renewing it;
    - an item nobody claimed although the step before it in its chain finished more than a lease
      ago: the worker died between finishing that step and sending this one (the message that
      carries the rest of the chain is then unacknowledged, which on Redis means for an hour).

    The chain goes back on the queue from that item, with the rest of its production's steps that
    are still queued, in order, parents first. An item is put back at most once per lease, so
    workers that are all down do not pile up copies. Returns the items put back. ``send``
    publishes a chain's signature (default: ``apply_async``).
    """
    now = now or timezone.now()
    lease = timedelta(seconds=leases.lease_seconds())
    items = (
        CycleItem.objects.filter(cycle__state=Cycle.State.RUNNING)
        .order_by("cycle_id", "production_id", "position", "id")
    )

    def chain_of(item: CycleItem) -> tuple:
        production = item.production_id if item.production_id is not None else ("alone", item.transformation_id)
        return item.cycle_id, production

    heads: dict[tuple, tuple[CycleItem, str]] = {}
    previous: CycleItem | None = None
    for item in items:
        key = chain_of(item)
        before = previous if previous is not None and chain_of(previous) == key else None
        previous = item
        if key in heads or item.state != CycleItem.State.QUEUED:
            continue
        if item.requeued_at is not None and item.requeued_at >= now - lease:
            continue
        if item.lease_until is not None and item.lease_until < now:
            why = f"its lease ran out {(now - item.lease_until).total_seconds():.0f} s ago"
        elif (item.lease_until is None and before is not None and before.state != CycleItem.State.QUEUED
              and before.finished is not None and before.finished < now - lease):
            why = f"nobody took it {(now - before.finished).total_seconds():.0f} s after transformation " \
                  f"{before.transformation_id} finished"
        else:
            continue
        heads[key] = (item, why)
    requeued = []
    resend: dict[int, list[list[int]]] = defaultdict(list)
    for (cycle_id, _), (head, why) in heads.items():
        # Mark first: of two ticks running at once, only one re-sends the chain.
        if not CycleItem.objects.filter(pk=head.pk, requeued=head.requeued).update(
            requeued=head.requeued + 1, requeued_at=now
        ):
            continue
        steps = [head]
        if head.production_id is not None:
            steps = list(
                CycleItem.objects.filter(
                    cycle_id=cycle_id, production_id=head.production_id, state=CycleItem.State.QUEUED,
                    position__gte=head.position,
                ).order_by("position", "id")
            )
        log.warning(
            "cycle %s: the worker of transformation %s (%s) is gone: %s; "
            "putting %s back on the queue",
            cycle_id, head.transformation_id, head.worker or "not taken yet", why, count(len(steps), "transformation"),
        )
        resend[cycle_id].append([s.transformation_id for s in steps])
        requeued.append(head.pk)
    for cycle_id, chains in resend.items():
        # The productions put back, packed into group tasks as start_cycle packs them.
        for group in pack(chains, settings.FAILOVER_FANOUT_GROUP):
            (send or (lambda sig: sig.apply_async()))(group_signature(cycle_id, group))
    return requeued


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
