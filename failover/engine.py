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

import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.template.defaultfilters import pluralize
from django.utils import timezone

from failover import (
    attention,
    blockers,
    circuit as circuit_breaker,
    history,
    leases,
    locks,
    mirror as mirror_store,
    recording,
    rules,
)
from failover.backends import get_backend
from failover.backends.base import DiracBackend
from failover.blockers import Blocker
from failover.cycle.act import Acting, Turn
from failover.cycle.read import BatchInputs, Carried, Reading, Selection, policy_selects, read_counters, topological
from failover.cycle.results import CycleResult, Outcome
from failover.cycle.settle import Settling
from failover.domain import (
    ACTIVE,
    ASSIGNED,
    COMPLETE,
    DONE_TASK_STATUSES,
    FAILED_TASK_STATUSES,
    FINAL_TASK_STATUSES,
    FINAL_TRANSFORMATION_STATUSES,
    FLUSH_ACTION,
    KINDS,
    PROCESSED,
    REASSIGN,
    UNUSED,
    FileCounts,
    JobInfo,
    TaskInfo,
    TaskSummary,
    TransformationInfo,
)
from failover.errors import FailoverError
from failover.models import ActionLog, Cycle, MirrorState, Policy, TransformationState
from failover.outcomes import count

__all__ = ["CycleResult", "Engine", "Outcome", "Run", "topological"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Treated:
    """What a planned transformation's turn leaves to record after its batch: its aggregates
    (``mirror.job_aggregates``; None when the turn did not get that far), its plan's state and
    the task statuses it wrote to DIRAC."""

    meta: recording.SnapshotMeta
    aggregates: list[tuple] | None
    plan_state: dict
    # (transformation, task, status) of the tasks whose status its turn wrote to DIRAC.
    synced: list[tuple[int, int, str]]


@dataclass(frozen=True)
class Run:
    """What one run of the engine was asked, carried from step to step (nothing of it on the engine)."""

    ids: tuple[int, ...] | None
    kinds: frozenset[str]
    # The proposal an operator approved: the decision of its kind takes it over.
    approving: ActionLog | None = None
    # Skip given ids the policy no longer selects (a fanned-out task runs after its cycle read them).
    selected_only: bool = False
    # Parents a caller knows about, read in the same call as ``ids``.
    also_read: tuple[int, ...] = ()
    # A full resync of the mirror (``failover cycle --full``): every transformation read in full.
    full: bool = False
    # What a fanned-out cycle's start read for this group (its selection, its delta read, already
    # in the mirror): not read again (failover/cycles.py).
    carried: Carried | None = None

    def plans_everything(self) -> bool:
        """Whether every transformation is planned even if nothing changed: a dry run, an
        operator's button (some kinds, an approval) or a cycle of given transformations."""
        return (self.approving is not None or self.kinds != frozenset(KINDS)
                or (self.ids is not None and not self.selected_only))


class Engine(Reading, Acting, Settling):
    def __init__(
        self,
        backend: DiracBackend | None = None,
        policy: Policy | None = None,
        *,
        actor: str = "system",
        user=None,
        dry_run: bool = False,
        trigger: str = Cycle.Trigger.CLI,
        recorder: recording.CycleRecorder | None = None,
        retries: int | None = None,
        backoff: float | None = None,
        request_key: str | None = None,
        lock_owner: str | None = None,
        circuit_failures: int | None = None,
        concurrency: int | None = None,
    ):
        # Every DIRAC call goes through a circuit breaker (failover/circuit.py): after a few
        # calls in a row without an answer, the cycle stops calling DIRAC.
        self.circuit_failures = settings.DIRAC_CIRCUIT_FAILURES if circuit_failures is None else circuit_failures
        self.circuit = circuit_breaker.Circuit(self.circuit_failures)
        self.backend = circuit_breaker.guard(backend or get_backend(), self.circuit)
        self.policy = policy or Policy.current()
        self.rules_policy = self.policy.as_rules_policy()
        self.actor = actor
        self.user = user
        self.dry_run = dry_run
        self.trigger = trigger
        # Where each treated transformation's jobs go (the reports app registers the aggregate store).
        self.recorder = recorder if recorder is not None else recording.new_recorder()
        self.retries = settings.DIRAC_RETRIES if retries is None else retries
        self.backoff = settings.DIRAC_RETRY_BACKOFF if backoff is None else backoff
        # DIRAC writes in flight at once across the transformations of a batch (cycle/act.py).
        self.concurrency = settings.FAILOVER_DIRAC_CONCURRENCY if concurrency is None else concurrency
        # A fanned-out task passes an owner derived from its cycle item and attempt (see
        # cycles.treat_in_cycle): a later attempt takes the lock only once the earlier one's lease ran out.
        self.owner = lock_owner or locks.new_owner(actor if actor != "system" else "cycle")
        self.lock_seconds = settings.FAILOVER_LEASE_SECONDS
        self.cycle: Cycle | None = None
        # An operator's form carries a one-time key: the first action it creates takes it, so a
        # second submit of the same form finds it taken and acts no more.
        self.request_key = request_key
        self.proposing = self.policy.mode == Policy.Mode.PROPOSE and actor == "system"
        # The current batch's planned transformations, recorded after its turns (Engine._run).
        self._treated: list[Treated] | None = None

    # -- the cycle ----------------------------------------------------------------------------
    def run_cycle(
        self,
        ids: Sequence[int] | None = None,
        kinds: Iterable[str] = KINDS,
        *,
        approving: ActionLog | None = None,
        cycle: Cycle | None = None,
        selected_only: bool = False,
        also_read: Sequence[int] = (),
        full: bool = False,
        carried: Carried | None = None,
    ) -> CycleResult:
        """Run a cycle over ``ids`` (default: the policy's selection).

        With ``cycle``, treat the transformations as part of that existing cycle (one task of a
        fanned-out cycle) and leave its finishing to the caller. ``selected_only`` skips given
        ids that the policy no longer selects (a fanned-out task runs after its cycle read them).
        ``carried``: what that cycle's start read for these ``ids`` (``Carried``), used instead
        of reading it again when it covers every one of them.
        """
        if carried is not None:
            covered = not full and ids and set(ids) <= {t.id for t in carried.selection.selected}
            carried = carried.part(ids) if covered else None
        run = Run(
            ids=tuple(ids) if ids else None,
            kinds=frozenset(kinds),
            approving=approving,
            selected_only=selected_only,
            also_read=tuple(i for i in also_read if i not in (ids or ())),
            full=full,
            carried=carried,
        )
        calls_before = self.backend.calls.snapshot()
        result = CycleResult(cycle_id=None, dry_run=self.dry_run, started=time.monotonic())
        if cycle is not None:
            self.cycle = cycle
            result.cycle_id = cycle.pk
            # The engines of one fanned-out cycle in this process share its circuit.
            self.circuit = circuit_breaker.for_cycle(cycle.pk, cycle.started, self.circuit_failures)
            self.backend = circuit_breaker.guard(self.backend, self.circuit)
        elif not self.dry_run:
            self.cycle = Cycle.objects.create(trigger=self.trigger, backend=self.backend.name, full=full)
            result.cycle_id = self.cycle.pk
        # The locks this cycle takes are leases, renewed while this process works on them.
        renewals = () if self.dry_run else (lambda: locks.renew(self.owner, self.lock_seconds),)
        keeper = leases.Keeper(*renewals, name=f"locks of {self.owner}")
        try:
            with keeper:
                self._run(run, result)
        except circuit_breaker.CircuitOpen as exc:
            # The circuit of this (fanned-out) cycle was already open: nothing was sent, so the
            # given transformations are skipped, not failed.
            for tid in run.ids or ():
                result.outcomes.setdefault(tid, Outcome(tid, "skipped", circuit_breaker.SKIPPED))
            if not run.ids:
                result.message = f"cycle stopped: {exc}"
        except FailoverError as exc:
            result.message = f"cycle stopped: {exc}"
            log.error("cycle stopped: %s", exc)
        except BaseException as exc:
            # Anything else (the database gone, an interrupt) still ends the cycle's row as
            # failed, never "running" for ever; then it goes on to the caller (manage.py makes
            # it one line).
            self._record_death(cycle, exc)
            raise
        result.finished = time.monotonic()
        after = self.backend.calls.snapshot()
        result.calls = {k: after[k] - calls_before.get(k, 0) for k in after if after[k] != calls_before.get(k, 0)}
        if self.cycle is not None:
            self._record_drift(result)
        if self.cycle is not None and cycle is None:
            self.cycle.finished = timezone.now()
            self.cycle.state = Cycle.State.FAILED if result.message else Cycle.State.FINISHED
            self.cycle.transformations = len(result.outcomes)
            self.cycle.actions = sum(len(o.actions) for o in result.outcomes.values())
            self.cycle.errors = result.errors
            self.cycle.calls = result.calls
            self.cycle.outcomes = {
                str(tid): (o.state if not o.message else f"{o.state}: {o.message}")
                for tid, o in result.outcomes.items()
            }
            self.cycle.message = result.message
            self.cycle.save()
        return result

    def _record_drift(self, result: CycleResult) -> None:
        """The cycle record's resync and drift figures, summed from the mirror's rows of this cycle
        (so the tasks of a fanned-out cycle add up without overwriting each other)."""
        rows = list(MirrorState.objects.filter(resync_cycle=self.cycle.pk).values_list("transformation_id", "drift"))
        if not rows:
            return
        total = mirror_store.Drift()
        by_t = {}
        for tid, d in rows:
            if d and any(d.values()):
                total.add(mirror_store.Drift(**d))
                by_t[str(tid)] = d
        drift = {**total.as_dict(), "transformations": by_t}
        fields = {"resynced": len(rows), "drift_rows": total.rows, "drift": drift}
        Cycle.objects.filter(pk=self.cycle.pk).update(**fields)
        for k, v in fields.items():
            setattr(self.cycle, k, v)
        result.resynced, result.drift = len(rows), drift
        if total.rows:
            log.warning("cycle %s: full resync of %d transformations found %d rows of drift (%d added, %d changed, "
                        "%d removed) in %s; repaired", self.cycle.pk, len(rows), total.rows, total.added,
                        total.changed, total.removed, ", ".join(sorted(by_t, key=int)))

    def _record_death(self, given: Cycle | None, exc: BaseException) -> None:
        if self.cycle is None or given is not None:
            return
        first = (str(exc).strip().splitlines() or [""])[0]
        try:
            Cycle.objects.filter(pk=self.cycle.pk, state=Cycle.State.RUNNING).update(
                state=Cycle.State.FAILED, finished=timezone.now(),
                message=f"cycle stopped: {type(exc).__name__}: {first}"[:2000],
            )
        except Exception:  # the database itself may be what failed
            log.exception("cycle %s: could not record that it stopped", self.cycle.pk)

    def _run(self, run: Run, result: CycleResult) -> None:
        """Read the selection, then per batch: read its inputs, and per transformation plan, act, settle."""
        carried = run.carried
        selection = carried.selection if carried is not None else self.read_selection(run.ids, run.also_read)
        if run.ids and run.selected_only:
            keep = []
            for t in selection.selected:
                if policy_selects(self.policy, t):
                    keep.append(t)
                else:
                    result.outcomes[t.id] = Outcome(t.id, "skipped", f"now {t.status}: no longer selected")
            selection.selected = keep
        batch_size = settings.FAILOVER_BATCH_SIZE
        # The delta reads of the whole selection in one go: the same few calls for 1 batch or 50.
        delta = None
        try:
            if carried is not None and carried.delta is not None:
                delta = carried.delta
            else:
                delta = self.read_deltas([t.id for t in selection.selected], full=run.full)
        except FailoverError as exc:
            # Each batch reads its own delta then (and fails alone if DIRAC still does not answer).
            log.warning("reading what changed in DIRAC failed for the whole selection (%s); batch by batch", exc)
        for start in range(0, len(selection.selected), batch_size):
            batch = selection.selected[start : start + batch_size]
            if self.circuit.is_open:
                self._skip_unreachable(result, batch)
                continue
            # What the quiet check and the quiet ones' carrying forward read of the pages' rows.
            states = {s.transformation_id: s for s in TransformationState.objects.filter(
                transformation_id__in=[t.id for t in batch]).only(*_QUIET_READ)}
            try:
                inputs = self.read_batch(
                    batch, selection, full=run.full, delta=delta,
                    replan=lambda t, inputs: not self._is_quiet(run, t, selection, inputs, states.get(t.id)),
                )
            except circuit_breaker.CircuitOpen:
                self._skip_unreachable(result, batch)
                continue
            except FailoverError as exc:
                for t in batch:
                    result.outcomes[t.id] = Outcome(t.id, "error", f"reading DIRAC failed: {exc}")
                continue
            # The history for insight of those the read found will be planned, in one query
            # (failover/history.py); a quiet one reads none.
            history.prefetch([t.id for t in batch if t.id in inputs.assigned_read])
            quiet: list[tuple[TransformationInfo, MirrorState]] = []
            # What each planned transformation's turn leaves to record for the whole batch.
            treated: list[Treated] = []
            self._treated = treated

            def turn(t: TransformationInfo, inputs: BatchInputs = inputs) -> Turn[Outcome]:
                # Decided when the turn starts, after its parent's turn (treat_batch's order).
                if not self._is_quiet(run, t, selection, inputs, states.get(t.id)):
                    if t.id not in inputs.assigned_read:
                        # Its parent moved on in this cycle: planned after all.
                        self.read_assigned(inputs, [t])
                    return (yield from self._treat(run, t, selection, inputs))
                ms = inputs.states[t.id]
                quiet.append((t, ms))
                return Outcome(t.id, blockers=[Blocker.from_json(b) for b in ms.plan_blockers])

            # Each transformation's turn; the DIRAC writes of different ones overlap (cycle/act.py).
            try:
                result.outcomes.update(self.treat_batch(batch, turn))
            finally:
                self._treated = None
            if treated and not self.dry_run:
                self._record_treated(treated)
            if quiet and not self.dry_run:
                self._carry_quiet(quiet, {tid: st.last_cycle_id for tid, st in states.items() if st.last_cycle_id})

    # -- when a transformation is planned again ----------------------------------------------
    def _parent(self, t: TransformationInfo, selection: Selection) -> rules.ParentView | None:
        parent_id = rules.parent_of(t)
        if parent_id is None:
            return None
        p = selection.known.get(parent_id)
        return (rules.parent_view(p, selection.counts.get(parent_id)) if p
                else rules.ParentView(parent_id, "Unknown", "Unknown", False))

    def _plan_key(self, t: TransformationInfo, selection: Selection, counters: tuple[int, int],
                  flush_count: int) -> str:
        """A digest of every input of a transformation's plan but its tasks and jobs: the
        transformation, its file counts, its parent as it is now, its flush count and its reassign
        counters (``counters``: how many files have one, and their sum), the policy and the stall
        setting."""
        p = self.rules_policy
        # Sets sorted: a frozenset's order changes from one process to the next (hash seeds).
        policy = (sorted(p.complete_types), sorted(p.flush_types), sorted(p.reassign_types), sorted(p.report_types),
                  p.max_reassign, p.max_flush)
        parts = (
            t, sorted(selection.counts.get(t.id, FileCounts()).by_status.items()), self._parent(t, selection),
            flush_count, counters[0], counters[1], policy, self.proposing,
            settings.FAILOVER_STALL_CYCLES,
        )
        return hashlib.sha256(repr(parts).encode()).hexdigest()

    def _is_quiet(self, run: Run, t: TransformationInfo, selection: Selection, inputs: BatchInputs,
                  state: TransformationState | None) -> bool:
        """Whether the transformation needs no plan this cycle: its last plan found nothing to do
        that could change by itself (no decision, no task waiting for its job, no failed read),
        none of its tasks or jobs changed in the mirror since, no action of it is pending, every
        other input is the same (``_plan_key``) and its "no progress" count does not reach
        FAILOVER_STALL_CYCLES now. Such a transformation costs no DIRAC call and no read of its
        tasks or jobs: the cycle only counts one more unchanged cycle for it."""
        if self.dry_run or run.plans_everything() or state is None or state.last_seen is None:
            return False
        ms = inputs.states.get(t.id)
        if ms is None or not ms.quiet or t.id in inputs.refresh.touched or t.id in inputs.pending:
            return False
        if state.unchanged_cycles + 1 == settings.FAILOVER_STALL_CYCLES - 1:
            return False
        replan = settings.FAILOVER_REPLAN_MINUTES
        if replan and (ms.planned is None or timezone.now() - ms.planned >= timedelta(minutes=replan)):
            # What follows the clock (insight's alerts and forecast) is looked at again.
            return False
        return ms.plan_key == self._plan_key(t, selection, inputs.counter_totals.get(t.id, (0, 0)),
                                             state.flush_count)

    def _carry_quiet(self, quiet: Sequence[tuple[TransformationInfo, MirrorState]], previous: dict[int, int]) -> None:
        """The quiet transformations of a batch: one more unchanged cycle, seen now, the same
        aggregates recorded for this cycle: a few statements for the whole batch."""
        ids = [t.id for t, _ in quiet]
        with transaction.atomic():
            for chunk in mirror_store.chunks(ids):
                TransformationState.objects.filter(transformation_id__in=chunk).update(
                    unchanged_cycles=F("unchanged_cycles") + 1, last_seen=timezone.now(),
                    **({"last_cycle": self.cycle} if self.cycle is not None else {}),
                )
        if self.cycle is not None:
            self.recorder.record_unchanged(
                self.cycle.pk, self.cycle.started,
                [recording.SnapshotMeta(t.id, t.production, t.type) for t, _ in quiet], previous,
            )

    def _record_treated(self, treated: Sequence[Treated]) -> None:
        """After a batch's turns, in one transaction: the task statuses its turns wrote to DIRAC, in
        the mirror (one statement); the aggregates of its planned transformations (one write for
        the batch, failover/recording.py); their plans' state in the mirror (one UPDATE).
        Should the cycle die before this, the next cycle plans these transformations again: one
        whose tasks or jobs changed was marked not quiet when the mirror was refreshed
        (cycle/read.py), the statuses written to DIRAC come back in the next delta (their
        LastUpdateTime moved), and one whose other inputs changed keeps its old plan key."""
        with transaction.atomic():
            mirror_store.set_task_statuses([row for x in treated for row in x.synced], timezone.now())
            if self.cycle is not None:
                recording.record_all(self.recorder, self.cycle.pk, self.cycle.started,
                                     [(x.meta, x.aggregates) for x in treated if x.aggregates is not None])
            mirror_store.write_states((x.meta.transformation_id, x.plan_state) for x in treated)

    def _skip_unreachable(self, result: CycleResult, batch: Sequence[TransformationInfo]) -> None:
        for t in batch:
            result.outcomes[t.id] = Outcome(t.id, "skipped", circuit_breaker.SKIPPED)

    # -- one transformation: plan, act, settle, mirror -----------------------------------------
    def _treat(self, run: Run, t: TransformationInfo, selection: Selection, inputs: BatchInputs) -> Turn[Outcome]:
        """One transformation's turn: a generator that yields its DIRAC writes (cycle/act.py).
        What is left to record after the batch (its aggregates, its plan's state) goes to the
        batch's list (``self._treated``, written by ``Engine._record_treated``); outside a batch
        it is written at the turn's end."""
        treated = self._treated
        outcome = Outcome(t.id)
        if self.circuit.is_open:
            # DIRAC stopped answering earlier in this cycle: not a word more to it this cycle.
            outcome.state, outcome.message = "skipped", circuit_breaker.SKIPPED
            return outcome
        if not self.dry_run and not locks.acquire(t.id, self.owner, self.lock_seconds):
            outcome.state = "skipped"
            outcome.message = f"locked by {locks.holder(t.id) or 'another worker'}"
            return outcome
        known, counts = selection.known, selection.counts
        mirror: dict = {}
        observed: history.Observation | None = None
        plan_state: dict = {"quiet": False}
        aggregates: list[tuple] | None = None
        synced_rows: list[tuple[int, int, str]] = []
        # The last action settled done in this turn: written with the lock's release.
        last: dict = {}
        try:
            if not self.dry_run:
                self._reconcile_pending(t)
            counters = read_counters([t.id]).get(t.id, {})
            # What this turn reads of the row (the pages' fields are written, not read, here).
            state = (TransformationState.objects.filter(transformation_id=t.id)
                     .only(*_STATE_READ).first())
            flush_count = state.flush_count if state else 0
            t_counts = counts.get(t.id, FileCounts())
            parent_id = rules.parent_of(t)
            parent = self._parent(t, selection)
            key = self._plan_key(t, selection, (len(counters), sum(counters.values())), flush_count)
            assigned = inputs.assigned.get(t.id, [])
            # The tasks whose status moves and those of the Assigned files, and every task
            # counted: never all of the transformation's tasks and jobs (insight's jobs: below).
            view = mirror_store.plan_view(t.id, (f.task for f in assigned))
            tasks, t_jobs = view.tasks, view.jobs
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
                kinds=run.kinds,
                registered=inputs.registered_of(t.id),
                summary=view.summary,
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
                text = (f"{count(stuck, 'Assigned file')} belong{pluralize(stuck, 's,')} "
                        "to tasks whose job is final (Done)")
                plan.blockers.append(Blocker(blockers.ASSIGNED_FINAL, text, count=stuck, fix=REASSIGN))
            no_job = view.summary.without_job
            previous_no_job = state.tasks_without_job if state else 0
            if no_job and previous_no_job:
                # New tasks have no job for a moment; only a second cycle in a row is news.
                n = min(no_job, previous_no_job)
                text = f"{count(n, 'task')} {pluralize(n, 'has,have')} no job for two cycles or more"
                plan.blockers.append(Blocker(blockers.TASKS_WITHOUT_JOB, text, count=n))
            if inputs.assigned_error:
                plan.blockers.append(Blocker(blockers.READ_FAILED, inputs.assigned_error))
            if inputs.registered_error and inputs.registered_of(t.id):
                plan.blockers.append(Blocker(blockers.READ_FAILED, inputs.registered_error))
            outcome.decisions = plan.decisions
            outcome.blockers = plan.blockers
            outcome.at_cap = plan.at_cap
            if self.dry_run:
                # Show what the children would see after this transformation's turn.
                for decision in plan.decisions:
                    if decision.kind in (rules.COMPLETE, rules.FLUSH_ACTION):
                        known[t.id] = _with_status(t, decision.status)
                return outcome
            moved: set[str] = set()
            for decision in plan.decisions:
                if self.proposing and decision.kind != rules.SYNC:
                    # Copying job statuses is bookkeeping and always done; the rest waits for
                    # an operator's approval.
                    proposal = self._propose(t, decision)
                    if proposal is not None:
                        outcome.actions.append(proposal.pk)
                    continue
                action = yield from self._act_steps(t, decision, run.approving, last=last)
                outcome.actions.append(action.pk)
                if action.state == ActionLog.State.DONE and decision.kind == rules.REASSIGN:
                    moved.update(action.details.get("moved", []))
                if action.state == ActionLog.State.DONE and decision.kind == rules.SYNC:
                    # What we wrote, in the mirror now (after the batch's turns, with the others'):
                    # the next delta brings it back unchanged. Should the cycle die first, that
                    # delta brings it back as a change, and the transformation is planned again.
                    synced_rows.extend((t.id, task_id, status) for status, task_ids in decision.tasks.items()
                                       for task_id in task_ids)
                if action.state == ActionLog.State.DONE and decision.kind in (rules.COMPLETE, rules.FLUSH_ACTION):
                    # The child treated after us must see the status we just wrote.
                    known[t.id] = _with_status(t, decision.status)
                if action.state in (ActionLog.State.FAILED, ActionLog.State.PENDING, ActionLog.State.INTERRUPTED):
                    outcome.state = "error"
                    outcome.message = action.error or "no answer from DIRAC; will be reconciled"
            # The report's aggregates and the overview's counters: one GROUP BY over the mirror.
            # Recorded with the batch's others after their turns (Engine._record_treated).
            aggregates = mirror_store.job_aggregates(t.id)
            jobs_by_status: dict[str, int] = {}
            for row in aggregates:
                jobs_by_status[row[0]] = jobs_by_status.get(row[0], 0) + row[4]
            now = known.get(t.id, t)
            # The reassign counters read under the lock, and the files this turn moved (it holds the lock).
            mirror = self._mirror(now, t_counts, dict(sorted(jobs_by_status.items())), state,
                                  reassigned=len(set(counters) | moved))
            mirror["tasks_without_job"] = no_job
            mirror["failed_waiting"] = _failed_waiting(
                synced, view.summary,
                assigned if rules.summary_needs_assigned_files(t, view.summary, self.rules_policy) else None, moved)
            # Conditions seen after the actions, on what the cycle just read and kept.
            plan.blockers.extend(after_acting(now, known.get(parent_id) if parent_id else None, t_counts,
                                              mirror["jobs"], mirror["unchanged_cycles"]))
            # Insight from what was just read and the stored history: site hints, alerts, forecast.
            counted = history.JobsCounted(
                done=sum(n for s, n in jobs_by_status.items() if s in DONE_TASK_STATUSES),
                failed=sum(n for s, n in jobs_by_status.items() if s in FAILED_TASK_STATUSES),
                unsubmitted=view.summary.without_job, oldest_unsubmitted=view.summary.oldest_without_job,
            )
            cfg = history.insight_settings()
            observed = history.observe(now, t_counts, mirror_store.recent_jobs(t.id, cfg), (),
                                       known.get(parent_id) if parent_id else None,
                                       self.cycle.pk if self.cycle else None, cfg=cfg, counted=counted)
            plan.blockers.extend(observed.blockers)
            mirror.update(observed.fields)
            del tasks, t_jobs, synced, view
            plan.tasks = []
            plan_state = {
                "plan_key": key,
                "planned": timezone.now(),
                # Nothing to do that could change by itself: planned again only when an input moves.
                # Only a plan of every kind can say so (an operator's sync-only run cannot).
                "quiet": (not plan.decisions and not no_job and not inputs.assigned_error
                          and outcome.state == "ok" and run.kinds == frozenset(KINDS) and run.approving is None),
                "plan_blockers": [b.as_json() for b in plan.blockers],
            }
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
                with transaction.atomic():
                    locks.release(t.id, self.owner, **mirror, **last)
                    if mirror:
                        attention.save_blockers(t.id, plan.blockers)
                    if observed is not None:
                        history.save(observed)
                if treated is not None:
                    treated.append(Treated(recording.SnapshotMeta(t.id, t.production, t.type), aggregates, plan_state,
                                           synced_rows))
                else:
                    mirror_store.set_task_statuses(synced_rows, timezone.now())
                    MirrorState.objects.filter(transformation_id=t.id).update(**plan_state)
                    if aggregates is not None and self.cycle is not None:
                        recording.record_all(self.recorder, self.cycle.pk, self.cycle.started,
                                             [(recording.SnapshotMeta(t.id, t.production, t.type), aggregates)])
        return outcome

    def _mirror(self, t: TransformationInfo, counts: FileCounts, jobs_by_status: dict[str, int], state,
                *, reassigned: int) -> dict:
        """The transformation's row for the pages (TransformationState), written with the lock's release;
        ``jobs_by_status`` is the mirror's GROUP BY, ``reassigned`` how many of its files have a
        reassign counter now."""
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
            "last_seen": timezone.now(),
            # Consecutive cycles in which neither file nor job counts moved.
            "unchanged_cycles": (
                state.unchanged_cycles + 1
                if state and state.last_seen and state.files == counts.by_status and state.jobs == dict(jobs_by_status)
                else 0
            ),
            "reassigned_files": reassigned,
        }
        if self.cycle is not None:
            fields["last_cycle"] = self.cycle
        return fields


