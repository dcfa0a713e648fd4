"""Settle: record an action's outcome with the counters it moves; reconcile what was interrupted."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from failover import rules
from failover.domain import ASSIGNED, UNUSED, TransformationInfo
from failover.errors import FailoverError
from failover.models import ActionLog, ReassignCounter, TransformationState
from failover.signals import action_finished

log = logging.getLogger(__name__)


class Settling:
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
