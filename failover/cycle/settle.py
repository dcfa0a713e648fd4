"""Settle: record an action's outcome with the counters it moves; reconcile what was interrupted.

Every settlement goes through ``ActionLog.settle`` (failover/models.py): a conditional UPDATE from
pending (or proposed) to a final state, the counters in the same transaction, and
``action_finished`` sent every time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.db import connection
from django.db.models import F
from django.utils import timezone

from failover import outcomes, rules
from failover.domain import UNUSED, TransformationInfo
from failover.errors import FailoverError
from failover.models import ActionLog, ReassignCounter, TaskFile, TransformationState

log = logging.getLogger(__name__)


def last_action_fields(action: ActionLog, result: dict) -> dict:
    """The transformation's last action: the entry itself (the overview builds its sentence from the
    entry's result) and, for the API and its scripts, the text "<kind>: <what happened>" as before."""
    text = f"{action.get_kind_display()}: {outcomes.phrase(action.kind, result)}"
    return {"last_action": text[:255], "last_action_at": timezone.now(), "last_action_log": action}


def _last_action(action: ActionLog, result: dict, last: dict | None = None) -> None:
    """Write the transformation's last action now, or, with ``last`` (a turn of the engine that
    holds the lock and writes its pages' row when it releases it), keep it there for that write."""
    fields = last_action_fields(action, result)
    if last is not None:
        last.clear()
        last.update(fields)
        return
    write_last_action(action.transformation_id, fields)


def write_last_action(transformation_id: int, fields: dict) -> None:
    TransformationState.objects.filter(transformation_id=transformation_id).update(**fields)


def settle(action: ActionLog, state: str, outcome: str = "", *, error: str = "", flush: bool = False,
           result: dict | None = None, last: dict | None = None) -> bool:
    """Settle a pending action; a done flush moves the flush counter with it. ``result`` (the
    numbers, failover/outcomes.py) gives the outcome's text when none is given. ``last``: see
    ``_last_action``."""
    tid = action.transformation_id
    result = result or {}
    outcome = outcome or outcomes.phrase(action.kind, result)

    def then() -> None:
        if state != ActionLog.State.DONE:
            return
        if flush:
            TransformationState.objects.filter(transformation_id=tid).update(flush_count=F("flush_count") + 1)
        _last_action(action, result, last)

    return action.settle(state, outcome, error=error, then=then, result=result)


def settle_reassign(action: ActionLog, decision: rules.Decision, written: dict[str, str], *,
                    last: dict | None = None) -> bool:
    """Settle a reassign from what DIRAC says it wrote: only files now Unused move their counter.
    ``last``: see ``_last_action``."""
    moved = sorted(lfn for lfn, status in written.items() if status == UNUSED)
    result = outcomes.reassign_result(decision.lfns, written)

    def then() -> None:
        bump_counters(action.transformation_id, moved)
        record_task_files(action)
        _last_action(action, result, last)

    return action.settle(
        ActionLog.State.DONE, outcomes.phrase(rules.REASSIGN, result), result=result,
        details={**action.details, "moved": moved, "written": written}, then=then,
    )


class Settling:
    """Reconciling actions whose outcome is unknown (a mixin: it reads DIRAC through the engine)."""

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
                settle(action, ActionLog.State.INTERRUPTED, "interrupted; tasks re-checked from DIRAC")
            elif action.kind in (rules.COMPLETE, rules.FLUSH_ACTION):
                wanted = action.details.get("status")
                current = self._retrying(self.backend.transformations, ids=[tid])
                status = current[0].status if current else None
                if status == wanted:
                    settle(action, ActionLog.State.DONE, f"status is {status} ({note})",
                           flush=action.kind == rules.FLUSH_ACTION,
                           result=outcomes.status_result(action.details.get("expected"), status))
                else:
                    settle(action, ActionLog.State.INTERRUPTED, f"status is {status}: not done ({note})")
            elif action.kind == rules.REASSIGN:
                asked = {lfn: int(task) for task, lfns in action.details.get("tasks", {}).items() for lfn in lfns}
                now = {f.lfn: f for f in self._retrying(self.backend.files, [tid], lfns=sorted(asked))}
                # Moved: the file went to Unused from that task. Not a file DIRAC itself set
                # Processed (or MaxReset), nor one it gave a new task meanwhile.
                moved = sorted(
                    lfn for lfn, task in asked.items()
                    if lfn in now and now[lfn].status == UNUSED and now[lfn].task in (None, task)
                )
                result = {"files": len(asked), "unused": len(moved), "became": {}, "unchanged": len(asked) - len(moved)}

                def then() -> None:
                    bump_counters(tid, moved)
                    record_task_files(action)
                    if moved:
                        _last_action(action, result)

                action.settle(
                    ActionLog.State.DONE if moved else ActionLog.State.INTERRUPTED,
                    f"{len(moved)} of {outcomes.count(len(asked), 'file')} had left their failed task ({note})",
                    details={**action.details, "moved": moved}, result=result, then=then,
                )
        except FailoverError as exc:
            log.warning("action %s stays pending: %s", action.pk, exc)


def bump_counters(transformation_id: int, lfns: Sequence[str]) -> None:
    """Add one to each LFN's reassign counter, a new counter starting at 1 (call inside the
    action's transaction): one INSERT ... ON CONFLICT DO UPDATE per 500 files (SQLite and
    PostgreSQL), not a read, an UPDATE and an INSERT."""
    if not lfns:
        return
    q = connection.ops.quote_name
    table = q(ReassignCounter._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    lfns = list(dict.fromkeys(lfns))  # a row once per statement (PostgreSQL refuses it twice)
    with connection.cursor() as cursor:
        for start in range(0, len(lfns), 500):
            chunk = lfns[start : start + 500]
            values = ", ".join(["(%s, %s, 1, %s)"] * len(chunk))
            cursor.execute(
                f"INSERT INTO {table} ({q('transformation_id')}, {q('lfn')}, {q('count')}, {q('updated')}) "
                f"VALUES {values} ON CONFLICT ({q('transformation_id')}, {q('lfn')}) "
                f"DO UPDATE SET {q('count')} = {table}.{q('count')} + 1, {q('updated')} = excluded.{q('updated')}",
                [v for lfn in chunk for v in (transformation_id, lfn, now)],
            )


def record_task_files(action: ActionLog) -> None:
    """Keep which files each failed task of a reassign had, with its job, site and statuses
    (``TaskFile``), as the engine saw them: DIRAC forgets them once the files join a new task.
    Call inside the action's transaction; a (task, file) already recorded is kept as it is."""
    details = action.details or {}
    jobs = details.get("jobs") if isinstance(details.get("jobs"), dict) else {}
    rows = []
    for task, lfns in (details.get("tasks") or {}).items():
        info = jobs.get(str(task)) or {}
        for lfn in lfns:
            rows.append(TaskFile(
                transformation_id=action.transformation_id, task=int(task), lfn=lfn[:512],
                job=int(info.get("job") or 0), site=(info.get("site") or "")[:64],
                status=(info.get("status") or "")[:32], minor_status=(info.get("minor_status") or "")[:128],
                action_id=action.pk,
            ))
    if rows:
        TaskFile.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
