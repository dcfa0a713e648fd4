"""Act: carry out a decision on DIRAC, or propose it; every action is logged before DIRAC is called.

An action is written ``pending`` first and settled after (``failover/cycle/settle.py``); a timeout
leaves it pending and it is reconciled against DIRAC's state. In propose mode the cycle writes a
``proposed`` entry instead; an operator's approval (``failover/actions.py``) runs the engine again
with that proposal in the run's context, and the decision then takes the proposal over.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.template.defaultfilters import pluralize

from failover import circuit as circuit_breaker, outcomes, rules
from failover.cycle.settle import settle, settle_reassign
from failover.domain import UNUSED, TransformationInfo
from failover.errors import BackendError, BackendTimeout, DuplicateRequest, StaleProposal
from failover.models import ActionLog


class Acting:
    """The engine's writes to DIRAC (a mixin: it uses the engine's backend, actor and cycle)."""

    def _act(self, t: TransformationInfo, decision: rules.Decision, approving: ActionLog | None = None) -> ActionLog:
        if approving is not None and decision.kind == approving.kind and decision.kind != rules.SYNC:
            return self._act_on_proposal(t, decision, approving)
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
        return self.carry_out(action, decision)

    def _act_on_proposal(self, t: TransformationInfo, decision: rules.Decision, proposal: ActionLog) -> ActionLog:
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
        return self.carry_out(proposal, decision)

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
        tid = decision.transformation
        try:
            if decision.kind == rules.SYNC:
                for status, task_ids in decision.tasks.items():
                    self._retrying(self.backend.set_task_status, tid, task_ids, status, what="write")
                settle(action, ActionLog.State.DONE, result=outcomes.sync_result(decision.tasks))
            elif decision.kind in (rules.COMPLETE, rules.FLUSH_ACTION):
                self.backend.set_transformation_status(tid, decision.status, expected=decision.expected)
                settle(action, ActionLog.State.DONE, result=outcomes.status_result(decision.expected, decision.status),
                       flush=decision.kind == rules.FLUSH_ACTION)
            elif decision.kind == rules.REASSIGN:
                written = self.backend.set_file_status(tid, decision.lfns, UNUSED)
                settle_reassign(action, decision, written)
        except circuit_breaker.CircuitOpen as exc:
            # Never sent, so nothing is unknown: the action did not happen.
            settle(action, ActionLog.State.FAILED, "not sent: DIRAC unreachable", error=str(exc))
        except BackendTimeout as exc:
            action.error = f"no answer from DIRAC ({exc}); outcome unknown"
            action.save(update_fields=["error"])
            self._reconcile(action)
        except BackendError as exc:
            settle(action, ActionLog.State.FAILED, "DIRAC refused", error=str(exc))
        action.refresh_from_db()
        return action
