"""The cycle engine: read DIRAC in a few batched calls, decide with the rules, act, record.

The same code runs for ``manage.py failover cycle``, the Celery tasks and the operators' buttons.

Guarantees:
- an action is written ``pending`` before DIRAC is called and settled after, together with the
  counters it moves, in one transaction: a counter never moves without its logged action;
- a DIRAC error is logged and the cycle goes on; a timeout or a crash leaves the action pending,
  and it is reconciled against DIRAC's state before the transformation is treated again, so
  nothing is lost or doubled;
- one transformation's failure never stops the cycle for the others;
- transformations are treated parents first, and a child sees its parent's state after the
  parent's turn.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from failover import leases, locks, rules
from failover.backends import get_backend
from failover.backends.base import DiracBackend
from failover.domain import (
    ASSIGNED,
    FAILED_TASK_STATUSES,
    UNUSED,
    FileCounts,
    JobInfo,
    TaskInfo,
    TransformationInfo,
)
from failover.errors import (
    BackendError,
    BackendTimeout,
    DuplicateRequest,
    FailoverError,
    StaleProposal,
    UnknownTransformation,
)
from failover.models import ActionLog, Cycle, Policy, ReassignCounter, TransformationState
from failover.signals import action_finished
from reports.aggregation import aggregate_jobs
from reports.stores import AggregateStore, SnapshotMeta, get_store

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Outcome:
    transformation: int
    state: str = "ok"  # ok, skipped, error
    message: str = ""
    decisions: list[rules.Decision] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)
    at_cap: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "transformation": self.transformation,
            "state": self.state,
            "message": self.message,
            "decisions": [d.as_dict() for d in self.decisions],
            "blockers": self.blockers,
            "at_cap": self.at_cap,
        }


@dataclass
class CycleResult:
    cycle_id: int | None
    dry_run: bool
    started: float
    finished: float = 0.0
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    message: str = ""

    @property
    def seconds(self) -> float:
        return self.finished - self.started

    @property
    def decisions(self) -> list[rules.Decision]:
        return [d for o in self.outcomes.values() for d in o.decisions]

    @property
    def errors(self) -> int:
        return sum(1 for o in self.outcomes.values() if o.state == "error")

    def summary(self) -> str:
        by_kind: dict[str, int] = defaultdict(int)
        for d in self.decisions:
            by_kind[d.kind] += 1
        verb = "would do" if self.dry_run else "did"
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(by_kind.items())) or "nothing"
        skipped = sum(1 for o in self.outcomes.values() if o.state == "skipped")
        text = (
            f"{'Dry run' if self.dry_run else f'Cycle {self.cycle_id}'}: {len(self.outcomes)} transformations, "
            f"{verb} {kinds}; {self.errors} errors, {skipped} skipped; "
            f"{sum(self.calls.values())} DIRAC calls in {self.seconds:.2f} s"
        )
        if self.message:
            text += f"\n{self.message}"
        return text

    def as_json(self) -> dict:
        return {
            "cycle": self.cycle_id,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 3),
            "calls": self.calls,
            "message": self.message,
            "transformations": [o.as_dict() for o in self.outcomes.values()],
        }


class Engine:
    def __init__(
        self,
        backend: DiracBackend | None = None,
        policy: Policy | None = None,
        *,
        actor: str = "system",
        user=None,
        dry_run: bool = False,
        trigger: str = "cli",
        store: AggregateStore | None = None,
        retries: int | None = None,
        backoff: float | None = None,
        request_key: str | None = None,
        lock_owner: str | None = None,
    ):
        self.backend = backend or get_backend()
        self.policy = policy or Policy.current()
        self.rules_policy = self.policy.as_rules_policy()
        self.actor = actor
        self.user = user
        self.dry_run = dry_run
        self.trigger = trigger
        self.store = store or get_store()
        self.retries = settings.DIRAC_RETRIES if retries is None else retries
        self.backoff = settings.DIRAC_RETRY_BACKOFF if backoff is None else backoff
        # A fanned-out task passes an owner derived from its cycle item and attempt (see
        # cycles.treat_in_cycle): a later attempt takes the lock only once the earlier one's lease ran out.
        self.owner = lock_owner or locks.new_owner(actor if actor != "system" else "cycle")
        self.lock_seconds = settings.FAILOVER_LEASE_SECONDS
        self.cycle: Cycle | None = None
        # An operator's form carries a one-time key: the first action it creates takes it, so a
        # second submit of the same form finds it taken and acts no more.
        self.request_key = request_key
        self.proposing = self.policy.mode == Policy.Mode.PROPOSE and actor == "system"

    # -- reading DIRAC ------------------------------------------------------------------------
    def _retrying(self, fn: Callable[..., T], *args, what: str = "read", **kwargs) -> T:
        """A call that is safe to repeat (a read, or setting task statuses), retried with
        exponential backoff. Other writes are never repeated blindly: they are reconciled."""
        attempt = 0
        while True:
            try:
                return fn(*args, **kwargs)
            except BackendError as exc:
                if not exc.retriable or attempt >= self.retries:
                    raise
                pause = self.backoff * (2**attempt)
                log.warning("DIRAC %s failed (%s); retry %d in %.1f s", what, exc, attempt + 1, pause)
                time.sleep(pause)
                attempt += 1

    # -- the cycle ----------------------------------------------------------------------------
    def run_cycle(
        self,
        ids: Sequence[int] | None = None,
        kinds: Iterable[str] = rules.KINDS,
        *,
        approving: ActionLog | None = None,
        cycle: Cycle | None = None,
        selected_only: bool = False,
        also_read: Sequence[int] = (),
    ) -> CycleResult:
        """Run a cycle over ``ids`` (default: the policy's selection).

        With ``cycle``, treat the transformations as part of that existing cycle (one task of a
        fanned-out cycle) and leave its finishing to the caller. ``selected_only`` skips given
        ids that the policy no longer selects (a fanned-out task runs after its cycle read them).
        """
        self.approving = approving
        self.selected_only = selected_only
        # Parents a caller knows about, read in the same call as ``ids``.
        self.also_read = [i for i in also_read if i not in (ids or ())]
        self.prefetched: dict[int, TransformationInfo] = {}
        calls_before = self.backend.calls.snapshot()
        result = CycleResult(cycle_id=None, dry_run=self.dry_run, started=time.monotonic())
        if cycle is not None:
            self.cycle = cycle
            result.cycle_id = cycle.pk
        elif not self.dry_run:
            self.cycle = Cycle.objects.create(trigger=self.trigger, backend=self.backend.name)
            result.cycle_id = self.cycle.pk
        # The locks this cycle takes are leases, renewed while this process works on them.
        renewals = () if self.dry_run else (lambda: locks.renew(self.owner, self.lock_seconds),)
        keeper = leases.Keeper(*renewals, name=f"locks of {self.owner}")
        try:
            with keeper:
                self._run(result, ids, set(kinds))
        except FailoverError as exc:
            result.message = f"cycle stopped: {exc}"
            log.error("cycle stopped: %s", exc)
        result.finished = time.monotonic()
        after = self.backend.calls.snapshot()
        result.calls = {k: after[k] - calls_before.get(k, 0) for k in after if after[k] != calls_before.get(k, 0)}
        if self.cycle is not None and cycle is None:
            self.cycle.finished = timezone.now()
            self.cycle.state = Cycle.State.FAILED if result.message else Cycle.State.FINISHED
            self.cycle.transformations = len(result.outcomes)
            self.cycle.actions = sum(len(o.actions) for o in result.outcomes.values())
            self.cycle.errors = result.errors
            self.cycle.calls = result.calls
            self.cycle.outcomes = {
                str(tid): (o.state if not o.message else f"{o.state}: {o.message}") for tid, o in result.outcomes.items()
            }
            self.cycle.message = result.message
            self.cycle.save()
        return result

    def _policy_selects(self, t: TransformationInfo) -> bool:
        p = self.policy
        return (not p.transformation_statuses or t.status in p.transformation_statuses) and (
            not p.transformation_types or t.type in p.transformation_types
        )

    def select(self) -> list[TransformationInfo]:
        """The transformations the policy selects now (one call)."""
        self.also_read, self.prefetched = [], {}
        return self._select(None)

    def _select(self, ids: Sequence[int] | None) -> list[TransformationInfo]:
        p = self.policy
        if ids:
            found = self._retrying(self.backend.transformations, ids=[*ids, *self.also_read])
            self.prefetched = {t.id: t for t in found if t.id not in ids}
            found = [t for t in found if t.id in ids]
            missing = set(ids) - {t.id for t in found}
            if missing:
                raise UnknownTransformation(", ".join(str(i) for i in sorted(missing)))
            return found
        return self._retrying(
            self.backend.transformations,
            statuses=p.transformation_statuses or None,
            types=p.transformation_types or None,
        )

    def _run(self, result: CycleResult, ids: Sequence[int] | None, kinds: set[str]) -> None:
        selected = self._select(ids)
        if ids and self.selected_only:
            keep = []
            for t in selected:
                if self._policy_selects(t):
                    keep.append(t)
                else:
                    result.outcomes[t.id] = Outcome(t.id, "skipped", f"now {t.status}: no longer selected")
            selected = keep
        known: dict[int, TransformationInfo] = {t.id: t for t in selected}
        known.update({i: t for i, t in self.prefetched.items() if i not in known})
        parent_ids = {rules.parent_of(t) for t in selected} - {None} - known.keys()
        if parent_ids:
            for p in self._retrying(self.backend.transformations, ids=sorted(parent_ids)):
                known[p.id] = p
        counts = self._retrying(self.backend.file_counts, sorted(known))
        ordered = topological(selected)
        batch_size = settings.FAILOVER_BATCH_SIZE
        for start in range(0, len(ordered), batch_size):
            batch = ordered[start : start + batch_size]
            try:
                tasks_by_t, jobs = self._read_batch(batch)
            except FailoverError as exc:
                for t in batch:
                    result.outcomes[t.id] = Outcome(t.id, "error", f"reading DIRAC failed: {exc}")
                continue
            assigned, assigned_error = self._read_assigned(batch, tasks_by_t, jobs)
            counters = self._counters([t.id for t in batch])
            for t in batch:
                outcome = self._treat(
                    t, known, counts, tasks_by_t.get(t.id, []), jobs, assigned.get(t.id, []), counters.get(t.id, {}),
                    kinds, assigned_error,
                )
                result.outcomes[t.id] = outcome

    def _read_batch(self, batch: Sequence[TransformationInfo]) -> tuple[dict[int, list[TaskInfo]], dict[int, JobInfo]]:
        tasks = self._retrying(self.backend.tasks, [t.id for t in batch])
        tasks_by_t: dict[int, list[TaskInfo]] = defaultdict(list)
        for task in tasks:
            tasks_by_t[task.transformation].append(task)
        job_ids = [task.job for task in tasks if task.job]
        jobs = self._retrying(self.backend.jobs, job_ids) if job_ids else {}
        return tasks_by_t, jobs

    def _read_assigned(self, batch, tasks_by_t, jobs) -> tuple[dict[int, list], str]:
        need = [t.id for t in batch if rules.needs_assigned_files(t, tasks_by_t.get(t.id, []), jobs, self.rules_policy)]
        by_t: dict[int, list] = defaultdict(list)
        if not need:
            return by_t, ""
        try:
            for f in self._retrying(self.backend.files, need, statuses=[ASSIGNED]):
                by_t[f.transformation].append(f)
        except FailoverError as exc:
            return by_t, f"reading Assigned files failed: {exc}"
        return by_t, ""

    @staticmethod
    def _counters(ids: Sequence[int]) -> dict[int, dict[str, int]]:
        out: dict[int, dict[str, int]] = defaultdict(dict)
        for tid, lfn, n in ReassignCounter.objects.filter(transformation_id__in=ids).values_list(
            "transformation_id", "lfn", "count"
        ):
            out[tid][lfn] = n
        return out

    # -- one transformation -------------------------------------------------------------------
    def _treat(self, t, known, counts, tasks, jobs, assigned, counters, kinds, assigned_error) -> Outcome:
        outcome = Outcome(t.id)
        if not self.dry_run and not locks.acquire(t.id, self.owner, self.lock_seconds):
            outcome.state = "skipped"
            outcome.message = f"locked by {locks.holder(t.id) or 'another worker'}"
            return outcome
        mirror: dict = {}
        try:
            if not self.dry_run:
                self._reconcile_pending(t)
                counters = self._counters([t.id]).get(t.id, {})
            state = TransformationState.objects.filter(transformation_id=t.id).first()
            flush_count = state.flush_count if state else 0
            t_counts = counts.get(t.id, FileCounts())
            parent_id = rules.parent_of(t)
            parent = None
            if parent_id is not None:
                p = known.get(parent_id)
                parent = (
                    rules.parent_view(p, counts.get(parent_id))
                    if p
                    else rules.ParentView(parent_id, "Unknown", "Unknown", False)
                )
            t_jobs = {task.job: jobs[task.job] for task in tasks if task.job in jobs}
            plan = rules.plan_transformation(
                t,
                counts=t_counts,
                tasks=tasks,
                jobs=t_jobs,
                parent=parent,
                assigned_files=assigned,
                counters=counters,
                flush_count=flush_count,
                policy=self.rules_policy,
                kinds=kinds,
            )
            synced = plan.tasks
            for decision in plan.decisions:
                if decision.kind == rules.REASSIGN:
                    # Which job failed where: the retry history the pages show.
                    by_task = {task.task: task for task in synced}
                    decision.context["jobs"] = {
                        str(k): _job_context(by_task.get(k), t_jobs) for k in decision.tasks
                    }
            stuck = rules.assigned_to_done_tasks(assigned, synced)
            if stuck:
                plan.blockers.append(f"{stuck} Assigned files belong to tasks whose job is final (Done)")
            no_job = rules.tasks_without_job(tasks)
            previous_no_job = state.tasks_without_job if state else 0
            if no_job and previous_no_job:
                # New tasks have no job for a moment; only a second cycle in a row is news.
                plan.blockers.append(f"{min(no_job, previous_no_job)} tasks have no job for two cycles or more")
            outcome.decisions = plan.decisions
            outcome.blockers = plan.blockers
            outcome.at_cap = plan.at_cap
            if assigned_error:
                outcome.blockers.append(assigned_error)
            if self.dry_run:
                # Show what the children would see after this transformation's turn.
                for decision in plan.decisions:
                    if decision.kind in (rules.COMPLETE, rules.FLUSH_ACTION):
                        known[t.id] = _with_status(t, decision.status)
                return outcome
            for decision in plan.decisions:
                if self.proposing and decision.kind != rules.SYNC:
                    # Copying job statuses is bookkeeping and always done; the rest waits for
                    # an operator's approval.
                    proposal = self._propose(t, decision)
                    if proposal is not None:
                        outcome.actions.append(proposal.pk)
                    continue
                action = self._act(t, decision)
                outcome.actions.append(action.pk)
                if action.state == ActionLog.State.DONE and decision.kind in (rules.COMPLETE, rules.FLUSH_ACTION):
                    # The child treated after us must see the status we just wrote.
                    known[t.id] = _with_status(t, decision.status)
                if action.state in (ActionLog.State.FAILED, ActionLog.State.PENDING, ActionLog.State.INTERRUPTED):
                    outcome.state = "error"
                    outcome.message = action.error or "no answer from DIRAC; will be reconciled"
            rows = aggregate_jobs(t_jobs.values())
            if self.cycle is not None:
                self.store.write(
                    self.cycle.pk,
                    self.cycle.started,
                    SnapshotMeta(t.id, t.production, t.type),
                    rows,
                )
            mirror = self._mirror(known.get(t.id, t), t_counts, rows, plan, state)
            mirror["tasks_without_job"] = no_job
        except FailoverError as exc:
            outcome.state = "error"
            outcome.message = str(exc)
            log.error("transformation %s: %s", t.id, exc)
        except Exception as exc:  # one bad transformation must not stop the cycle
            outcome.state = "error"
            outcome.message = f"internal error: {exc.__class__.__name__}: {exc}"
            log.exception("transformation %s: unexpected error", t.id)
        finally:
            if not self.dry_run:
                locks.release(t.id, self.owner, **mirror)
        return outcome

    def _mirror(self, t: TransformationInfo, counts: FileCounts, rows, plan: rules.Plan, state) -> dict:
        jobs_by_status: dict[str, int] = defaultdict(int)
        for r in rows:
            jobs_by_status[r.status] += r.count
        total = sum(jobs_by_status.values())
        failed = sum(n for s, n in jobs_by_status.items() if s in FAILED_TASK_STATUSES)
        fields = {
            "name": t.name,
            "type": t.type,
            "status": t.status,
            "group_size": t.group_size,
            "production_id": t.production,
            "parent_id": t.parent,
            "files": counts.by_status,
            "files_total": counts.total,
            "files_processed": counts.get("Processed"),
            "jobs": dict(jobs_by_status),
            "jobs_total": total,
            "jobs_failed": failed,
            "failed_share": round(100 * failed / total, 1) if total else 0.0,
            "attention": plan.blockers,
            "last_seen": timezone.now(),
            # Consecutive cycles in which neither file nor job counts moved.
            "unchanged_cycles": (
                state.unchanged_cycles + 1
                if state and state.last_seen and state.files == counts.by_status and state.jobs == dict(jobs_by_status)
                else 0
            ),
            "reassigned_files": ReassignCounter.objects.filter(transformation_id=t.id).count(),
        }
        if self.cycle is not None:
            fields["last_cycle"] = self.cycle
        return fields

    # -- acting -------------------------------------------------------------------------------
    def _act(self, t: TransformationInfo, decision: rules.Decision) -> ActionLog:
        proposal = getattr(self, "approving", None)
        if proposal is not None and decision.kind == proposal.kind and decision.kind != rules.SYNC:
            return self._act_on_proposal(t, decision, proposal)
        key, self.request_key = self.request_key, None
        try:
            with transaction.atomic():
                action = ActionLog.objects.create(
                    cycle=self.cycle,
                    transformation_id=t.id,
                    kind=decision.kind,
                    actor=self.actor,
                    user=self.user,
                    reason=decision.reason,
                    details=decision.as_dict(),
                    request_key=key,
                )
        except IntegrityError:
            raise DuplicateRequest("this request was already carried out") from None
        return self.execute(action, decision)

    def _act_on_proposal(self, t: TransformationInfo, decision: rules.Decision, proposal: ActionLog) -> ActionLog:
        if decision.kind == rules.REASSIGN:
            # Only the proposed files that still qualify; files that newly failed wait for the
            # next proposal, so an operator approves exactly what was shown or less.
            proposed = {lfn for lfns in proposal.details.get("tasks", {}).values() for lfn in lfns}
            decision.tasks = {
                task: [lfn for lfn in lfns if lfn in proposed] for task, lfns in decision.tasks.items()
            }
            decision.tasks = {task: lfns for task, lfns in decision.tasks.items() if lfns}
            if not decision.tasks:
                return proposal
        updated = ActionLog.objects.filter(pk=proposal.pk, state=ActionLog.State.PROPOSED).update(
            state=ActionLog.State.PENDING,
            actor=self.actor,
            user=self.user,
            details={**decision.as_dict(), "proposed": proposal.details},
        )
        if not updated:
            raise StaleProposal(f"proposal {proposal.pk} was handled meanwhile")
        proposal.refresh_from_db()
        return self.execute(proposal, decision)

    def _propose(self, t: TransformationInfo, decision: rules.Decision) -> ActionLog | None:
        details = decision.as_dict()
        open_proposals = ActionLog.objects.filter(
            transformation_id=t.id, kind=decision.kind, state=ActionLog.State.PROPOSED
        )
        if any(p.details == details for p in open_proposals):
            return None  # already waiting for an operator
        return ActionLog.objects.create(
            cycle=self.cycle,
            transformation_id=t.id,
            kind=decision.kind,
            state=ActionLog.State.PROPOSED,
            actor=self.actor,
            reason=decision.reason,
            details=details,
        )

    def approve(self, proposal: ActionLog) -> ActionLog:
        """Carry out a proposal after checking its preconditions again against DIRAC now.

        The engine re-plans the transformation for that kind of action only; a reassign acts on
        the proposed files that still qualify, a flush or complete only if still decided. A
        proposal whose preconditions no longer hold is marked stale with the reason.
        """
        if proposal.state != ActionLog.State.PROPOSED:
            raise StaleProposal(f"proposal {proposal.pk} is {proposal.state}, not waiting for approval")
        result = self.run_cycle([proposal.transformation_id], [proposal.kind, rules.SYNC], approving=proposal)
        proposal.refresh_from_db()
        if proposal.state == ActionLog.State.PROPOSED:
            outcome = result.outcomes.get(proposal.transformation_id)
            why = outcome.message if outcome and outcome.message else "its preconditions no longer hold"
            with transaction.atomic():
                if ActionLog.objects.filter(pk=proposal.pk, state=ActionLog.State.PROPOSED).update(
                    state=ActionLog.State.STALE, outcome=f"not carried out: {why}", finished=timezone.now(),
                    user=self.user,
                ):
                    action_finished.send(sender=ActionLog, action_id=proposal.pk)
            proposal.refresh_from_db()
        return proposal

    def execute(self, action: ActionLog, decision: rules.Decision) -> ActionLog:
        """Carry out a pending action and settle it. Timeouts leave it pending, then reconcile."""
        tid = decision.transformation
        try:
            if decision.kind == rules.SYNC:
                done = []
                for status, task_ids in decision.tasks.items():
                    self._retrying(self.backend.set_task_status, tid, task_ids, status, what="write")
                    done.append(f"{len(task_ids)} tasks set {status}")
                self._settle(action, ActionLog.State.DONE, "; ".join(done))
            elif decision.kind in (rules.COMPLETE, rules.FLUSH_ACTION):
                self.backend.set_transformation_status(tid, decision.status, expected=decision.expected)
                self._settle(action, ActionLog.State.DONE, f"status {decision.expected} to {decision.status}",
                             flush=decision.kind == rules.FLUSH_ACTION)
            elif decision.kind == rules.REASSIGN:
                written = self.backend.set_file_status(tid, decision.lfns, UNUSED)
                self._settle_reassign(action, decision, written)
        except BackendTimeout as exc:
            action.error = f"no answer from DIRAC ({exc}); outcome unknown"
            action.save(update_fields=["error"])
            self._reconcile(action)
        except BackendError as exc:
            self._settle(action, ActionLog.State.FAILED, "DIRAC refused", error=str(exc))
        action.refresh_from_db()
        return action

    def _settle(self, action: ActionLog, state: str, outcome: str, *, error: str = "", flush: bool = False) -> None:
        with transaction.atomic():
            updated = ActionLog.objects.filter(pk=action.pk, state=ActionLog.State.PENDING).update(
                state=state, outcome=outcome, error=error, finished=timezone.now()
            )
            if updated:
                action_finished.send(sender=ActionLog, action_id=action.pk)
            if updated and flush and state == ActionLog.State.DONE:
                TransformationState.objects.filter(transformation_id=action.transformation_id).update(
                    flush_count=F("flush_count") + 1
                )
            if updated and state == ActionLog.State.DONE:
                TransformationState.objects.filter(transformation_id=action.transformation_id).update(
                    last_action=f"{action.get_kind_display()}: {outcome}"[:255], last_action_at=timezone.now()
                )

    def _settle_reassign(self, action: ActionLog, decision: rules.Decision, written: dict[str, str]) -> None:
        moved = sorted(lfn for lfn, status in written.items() if status == UNUSED)
        other = {lfn: status for lfn, status in written.items() if status != UNUSED}
        refused = sorted(set(decision.lfns) - set(written))
        parts = [f"{len(moved)} files set Unused"]
        if other:
            parts.append(", ".join(f"{lfn} became {s}" for lfn, s in sorted(other.items())))
        if refused:
            parts.append(f"{len(refused)} unchanged by DIRAC")
        with transaction.atomic():
            updated = ActionLog.objects.filter(pk=action.pk, state=ActionLog.State.PENDING).update(
                state=ActionLog.State.DONE,
                outcome="; ".join(parts),
                finished=timezone.now(),
                details={**action.details, "moved": moved, "written": written},
            )
            if updated:
                bump_counters(action.transformation_id, moved)
                action_finished.send(sender=ActionLog, action_id=action.pk)
                TransformationState.objects.filter(transformation_id=action.transformation_id).update(
                    last_action=f"Reassign failed: {len(moved)} files set Unused", last_action_at=timezone.now()
                )

    # -- reconciling actions whose outcome is unknown -----------------------------------------
    def _reconcile_pending(self, t: TransformationInfo) -> None:
        for action in ActionLog.objects.filter(transformation_id=t.id, state=ActionLog.State.PENDING).order_by("id"):
            self._reconcile(action)

    def _reconcile(self, action: ActionLog) -> None:
        """Settle a pending action from what DIRAC shows now. If DIRAC can't be read, it stays pending."""
        tid = action.transformation_id
        note = "outcome read back from DIRAC after an interruption"
        try:
            if action.kind == rules.SYNC:
                # Idempotent: the next decisions redo whatever did not happen.
                self._settle(action, ActionLog.State.INTERRUPTED, "interrupted; tasks re-checked from DIRAC")
            elif action.kind in (rules.COMPLETE, rules.FLUSH_ACTION):
                wanted = action.details.get("status")
                current = self._retrying(self.backend.transformations, ids=[tid])
                status = current[0].status if current else None
                if status == wanted:
                    self._settle(action, ActionLog.State.DONE, f"status is {status} ({note})",
                                 flush=action.kind == rules.FLUSH_ACTION)
                else:
                    self._settle(action, ActionLog.State.INTERRUPTED, f"status is {status}: not done ({note})")
            elif action.kind == rules.REASSIGN:
                asked = {lfn: int(task) for task, lfns in action.details.get("tasks", {}).items() for lfn in lfns}
                now = {f.lfn: f for f in self._retrying(self.backend.files, [tid], lfns=sorted(asked))}
                moved = sorted(
                    lfn for lfn, task in asked.items()
                    if lfn in now and not (now[lfn].status == ASSIGNED and now[lfn].task == task)
                    and now[lfn].status != "MaxReset"
                )
                with transaction.atomic():
                    updated = ActionLog.objects.filter(pk=action.pk, state=ActionLog.State.PENDING).update(
                        state=ActionLog.State.DONE if moved else ActionLog.State.INTERRUPTED,
                        outcome=f"{len(moved)} of {len(asked)} files had left their failed task ({note})",
                        finished=timezone.now(),
                        details={**action.details, "moved": moved},
                    )
                    if updated:
                        bump_counters(tid, moved)
                        action_finished.send(sender=ActionLog, action_id=action.pk)
        except FailoverError as exc:
            log.warning("action %s stays pending: %s", action.pk, exc)


def bump_counters(transformation_id: int, lfns: Sequence[str]) -> None:
    """Add one to each LFN's reassign counter (call inside the action's transaction)."""
    if not lfns:
        return
    existing = set()
    for start in range(0, len(lfns), 500):
        chunk = lfns[start : start + 500]
        existing.update(
            ReassignCounter.objects.filter(transformation_id=transformation_id, lfn__in=chunk).values_list(
                "lfn", flat=True
            )
        )
        ReassignCounter.objects.filter(transformation_id=transformation_id, lfn__in=chunk).update(
            count=F("count") + 1, updated=timezone.now()
        )
    ReassignCounter.objects.bulk_create(
        [ReassignCounter(transformation_id=transformation_id, lfn=lfn, count=1) for lfn in lfns if lfn not in existing]
    )


def topological(transformations: Sequence[TransformationInfo]) -> list[TransformationInfo]:
    """Parents before children, otherwise by id."""
    by_id = {t.id: t for t in transformations}
    depth: dict[int, int] = {}

    def level(t: TransformationInfo) -> int:
        if t.id in depth:
            return depth[t.id]
        depth[t.id] = 0  # guards against a cycle in bad data
        parent = rules.parent_of(t)
        depth[t.id] = level(by_id[parent]) + 1 if parent in by_id else 0
        return depth[t.id]

    return sorted(transformations, key=lambda t: (level(t), t.id))


def _job_context(task: TaskInfo | None, jobs: dict[int, JobInfo]) -> dict:
    job = jobs.get(task.job) if task else None
    if task is None or job is None:
        return {"job": task.job if task else 0, "status": task.status if task else "", "site": "", "minor_status": ""}
    return {"job": job.id, "status": job.status, "site": job.site, "minor_status": job.minor_status}


def _with_status(t: TransformationInfo, status: str) -> TransformationInfo:
    return TransformationInfo(t.id, t.name, t.type, status, t.group_size, t.production, t.parent)


def run_cycle(**kwargs) -> CycleResult:
    ids = kwargs.pop("ids", None)
    kinds = kwargs.pop("kinds", rules.KINDS)
    return Engine(**kwargs).run_cycle(ids, kinds)
