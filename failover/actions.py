"""Operators' actions: preview with a dry run, then carry out through the same engine as the cycle.

- ``preview`` runs the engine with ``dry_run=True`` limited to one kind of action: it reads DIRAC
  and returns the decisions (which files, which tasks) without changing anything or taking locks.
- ``execute`` runs the engine for real with the operator as actor, one transformation at a time,
  so each transformation's action carries its own one-time request key ``<form key>:<id>``: a
  second submit of the same form finds the key taken (``DuplicateRequest``) and acts no more, on
  every transformation of a selection. The engine takes the transformation's lock, as the cycle
  does, so an operator and a cycle never act on one transformation at once.
- ``approve`` / ``reject`` settle proposals of the recommend-then-approve mode (the cycle writes
  them, ``failover/cycle/act.py``); an approval runs the engine again for that kind of action with
  the proposal in the run, and marks it stale with the reason if its preconditions fail. Every
  settlement goes through ``ActionLog.settle``, which sends ``action_finished``.
- In the background: a confirmation (an operator action, or approving proposals) writes an
  ``ActionRequest`` once per form key (``request_action``, ``request_approval``) and a worker
  carries it out (``run_request``). An approval claims each proposal for its request
  (``request_key`` ``<form key>:p<proposal>``) before approving it, so a redelivered task never
  approves one twice and two operators' approvals of one proposal carry it out once.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from failover import leases, locks, rules, standing
from failover.cycle.recover import Recovery
from failover.domain import COMPLETE, FLUSH_ACTION, REASSIGN, RECOVERY_KINDS, SYNC
from failover.engine import Engine, Outcome
from failover.errors import DuplicateRequest, FailoverError, StaleProposal
from failover.models import ActionLog, ActionRequest, Cycle, Policy, TransformationState

log = logging.getLogger(__name__)

# The four buttons (action kinds, failover/domain.py, as URL slugs), in the order the pages show them.
BUTTONS = (FLUSH_ACTION, REASSIGN, COMPLETE, SYNC)
LABELS = {kind: ActionLog.Kind(kind).label for kind in BUTTONS}
MAX_SELECTION = 200
_KEY = re.compile(r"^[0-9a-f]{32}$")


def new_request_key() -> str:
    return uuid.uuid4().hex


def valid_request_key(key: str) -> bool:
    return bool(_KEY.match(key or ""))


@dataclass
class Preview:
    kind: str
    outcomes: list[Outcome] = field(default_factory=list)
    message: str = ""

    @property
    def decisions(self) -> list[rules.Decision]:
        return [d for o in self.outcomes for d in o.decisions if d.kind == self.kind]

    @property
    def actionable(self) -> bool:
        return bool(self.decisions) and not self.message


@dataclass
class Result:
    transformation: int
    state: str  # done, failed, pending, nothing, skipped, error, duplicate, stale
    message: str
    action: ActionLog | None = None
    proposal: int | None = None  # an approval's: which proposal

    def as_dict(self) -> dict:
        """As an ActionRequest keeps it (plain data: the action by its id)."""
        data = {"transformation": self.transformation, "state": self.state, "message": self.message,
                "action": self.action.pk if self.action is not None else None}
        if self.proposal is not None:
            data["proposal"] = self.proposal
        return data


def preview(transformation_ids: Sequence[int], kind: str, *, engine_factory=Engine) -> Preview:
    """What the engine would do now, for one kind of action; changes nothing."""
    if kind not in BUTTONS:
        raise ValueError(kind)
    result = engine_factory(dry_run=True, trigger=Cycle.Trigger.WEB).run_cycle(list(transformation_ids), [kind])
    return Preview(kind, list(result.outcomes.values()), result.message)


def execute(transformation_ids: Sequence[int], kind: str, *, user, request_key: str,
            engine_factory=Engine) -> list[Result]:
    """Carry out one kind of action on each transformation, as ``user``, once per request key."""
    if kind not in BUTTONS:
        raise ValueError(kind)
    results: list[Result] = []
    for tid in transformation_ids:
        key = f"{request_key}:{tid}"
        done_before = ActionLog.objects.filter(request_key=key).first()
        if done_before is not None:
            results.append(Result(tid, "duplicate", "this request was already carried out", done_before))
            continue
        engine = engine_factory(actor=user.get_username(), user=user, trigger=Cycle.Trigger.WEB, request_key=key)
        try:
            cycle = engine.run_cycle([tid], [kind])
        except DuplicateRequest as exc:
            results.append(Result(tid, "duplicate", str(exc), ActionLog.objects.filter(request_key=key).first()))
            continue
        except FailoverError as exc:
            results.append(Result(tid, "error", str(exc)))
            continue
        outcome = cycle.outcomes.get(tid)
        action = ActionLog.objects.filter(request_key=key).first()
        if action is not None:
            text = action.outcome or action.error or action.get_state_display()
            results.append(Result(tid, action.state, text, action))
        elif cycle.message:
            results.append(Result(tid, "error", cycle.message))
        elif outcome is None:
            results.append(Result(tid, "error", "the engine did not treat it"))
        elif outcome.state == "skipped":
            results.append(Result(tid, "skipped", outcome.message))
        elif "already carried out" in outcome.message:
            results.append(Result(tid, "duplicate", outcome.message))
        elif outcome.state == "error":
            results.append(Result(tid, "error", outcome.message))
        else:
            why = "; ".join(b.text for b in outcome.blockers) or _why_nothing(kind, tid)
            results.append(Result(tid, "nothing", f"nothing to do: {why}"))
    return results


# -- in the background: the request a confirmation writes, carried out by a worker ---------------


def request_action(transformation_ids: Sequence[int], kind: str, *, user, request_key: str
                   ) -> tuple[ActionRequest, bool]:
    """The request of a confirmed form, written once per key: (request, whether it is new).

    The caller enqueues ``failover.run_action_request`` after its commit when it is new; a second
    submit of the same form finds the request and enqueues nothing.
    """
    if kind not in BUTTONS:
        raise ValueError(kind)
    return ActionRequest.objects.get_or_create(
        key=request_key,
        defaults={"kind": kind, "transformation_ids": list(transformation_ids), "user": user,
                  "actor": user.get_username()},
    )


def request_approval(proposals: Sequence[ActionLog], *, user, request_key: str) -> tuple[ActionRequest, bool]:
    """The request of a confirmed approval (one or many proposals), written once per key:
    (request, whether it is new). The proposals are fixed now: "approve all" approves those that
    were waiting when it was confirmed, not ones proposed while it runs."""
    ids = [p.pk for p in proposals]
    tids = list(dict.fromkeys(p.transformation_id for p in proposals))
    return ActionRequest.objects.get_or_create(
        key=request_key,
        defaults={"kind": ActionRequest.APPROVE, "proposal_ids": ids, "transformation_ids": tids, "user": user,
                  "actor": user.get_username()},
    )


def _claim(pk: int) -> bool:
    """Take the request for a lease: queued, or running under a lease that ran out (its worker is gone)."""
    now = timezone.now()
    lease = timedelta(seconds=leases.lease_seconds())
    return bool(ActionRequest.objects.filter(pk=pk).filter(
        Q(state=ActionRequest.State.QUEUED) | Q(state=ActionRequest.State.RUNNING, lease_until__lt=now)
    ).update(state=ActionRequest.State.RUNNING, lease_until=now + lease, attempts=F("attempts") + 1,
             started=now))


def _renew(pk: int) -> None:
    ActionRequest.objects.filter(pk=pk, state=ActionRequest.State.RUNNING).update(
        lease_until=timezone.now() + timedelta(seconds=leases.lease_seconds()))


def _wait_for_lock(req: ActionRequest, tid: int) -> None:
    """A cycle treating the transformation holds its lock for seconds: wait for it (the page says
    so) up to FAILOVER_ACTION_LOCK_WAIT, then let the engine find it locked and say by whom."""
    deadline = time.monotonic() + settings.FAILOVER_ACTION_LOCK_WAIT
    shown = ""
    while (holder := locks.holder(tid)) and time.monotonic() < deadline:
        if holder != shown:  # written when it changes, not at every look
            shown = holder
            ActionRequest.objects.filter(pk=req.pk).update(waiting_for=holder[:64])
        time.sleep(0.5)
    if shown:
        ActionRequest.objects.filter(pk=req.pk).update(waiting_for="")


HELD = "held"


def run_request(pk: int, *, engine_factory=Engine) -> str:
    """Carry out a confirmed request, one transformation at a time, recording each outcome.

    Idempotent: a transformation already in ``results`` is not treated again, and one treated by a
    worker that died before recording it finds its key taken (``execute`` reports it duplicate).
    Returns ``HELD`` when another worker holds it under a live lease (the task then looks again
    once that lease could have run out, so a request whose worker died is finished by another).
    """
    if not _claim(pk):
        state = ActionRequest.objects.filter(pk=pk).values_list("state", flat=True).first()
        if state == ActionRequest.State.RUNNING:
            return HELD
        return f"action request {pk} is over ({state or 'gone'})"
    req = ActionRequest.objects.select_related("user").get(pk=pk)
    user = req.user
    if user is None:  # the account was deleted after confirming: nobody to act as
        ActionRequest.objects.filter(pk=pk).update(
            state=ActionRequest.State.FAILED, finished=timezone.now(),
            message=f"not carried out: the account {req.actor} that confirmed it no longer exists")
        return f"action request {pk}: its account is gone"
    try:
        with leases.Keeper(lambda: _renew(pk), name=f"action request {pk}"):
            if req.is_approval:
                _run_approvals(req, user, engine_factory)
            else:
                _run_actions(req, user, engine_factory)
    except Exception as exc:
        log.exception("action request %s stopped", pk)
        ActionRequest.objects.filter(pk=pk).update(
            state=ActionRequest.State.FAILED, finished=timezone.now(), current=None, waiting_for="",
            message=f"stopped: {type(exc).__name__}: {exc}"[:2000])
        return f"action request {pk} failed: {exc}"
    ActionRequest.objects.filter(pk=pk).update(state=ActionRequest.State.FINISHED, finished=timezone.now(),
                                               current=None, lease_until=None)
    return f"action request {pk}: {len(req.results)} of {req.total} treated"


def _record(req: ActionRequest, result: Result) -> None:
    req.results.append(result.as_dict())
    ActionRequest.objects.filter(pk=req.pk).update(results=req.results)


def _run_actions(req: ActionRequest, user, engine_factory) -> None:
    done = {r["transformation"] for r in req.results}
    for tid in req.transformation_ids:
        if tid in done:
            continue
        ActionRequest.objects.filter(pk=req.pk).update(current=tid)
        _wait_for_lock(req, tid)
        _record(req, execute([tid], req.kind, user=user, request_key=req.key, engine_factory=engine_factory)[0])


def _run_approvals(req: ActionRequest, user, engine_factory) -> None:
    done = {r.get("proposal") for r in req.results}
    for pid in req.proposal_ids:
        if pid in done:
            continue
        proposal = ActionLog.objects.filter(pk=pid).first()
        if proposal is None:
            _record(req, Result(0, "error", f"proposal {pid} no longer exists", proposal=pid))
            continue
        tid = proposal.transformation_id
        ActionRequest.objects.filter(pk=req.pk).update(current=tid)
        claimed, why = claim_proposal(proposal, req.key)
        if not claimed:
            proposal.refresh_from_db()
            _record(req, Result(tid, why[0], why[1], proposal, proposal=pid))
            continue
        _wait_for_lock(req, tid)
        proposal.refresh_from_db()
        [result] = approve([proposal], user=user, engine_factory=engine_factory)
        result.proposal = pid
        _record(req, result)


def proposal_key(request_key: str, proposal_id: int) -> str:
    return f"{request_key}:p{proposal_id}"


def claim_proposal(proposal: ActionLog, request_key: str) -> tuple[bool, tuple[str, str]]:
    """Mark a waiting proposal as this request's to approve (a conditional UPDATE of its
    ``request_key``): (whether it is ours, else the (state, message) to report).

    Ours already: a worker that died after claiming it; carried out already if it is no longer
    waiting (reported ``duplicate``). A claim by another request that is over (it stopped
    before approving it) is taken over; one by a request still running is left to it.
    """
    mine = proposal_key(request_key, proposal.pk)
    waiting = ActionLog.objects.filter(pk=proposal.pk, state=ActionLog.State.PROPOSED)
    if waiting.filter(Q(request_key__isnull=True) | Q(request_key=mine)).update(request_key=mine):
        return True, ("", "")
    proposal.refresh_from_db()
    if proposal.request_key == mine:
        text = proposal.outcome or proposal.error or proposal.get_state_display()
        return False, ("duplicate", f"this request already approved it: {proposal.state}: {text}")
    if proposal.state == ActionLog.State.PROPOSED and proposal.request_key:
        other = ActionRequest.objects.filter(key=proposal.request_key.split(":")[0]).first()
        if other is None or other.is_over:
            if waiting.filter(request_key=proposal.request_key).update(request_key=mine):
                return True, ("", "")
        else:
            return False, ("skipped", f"another approval, by {other.actor}, is carrying it out")
        proposal.refresh_from_db()
    if proposal.state == ActionLog.State.SUPERSEDED:
        return False, ("stale", f"proposal {proposal.pk} was superseded by proposal {proposal.superseded_by_id}, "
                                "not waiting for approval")
    return False, ("stale", f"proposal {proposal.pk} is {proposal.state}, not waiting for approval")


def _why_nothing(kind: str, tid: int) -> str:
    state = TransformationState.objects.filter(transformation_id=tid).first()
    return standing.why_nothing(kind, state, Policy.current(), standing.completions([tid]).get(tid))


def stalled_requests(now=None):
    """Requests nobody works on: queued for longer than a lease (the message was lost, say the
    broker was down at the confirmation), or running under a lease that ran out (the worker is
    gone; on Redis its message would come back only after the visibility timeout, an hour)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=leases.lease_seconds())
    return ActionRequest.objects.filter(
        Q(state=ActionRequest.State.QUEUED, created__lt=cutoff)
        | Q(state=ActionRequest.State.RUNNING, lease_until__lt=now)
    ).filter(Q(requeued_at__isnull=True) | Q(requeued_at__lt=cutoff))