# The fields of TransformationState the quiet check reads (``Engine._is_quiet``, ``_carry_quiet``).
_QUIET_READ = ("transformation_id", "last_seen", "unchanged_cycles", "flush_count", "last_cycle_id")
# The fields of TransformationState a turn reads (flush and no-job counts; _mirror's "unchanged").
_STATE_READ = ("transformation_id", "flush_count", "tasks_without_job", "unchanged_cycles", "last_seen", "files",
               "jobs")


def after_acting(t: TransformationInfo, parent: TransformationInfo | None, counts: FileCounts,
                 jobs_by_status: dict[str, int], unchanged_cycles: int) -> list[Blocker]:
    """The blockers seen once a transformation's actions are done: a child left Active with nothing
    running under a final parent, and no progress over FAILOVER_STALL_CYCLES cycles."""
    out = []
    if t.status != ACTIVE:
        return out
    running = sum(n for status, n in jobs_by_status.items() if status not in FINAL_TASK_STATUSES)
    if parent is not None and parent.status in FINAL_TRANSFORMATION_STATUSES and not running:
        unused = counts.get(UNUSED)
        fix = COMPLETE if counts.processed else (FLUSH_ACTION if unused else None)
        out.append(Blocker(
            blockers.CHILD_ACTIVE, f"still Active with no job running while its parent {parent.id} is {parent.status}",
            related=parent.id, fix=fix,
        ))
    # N identical cycles in a row are N - 1 unchanged ones.
    stall = settings.FAILOVER_STALL_CYCLES
    if unchanged_cycles >= stall - 1 and sum(jobs_by_status.values()) and counts.total > counts.get(PROCESSED):
        out.append(Blocker(blockers.NO_PROGRESS, f"no job changed state over the last {count(stall, 'cycle')}",
                           count=stall))
    return out


def _failed_waiting(tasks: Sequence[TaskInfo], summary: TaskSummary, assigned: Sequence | None,
                    moved: set[str]) -> int:
    """Failed or Killed tasks whose files still wait in them (Assigned, not reassigned by this run).
    Without the Assigned files read (``None``: the rules did not need them), every one waits
    (``summary`` counts them). ``tasks`` (synced) holds at least those of the Assigned files."""
    if assigned is None:
        return summary.failed
    failed = {task.task for task in tasks if task.status in FAILED_TASK_STATUSES}
    return len({f.task for f in assigned if f.task in failed and f.status == ASSIGNED and f.lfn not in moved})


def _job_context(task: TaskInfo | None, jobs: dict[int, JobInfo]) -> dict:
    job = jobs.get(task.job) if task else None
    if task is None or job is None:
        return {"job": task.job if task else 0, "status": task.status if task else "", "site": "", "minor_status": ""}
    return {"job": job.id, "status": job.status, "site": job.site, "minor_status": job.minor_status}


def _with_status(t: TransformationInfo, status: str) -> TransformationInfo:
    return TransformationInfo(t.id, t.name, t.type, status, t.group_size, t.production, t.parent)
