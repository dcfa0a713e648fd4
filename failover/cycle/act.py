"""Act: carry out a decision on DIRAC, or propose it; every action is logged before DIRAC is called.

An action is written ``pending`` first and settled after (``failover/cycle/settle.py``); a timeout
leaves it pending and it is reconciled against DIRAC's state. In propose mode the cycle writes a
``proposed`` entry instead; an operator's approval (``failover/actions.py``) runs the engine again
with that proposal in the run's context, and the decision then takes the proposal over.

Overlapped writes. A transformation's turn (``Engine._treat``) is a generator: wherever it writes
to DIRAC it yields a ``Write`` and is resumed with DIRAC's answer (or the error thrown into it).
``Acting.treat_batch`` drives a batch's turns: with ``FAILOVER_DIRAC_CONCURRENCY`` above 1 it runs
only the DIRAC calls in a ``WritePool`` of at most that many threads, while everything else (the
lock, the plan, logging an action pending, settling it, the pages' row) stays in the calling
thread, in the turn's own order. So one transformation's writes still follow each other, each is
logged pending before its call and settled after under the transformation's lock, and each answer
goes back to the turn that asked for it. A child's turn starts only after its parent's turn ended
(it must see the status its parent's turn wrote). With 1, or when the backend cannot be called
from another thread, the turns run one after the other exactly as before.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import IntegrityError, connections, transaction
from django.template.defaultfilters import pluralize

from failover import circuit as circuit_breaker, outcomes, rules
from failover.cycle.settle import settle, settle_reassign, write_last_action
from failover.domain import UNUSED, TransformationInfo
from failover.errors import BackendError, BackendTimeout, DuplicateRequest, StaleProposal
from failover.models import ActionLog

log = logging.getLogger(__name__)
R = TypeVar("R")


@dataclass(frozen=True)
class Write:
    """One DIRAC write a turn waits for: the call, made by whoever drives the turn."""

    call: Callable[[], Any]
    transformation: int


# A turn yields Writes, is sent their answers, and returns its result.
Turn = Generator[Write, Any, R]


def run_inline(turn: Turn[R]) -> R:
    """Drive a turn in this thread: each write is called here, as plain sequential code would."""
    try:
        request = next(turn)
        while True:
            try:
                answer = request.call()
            except BaseException as exc:  # noqa: BLE001 - handed to the turn, as if raised there
                request = turn.throw(exc)
                continue
            request = turn.send(answer)
    except StopIteration as stop:
        return stop.value


class WritePool:
    """At most ``size`` threads making DIRAC calls. Each thread closes its own database
    connections (the simulated DIRAC's) when the pool closes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []

    def submit(self, call: Callable[[], Any]) -> Future:
        future: Future = Future()
        if len(self.threads) < self.size:
            thread = threading.Thread(target=self._work, name=f"dirac-write-{len(self.threads) + 1}", daemon=True)
            self.threads.append(thread)
            thread.start()
        self.jobs.put((future, call))
        return future

    def _work(self) -> None:
        try:
            while True:
                job = self.jobs.get()
                if job is None:
                    return
                future, call = job
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(call())
                except BaseException as exc:  # noqa: BLE001 - the turn decides what it means
                    future.set_exception(exc)
        finally:
            connections.close_all()

    def close(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join()
        self.threads.clear()


class Acting:
    """The engine's writes to DIRAC (a mixin: it uses the engine's backend, actor and cycle)."""

    def _act(self, t: TransformationInfo, decision: rules.Decision, approving: ActionLog | None = None) -> ActionLog:
        """Log the action pending, carry it out and settle it, all in this thread."""
        return run_inline(self._act_steps(t, decision, approving))

    def _act_steps(
        self, t: TransformationInfo, decision: rules.Decision, approving: ActionLog | None = None, *,
        last: dict | None = None,
    ) -> Turn[ActionLog]:
        """``last``: where a settled action leaves the transformation's last-action fields, for
        the caller to write with the lock's release (cycle/settle.py ``_last_action``)."""
        if approving is not None and decision.kind == approving.kind and decision.kind != rules.SYNC:
            return (yield from self._act_on_proposal(t, decision, approving, last=last))
        key, self.request_key = self.request_key, None
        fields = dict(cycle=self.cycle, transformation_id=t.id, kind=decision.kind, actor=self.actor, user=self.user,
                      reason=decision.reason, details=decision.as_dict(), request_key=key)
        if key is None:
            # One INSERT, committed on its own: without a one-time key there is no duplicate to
            # catch, so no transaction (or savepoint) around it.
            action = ActionLog.objects.create(**fields)
        else:
            try:
                with transaction.atomic():
                    action = ActionLog.objects.create(**fields)
            except IntegrityError:
                raise DuplicateRequest("this request was already carried out") from None
        return (yield from self._carry_out_steps(action, decision, last=last))

    def _act_on_proposal(self, t: TransformationInfo, decision: rules.Decision, proposal: ActionLog, *,
                         last: dict | None = None) -> Turn[ActionLog]:
        if decision.kind == rules.REASSIGN:
            # Only the proposed files that still qualify; files that newly failed wait for the
            # next proposal, so an operator approves exactly what was shown or less. The reason
            # is said again for what is carried out, so the text and the outcome give the same
            # numbers (a proposal of 40 files of which 10 still qualify says so).
            proposed = {lfn for lfns in proposal.details.get("tasks", {}).values() for lfn in lfns}
            decision.tasks = {
                task: [lfn for lfn in lfns if lfn in proposed] for task, lfns in decision.tasks.items()
            }
            decision.tasks = {task: lfns for task, lfns in decision.tasks.items() if lfns}
            if not decision.tasks:
                return proposal
            decision.reason = rules.reassign_reason(decision.tasks)
            gone = len(proposed) - len(decision.lfns)
            if gone:
                # Gone: now Processed, Unused or in a later task, or at MaxReassign.
                decision.reason += (f" (of the {outcomes.count(len(proposed), 'file')} proposed; "
                                    f"{gone} no longer qualif{pluralize(gone, 'ies,y')})")
        updated = ActionLog.objects.filter(pk=proposal.pk, state=ActionLog.State.PROPOSED).update(
            state=ActionLog.State.PENDING,
            actor=self.actor,
            user=self.user,
            reason=decision.reason,
            details={**decision.as_dict(), "proposed": proposal.details},
        )
        if not updated:
            raise StaleProposal(f"proposal {proposal.pk} was handled meanwhile")
        proposal.refresh_from_db()
        return (yield from self._carry_out_steps(proposal, decision, last=last))

    def _propose(self, t: TransformationInfo, decision: rules.Decision) -> ActionLog | None:
        """Propose a decision: it supersedes the waiting proposal of its kind (ActionLog.propose)."""
        return ActionLog.propose(
            cycle=self.cycle,
            transformation_id=t.id,
            kind=decision.kind,
            actor=self.actor,
            reason=decision.reason,
            details=decision.as_dict(),
        )

    def carry_out(self, action: ActionLog, decision: rules.Decision) -> ActionLog:
        """Carry out a pending action on DIRAC and settle it. Timeouts leave it pending, then reconcile."""
        return run_inline(self._carry_out_steps(action, decision))

    def _carry_out_steps(self, action: ActionLog, decision: rules.Decision, *,
                         last: dict | None = None) -> Turn[ActionLog]:
        """``carry_out`` as a turn: each DIRAC call is yielded, the database work stays here."""
        tid = decision.transformation
        backend = self.backend
        try:
            if decision.kind == rules.SYNC:
                for status, task_ids in decision.tasks.items():
                    yield Write(
                        lambda task_ids=task_ids, status=status: self._retrying(
                            backend.set_task_status, tid, task_ids, status, what="write"
                        ),
                        tid,
                    )
                settle(action, ActionLog.State.DONE, result=outcomes.sync_result(decision.tasks), last=last)
            elif decision.kind in (rules.COMPLETE, rules.FLUSH_ACTION):
                yield Write(
                    lambda: backend.set_transformation_status(tid, decision.status, expected=decision.expected), tid
                )
                settle(action, ActionLog.State.DONE, result=outcomes.status_result(decision.expected, decision.status),
                       flush=decision.kind == rules.FLUSH_ACTION, last=last)
            elif decision.kind == rules.REASSIGN:
                written = yield Write(lambda: backend.set_file_status(tid, decision.lfns, UNUSED), tid)
                settle_reassign(action, decision, written, last=last)
        except circuit_breaker.CircuitOpen as exc:
            # Never sent, so nothing is unknown: the action did not happen.
            settle(action, ActionLog.State.FAILED, "not sent: DIRAC unreachable", error=str(exc))
        except BackendTimeout as exc:
            action.error = f"no answer from DIRAC ({exc}); outcome unknown"
            action.save(update_fields=["error"])
            if last:
                # The reconciliation writes its own last action at once: an earlier one kept for
                # the lock's release goes first, so the order stays that of the settlements.
                write_last_action(action.transformation_id, last)
                last.clear()
            self._reconcile(action)
        except BackendError as exc:
            settle(action, ActionLog.State.FAILED, "DIRAC refused", error=str(exc))
        # Every settlement refreshed the instance (ActionLog.settle); one left pending has its error.
        return action

    # -- a batch's turns, overlapped ----------------------------------------------------------
    def treat_batch(self, batch: Sequence[TransformationInfo], turn: Callable[[TransformationInfo], Turn[R]]) -> dict:
        """Each transformation's turn, in ``batch`` order (parents first); their outcomes by id.

        Up to ``self.concurrency`` turns wait for DIRAC at once; a child's turn starts after its
        parent's (when both are in the batch) has ended."""
        limit = self.concurrency
        if limit <= 1 or len(batch) < 2 or self.dry_run or not getattr(self.backend, "concurrent_calls", True):
            return {t.id: run_inline(turn(t)) for t in batch}
        outcomes: dict[int, Any] = {}
        waiting = list(batch)
        unfinished = {t.id for t in batch}
        started: dict[int, Turn] = {}
        in_flight: dict[Future, int] = {}
        pool = WritePool(limit)

        def step(tid: int, *, answer: Any = None, error: BaseException | None = None, first: bool = False) -> None:
            gen = started[tid]
            try:
                if first:
                    request = next(gen)
                elif error is not None:
                    request = gen.throw(error)
                else:
                    request = gen.send(answer)
            except StopIteration as stop:
                outcomes[tid] = stop.value
                unfinished.discard(tid)
                del started[tid]
                return
            in_flight[pool.submit(request.call)] = tid

        try:
            while waiting or in_flight:
                i = 0
                while len(started) < limit and i < len(waiting):
                    t = waiting[i]
                    if rules.parent_of(t) in unfinished:
                        i += 1  # its parent's turn first
                        continue
                    waiting.pop(i)
                    started[t.id] = turn(t)
                    step(t.id, first=True)
                if not in_flight:
                    continue
                done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                for future in done:
                    tid = in_flight.pop(future)
                    error = future.exception()
                    if error is not None:
                        step(tid, error=error)
                    else:
                        step(tid, answer=future.result())
        except BaseException:
            # Something no turn handles (the database gone, an interrupt): the other turns end
            # here (their locks released, their pending actions reconciled next cycle).
            for gen in started.values():
                gen.close()
            raise
        finally:
            pool.close()
        return {t.id: outcomes[t.id] for t in batch if t.id in outcomes}