def requeue_stalled(send, now=None) -> list[int]:
    """Put stalled requests back on the queue, each at most once per lease (beat's tick calls this
    with the task's ``delay``); a copy that finds the request taken meanwhile does nothing."""
    now = now or timezone.now()
    pks = list(stalled_requests(now).values_list("pk", flat=True))
    for pk in pks:
        if ActionRequest.objects.filter(pk=pk).filter(
                Q(requeued_at__isnull=True) | Q(requeued_at__lt=now - timedelta(seconds=leases.lease_seconds()))
        ).update(requeued_at=now):
            send(pk)
    return pks


def actions_for_key(request_key: str):
    """The actions one form submit created (one per transformation), or the proposals it approved."""
    return ActionLog.objects.filter(request_key__startswith=f"{request_key}:").order_by("transformation_id")


# -- proposals ------------------------------------------------------------------------------------


def approve(proposals: Sequence[ActionLog], *, user, engine_factory=Engine) -> list[Result]:
    """Approve each proposal; stale ones are refused by the engine with the reason."""
    results = []
    for proposal in proposals:
        try:
            if proposal.kind in RECOVERY_KINDS:
                # Recovery's proposals (failover/cycle/recover.py): checked again, then carried out.
                settled = Recovery(actor=user.get_username(), user=user).approve(proposal)
            else:
                engine = engine_factory(actor=user.get_username(), user=user, trigger=Cycle.Trigger.WEB)
                settled = approve_proposal(engine, proposal)
        except StaleProposal as exc:
            proposal.refresh_from_db()
            results.append(Result(proposal.transformation_id, "stale", str(exc), proposal))
            continue
        except FailoverError as exc:
            results.append(Result(proposal.transformation_id, "error", str(exc), proposal))
            continue
        text = settled.outcome or settled.error or settled.get_state_display()
        results.append(Result(settled.transformation_id, settled.state, text, settled))
    return results


