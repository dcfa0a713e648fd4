"""Where a transformation stands, for the pages: which operator actions can apply to it now, and
why it is not moving when nothing is to be done. From the stored state and the policy, as data.

The rules (failover/rules.py) have the last word when an action is previewed or carried out; this
only keeps the pages from offering a button that cannot apply (no flush or complete on a Completed
transformation) and from leaving a "nothing to do" without its reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from failover.domain import (
    ACTIVE,
    COMPLETE,
    COMPLETED,
    FINAL_TRANSFORMATION_STATUSES,
    FLUSH_ACTION,
    REASSIGN,
    SYNC,
    TYPES_WITHOUT_INPUT,
    UNUSED,
)
from failover.models import ActionLog, Policy, TransformationState
from failover.outcomes import count

BUTTONS = (FLUSH_ACTION, REASSIGN, COMPLETE, SYNC)


@dataclass(frozen=True)
class Completion:
    """How a transformation came to be Completed, when this product did it."""

    action: int
    cycle: int | None
    at: datetime | None
    actor: str


def completions(ids: Iterable[int]) -> dict[int, Completion]:
    """The done complete action of each transformation, the latest first (one query)."""
    out: dict[int, Completion] = {}
    rows = (ActionLog.objects.filter(transformation_id__in=list(ids), kind=COMPLETE, state=ActionLog.State.DONE)
            .order_by("transformation_id", "-finished", "-id")
            .values_list("transformation_id", "pk", "cycle_id", "finished", "actor"))
    for tid, pk, cycle, at, actor in rows:
        out.setdefault(tid, Completion(pk, cycle, at, actor))
    return out


def applicable(state: TransformationState, policy: Policy) -> list[str]:
    """The operator actions that can apply to this transformation now, in the buttons' order."""
    kinds = []
    final = state.status in FINAL_TRANSFORMATION_STATUSES
    files = state.files or {}
    if state.type in policy.flush_types and state.status == ACTIVE and files.get(UNUSED):
        kinds.append(FLUSH_ACTION)
    if state.type in policy.reassign_types and not final and state.jobs_failed:
        kinds.append(REASSIGN)
    if (state.type in policy.complete_types and state.type not in TYPES_WITHOUT_INPUT and not final
            and state.status != COMPLETED):
        kinds.append(COMPLETE)
    if not final:
        kinds.append(SYNC)
    return kinds


def completed_text(completion: Completion | None, state: TransformationState) -> str:
    if completion is None:
        seen = f"; last seen by cycle {state.last_cycle_id}" if state.last_cycle_id else ""
        return f"Completed outside this dashboard (in DIRAC){seen}"
    when = f" at {completion.at:%Y-%m-%d %H:%M} UTC" if completion.at else ""
    if completion.actor == "system":
        return f"Completed by cycle {completion.cycle}{when}" if completion.cycle else f"Completed{when}"
    return f"Completed by {completion.actor}{when}"


def idle_reason(state: TransformationState, policy: Policy, completion: Completion | None = None) -> str:
    """Why the cycle does not move this transformation on, when its status alone says so ("" if it
    is treated: then its blockers, the attention items, say what holds it)."""
    if state.status == COMPLETED:
        return completed_text(completion, state)
    if policy.transformation_statuses and state.status not in policy.transformation_statuses:
        return f"{state.status}: the policy treats {', '.join(policy.transformation_statuses)} transformations only"
    if policy.transformation_types and state.type not in policy.transformation_types:
        return f"type {state.type} is not among the policy's types"
    return ""


def why_nothing(kind: str, state: TransformationState | None, policy: Policy,
                completion: Completion | None = None) -> str:
    """Why an action finds nothing to do on this transformation, when the rules raised no blocker."""
    if state is None:
        return "the cycle has not seen this transformation yet"
    if state.status == COMPLETED:
        return completed_text(completion, state)
    files = state.files or {}
    types = {FLUSH_ACTION: policy.flush_types, REASSIGN: policy.reassign_types, COMPLETE: policy.complete_types}
    if kind in types and state.type not in types[kind]:
        return f"the policy does not {kind} {state.type} transformations"
    if kind == FLUSH_ACTION:
        if state.status != ACTIVE:
            return f"only an Active transformation is flushed; this one is {state.status}"
        unused = files.get(UNUSED, 0)
        if not unused:
            return "no Unused file to flush"
        return (f"{count(unused, 'Unused file')} can still fill tasks of group size {state.group_size:g}, "
                "and not every task is final")
    if kind == REASSIGN:
        return "no Assigned file belongs to a Failed or Killed task"
    if kind == COMPLETE:
        processed, total = files.get("Processed", 0), state.files_total
        return f"{processed} of {count(total, 'file')} Processed"
    return "every task already has its job's status"