def approve_proposal(engine: Engine, proposal: ActionLog) -> ActionLog:
    """Carry out a proposal after checking its preconditions again against DIRAC now.

    The engine re-plans the transformation for that kind of action only; a reassign acts on
    the proposed files that still qualify, a flush or complete only if still decided. A
    proposal whose preconditions no longer hold is marked stale with the reason.
    """
    if proposal.state == ActionLog.State.SUPERSEDED:
        raise StaleProposal(f"proposal {proposal.pk} was superseded by proposal {proposal.superseded_by_id}, "
                            "not waiting for approval")
    if proposal.state != ActionLog.State.PROPOSED:
        raise StaleProposal(f"proposal {proposal.pk} is {proposal.state}, not waiting for approval")
    result = engine.run_cycle([proposal.transformation_id], [proposal.kind, SYNC], approving=proposal)
    proposal.refresh_from_db()
    if proposal.state == ActionLog.State.PROPOSED:
        outcome = result.outcomes.get(proposal.transformation_id)
        why = outcome.message if outcome and outcome.message else "its preconditions no longer hold"
        proposal.settle(ActionLog.State.STALE, f"not carried out: {why}", expected=ActionLog.State.PROPOSED,
                        user=engine.user)
    return proposal


def reject(proposals: Sequence[ActionLog], *, user, reason: str = "") -> list[Result]:
    """Reject proposals still waiting; one handled meanwhile is reported, not changed."""
    results = []
    for proposal in proposals:
        outcome = f"rejected by {user.get_username()}" + (f": {reason}" if reason else "")
        changed = proposal.settle(ActionLog.State.REJECTED, outcome, expected=ActionLog.State.PROPOSED,
                                  user=user, actor=user.get_username())
        if changed:
            results.append(Result(proposal.transformation_id, "rejected", outcome, proposal))
        else:
            results.append(Result(proposal.transformation_id, "stale",
                                  f"proposal {proposal.pk} is {proposal.state}, not waiting for approval", proposal))
    return results
