"""The agent's decisions as pure functions of plain data: no I/O, no ORM.

Each rule mirrors a step of CTADIRAC's TransformationFailoverAgent (reference 4.3) with the
deliberate differences that fix its weaknesses (reference 5), each marked "(fixes 5.N)".
The engine (failover/engine.py) reads DIRAC, calls these, and carries out what they return.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence, Set as AbstractSet
from dataclasses import dataclass, field

from django.template.defaultfilters import pluralize

from failover.blockers import AT_CAP, CANNOT_COMPLETE, FLUSH_LIMIT, RECOVERABLE, WAITING, Blocker
from failover.domain import (
    ACTIVE,
    ASSIGNED,
    COMPLETE,
    COMPLETED,
    DONE_TASK_STATUSES,
    FAILED_TASK_STATUSES,
    FINAL_TASK_STATUSES,
    FINAL_TRANSFORMATION_STATUSES,
    FLUSH,
    FLUSH_ACTION,
    KINDS,
    MISSING_JOB_STATUS,
    NO_JOB,
    REASSIGN,
    ROOT,
    SYNC,
    TYPES_WITHOUT_INPUT,
    UNUSED,
    FileCounts,
    FileInfo,
    JobInfo,
    TaskInfo,
    TaskSummary,
    TransformationInfo,
)

# The action kinds and status sets are the domain's vocabulary (failover/domain.py), used here by name.


@dataclass(frozen=True)
class RulesPolicy:
    complete_types: frozenset[str] = frozenset()
    flush_types: frozenset[str] = frozenset()
    reassign_types: frozenset[str] = frozenset()
    report_types: frozenset[str] = frozenset()
    max_reassign: int = 2
    max_flush: int = 2


@dataclass(frozen=True)
class ParentView:
    """What a child needs to know of its parent: the state after the parent's own turn."""

    id: int
    type: str
    status: str
    processed: bool


@dataclass
class Decision:
    kind: str
    transformation: int
    reason: str
    # sync: {status: [task ids]}; reassign: {task id: [lfns]}
    tasks: dict = field(default_factory=dict)
    # flush/complete: the status to write and the one it must still be (compare-and-set).
    status: str = ""
    expected: str = ""
    # What the engine knew when deciding, kept in the action log (e.g. the failed jobs and sites).
    context: dict = field(default_factory=dict)

    @property
    def lfns(self) -> list[str]:
        return [lfn for lfns in self.tasks.values() for lfn in lfns] if self.kind == REASSIGN else []

    def as_dict(self) -> dict:
        data = {"kind": self.kind, "transformation": self.transformation, "reason": self.reason}
        if self.kind == SYNC:
            data["tasks"] = {status: ids for status, ids in self.tasks.items()}
        elif self.kind == REASSIGN:
            data["tasks"] = {str(task): lfns for task, lfns in self.tasks.items()}
        else:
            data["status"] = self.status
            data["expected"] = self.expected
        data.update(self.context)
        return data


@dataclass
class Plan:
    """What to do for one transformation, in order, and what a person should look at."""

    transformation: int
    decisions: list[Decision] = field(default_factory=list)
    # LFNs that stay Assigned because they reached MaxReassign.
    at_cap: list[str] = field(default_factory=list)
    # Why the transformation is not moving on (failover/blockers.py): codes, numbers and words.
    blockers: list[Blocker] = field(default_factory=list)
    # The tasks as they are once job statuses are copied into them (those the plan was given: with
    # a ``summary``, only the ones whose status moves and those of Assigned files).
    tasks: list[TaskInfo] = field(default_factory=list)
    # All of the transformation's tasks, counted once synced (``summarise``, or the database's).
    summary: TaskSummary = field(default_factory=TaskSummary)
    # Failed or Killed tasks whose job registered outputs: left to recovery, not reassigned.
    recoverable: list[int] = field(default_factory=list)


def fmt_size(group_size: float) -> str:
    return str(int(group_size)) if float(group_size).is_integer() else str(group_size)


# -- 1. copy job statuses into tasks ------------------------------------------------------------


def task_updates(tasks: Iterable[TaskInfo], jobs: Mapping[int, JobInfo]) -> dict[str, list[int]]:
    """Tasks whose ExternalStatus differs from their job's Status, grouped by the new status.

    Grouping lets one call per (transformation, status) update them all (fixes 5.7). A task whose
    job vanished from the Job DB is set Failed, as DIRAC's own monitor does, instead of staying
    frozen in a non-final status that blocks the "all tasks final" flush forever (fixes 5.15).
    """
    updates: dict[str, list[int]] = defaultdict(list)
    for task in tasks:
        if task.job == NO_JOB:
            continue
        job = jobs.get(task.job)
        if job is None:
            if task.status not in FINAL_TASK_STATUSES:
                updates[MISSING_JOB_STATUS].append(task.task)
        elif job.status != task.status:
            updates[job.status].append(task.task)
    return {status: sorted(ids) for status, ids in sorted(updates.items())}


def apply_task_updates(tasks: Sequence[TaskInfo], updates: Mapping[str, Sequence[int]]) -> list[TaskInfo]:
    new_status = {task: status for status, ids in updates.items() for task in ids}
    return [
        TaskInfo(t.transformation, t.task, t.job, new_status[t.task]) if t.task in new_status else t for t in tasks
    ]


def summarise(synced: Iterable[TaskInfo]) -> TaskSummary:
    """The counts of ``TaskSummary`` from every task of a transformation, synced
    (``apply_task_updates``); ``failover/mirror.py`` counts the same in SQL."""
    total = not_final = failed = done = without_job = 0
    oldest = 0
    for task in synced:
        total += 1
        if task.status not in FINAL_TASK_STATUSES:
            not_final += 1
        if task.status in FAILED_TASK_STATUSES:
            failed += 1
        if task.status in DONE_TASK_STATUSES:
            done += 1
        if task.job == NO_JOB:
            without_job += 1
            oldest = task.task if not oldest else min(oldest, task.task)
    return TaskSummary(total, not_final, failed, done, without_job, oldest)


# -- 2. complete --------------------------------------------------------------------------------


def parent_done(parent: ParentView) -> bool:
    """A parent whose children may finish: its files are all Processed, it is final, or it has
    no input (MCSimulation). Archived and Cleaned parents count as done (fixes 5.13)."""
    return parent.processed or parent.status in FINAL_TRANSFORMATION_STATUSES or parent.type in TYPES_WITHOUT_INPUT


def decide_complete(
    t: TransformationInfo, counts: FileCounts, parent: ParentView | None, policy: RulesPolicy
) -> tuple[Decision | None, Blocker | None]:
    """(decision, blocker). ``parent`` is None for a production root or a transformation
    outside any production: neither has a parent to wait for (the agent never completes the
    latter, fixes 5.13)."""
    if t.type in TYPES_WITHOUT_INPUT or t.type not in policy.complete_types or t.status == COMPLETED:
        return None, None
    if not counts.processed:
        unused_or_running = counts.get(UNUSED) + counts.get(ASSIGNED)
        stuck = counts.total - counts.get("Processed") - unused_or_running
        if counts.total and stuck and not unused_or_running:
            # Every file is either Processed or in a status nothing will move on (MaxReset,
            # Problematic, MissingInFC, ...): the agent waits for ever without a word (5.13).
            others = ", ".join(
                f"{n} {status}" for status, n in sorted(counts.by_status.items())
                if status != "Processed" and "-" not in status and n
            )
            return None, Blocker(CANNOT_COMPLETE, f"cannot complete: {others} (not Processed; a person must decide)",
                                 count=stuck)
        return None, None
    if parent is not None and not parent_done(parent):
        return None, Blocker(WAITING, f"all files Processed; waiting for {parent.id} to complete", related=parent.id)
    where = f"parent {parent.id} is done" if parent is not None else "no parent step to wait for"
    reason = f"all {counts.total} file{pluralize(counts.total)} Processed and {where}"
    return Decision(COMPLETE, t.id, reason, status=COMPLETED, expected=t.status), None


# -- 3. flush -----------------------------------------------------------------------------------


def decide_flush(
    t: TransformationInfo,
    counts: FileCounts,
    tasks: Sequence[TaskInfo],
    parent: ParentView | None,
    flush_count: int,
    policy: RulesPolicy,
    summary: TaskSummary | None = None,
) -> tuple[Decision | None, Blocker | None]:
    """Flush when the last Unused files cannot fill a task, or when every task is final.
    ``summary``: every task counted (``tasks`` may then be only some of them).

    Only an Active transformation is flushed, with compare-and-set (fixes 5.14: never overwrite
    a Stopped or Completed status set meanwhile). The flush counter lives in the database
    (fixes 5.2); a parent that is Archived or Cleaned counts as completed (fixes 5.12).
    """
    if t.type not in policy.flush_types or t.status != ACTIVE:
        return None, None
    summary = summary if summary is not None else summarise(tasks)
    unused = counts.get(UNUSED)
    if unused == 0:
        return None, None
    if unused < t.group_size:
        reason = f"{unused} Unused file{pluralize(unused)}, fewer than the group size {fmt_size(t.group_size)}"
    elif summary.total and not summary.not_final:
        n = summary.total
        reason = f"{unused} Unused file{pluralize(unused)} and all {n} task{pluralize(n)} are final"
    else:
        return None, None
    # A parent still running may feed more files: a flush now would make a small task early.
    # (An MCSimulation parent keeps producing, so its children wait until someone completes it.)
    if parent is not None and parent.status not in FINAL_TRANSFORMATION_STATUSES:
        text = f"{unused} Unused file{pluralize(unused)}; waiting for {parent.id} to complete before flushing"
        return None, Blocker(WAITING, text, count=unused, related=parent.id)
    if flush_count >= policy.max_flush:
        text = (f"flush limit reached ({flush_count} of {policy.max_flush}) "
                f"with {unused} Unused file{pluralize(unused)}")
        return None, Blocker(FLUSH_LIMIT, text, count=unused, limit=policy.max_flush)
    return Decision(FLUSH_ACTION, t.id, reason, status=FLUSH, expected=t.status), None


# -- 4. reassign --------------------------------------------------------------------------------


def decide_reassign(
    t: TransformationInfo,
    assigned_files: Iterable[FileInfo],
    task_status: Mapping[int, str],
    counters: Mapping[str, int],
    policy: RulesPolicy,
    registered: AbstractSet[int] | None = None,
) -> tuple[Decision | None, list[str]]:
    """Set back to Unused the Assigned files of Failed or Killed tasks, each at most MaxReassign
    times: (decision, LFNs at their cap).

    Only Assigned files are touched, never Processed or MaxReset ones, and DIRAC is not forced,
    so its own MaxReset protection stays (fixes 5.5). The counter is per (transformation, LFN)
    (fixes 5.6), allows exactly MaxReassign resets (fixes 5.3), and moves only when DIRAC accepted
    the change (the engine's job, fixes 5.4).

    How it combines with recovery (failover/recovery.py): ``registered`` is the set of tasks whose
    job registered outputs in the catalogue (CTADIRAC's jobID metadata, or ProductionOutputData
    found in the catalogue), or None when no catalogue can be read. A failed task in that set is
    left alone: setting its inputs back to Unused would process the same data twice. Recovery's
    case instead (DataRecoveryAgent case 6: job Done, inputs Processed) applies to it, and the plan
    lists it (``Plan.recoverable``). With None (no catalogue configured), reassign is exactly the
    agent's, as before.
    """
    if t.type not in policy.reassign_types:
        return None, []
    by_task: dict[int, list[str]] = defaultdict(list)
    at_cap: list[str] = []
    for f in assigned_files:
        if f.transformation != t.id or f.status != ASSIGNED or f.task is None:
            continue
        if task_status.get(f.task) not in FAILED_TASK_STATUSES:
            continue
        if registered is not None and f.task in registered:
            continue
        if counters.get(f.lfn, 0) >= policy.max_reassign:
            at_cap.append(f.lfn)
        else:
            by_task[f.task].append(f.lfn)
    if not by_task:
        return None, sorted(at_cap)
    tasks = {task: sorted(lfns) for task, lfns in sorted(by_task.items())}
    return Decision(REASSIGN, t.id, reassign_reason(tasks), tasks=tasks), sorted(at_cap)


def reassign_reason(tasks: Mapping[int, Sequence[str]]) -> str:
    """The reason of a reassign, from its files: also said again for what an approval carries out."""
    n = sum(len(v) for v in tasks.values())
    return f"{n} Assigned file{pluralize(n)} of {len(tasks)} failed or killed task{pluralize(len(tasks))}"


# -- the whole plan -----------------------------------------------------------------------------


def plan_transformation(
    t: TransformationInfo,
    *,
    counts: FileCounts,
    tasks: Sequence[TaskInfo],
    jobs: Mapping[int, JobInfo],
    parent: ParentView | None,
    assigned_files: Iterable[FileInfo],
    counters: Mapping[str, int],
    flush_count: int,
    policy: RulesPolicy,
    kinds: Iterable[str] = KINDS,
    registered: AbstractSet[int] | None = None,
    summary: TaskSummary | None = None,
) -> Plan:
    """The agent's steps in its order: sync, complete (and stop), stop if processed, flush,
    reassign unless flushed. ``kinds`` limits the plan to some actions (an operator's button).
    ``registered``: the tasks whose job registered outputs, None without a catalogue
    (``decide_reassign`` says how reassign and recovery combine).

    ``tasks`` is every task of the transformation, or, with ``summary`` (every task counted once
    synced), at least those whose job's status differs from theirs and those of the Assigned files
    in ``assigned_files``: the plan is then the same (only the flush looks at all tasks, and it
    reads the summary)."""
    kinds = set(kinds)
    plan = Plan(t.id)
    updates = task_updates(tasks, jobs)
    if updates and SYNC in kinds:
        n = sum(len(ids) for ids in updates.values())
        reason = f"{n} task{pluralize(n)} behind {'its job' if n == 1 else 'their jobs'}: " + ", ".join(
            f"{len(v)} to {k}" for k, v in updates.items())
        plan.decisions.append(Decision(SYNC, t.id, reason, tasks=updates))
    synced = plan.tasks = apply_task_updates(tasks, updates)
    plan.summary = summary if summary is not None else summarise(synced)

    complete, blocker = decide_complete(t, counts, parent, policy)
    if blocker:
        plan.blockers.append(blocker)
    if complete:
        if COMPLETE in kinds:
            plan.decisions.append(complete)
        return plan
    if counts.processed and t.type not in TYPES_WITHOUT_INPUT:
        return plan

    flush, blocker = decide_flush(t, counts, synced, parent, flush_count, policy, plan.summary)
    if blocker:
        plan.blockers.append(blocker)
    if flush and FLUSH_ACTION in kinds:
        plan.decisions.append(flush)
        return plan

    status_of = {x.task: x.status for x in synced}
    reassign, at_cap = decide_reassign(t, assigned_files, status_of, counters, policy, registered)
    plan.at_cap = at_cap
    if registered and t.type in policy.reassign_types:
        plan.recoverable = sorted(
            {f.task for f in assigned_files if f.status == ASSIGNED and f.task in registered
             and status_of.get(f.task) in FAILED_TASK_STATUSES}
        )
        if plan.recoverable:
            n = len(plan.recoverable)
            plan.blockers.append(Blocker(
                RECOVERABLE, f"{n} failed job{pluralize(n)} registered {pluralize(n, 'its,their')} outputs: "
                f"not reassigned; recovery sets {pluralize(n, 'it,them')} Done and "
                f"{pluralize(n, 'its,their')} inputs Processed", count=n,
            ))
    if at_cap:
        n = len(at_cap)
        text = (f"{n} file{pluralize(n)} reached MaxReassign ({policy.max_reassign}) "
                f"and stay{pluralize(n, 's,')} Assigned")
        plan.blockers.append(Blocker(AT_CAP, text, count=len(at_cap), limit=policy.max_reassign))
    if reassign and REASSIGN in kinds:
        plan.decisions.append(reassign)
    return plan


def needs_assigned_files(t: TransformationInfo, tasks: Sequence[TaskInfo], jobs: Mapping[int, JobInfo],
                         policy: RulesPolicy) -> bool:
    """Whether the reassign rule will look at this transformation's Assigned files."""
    return synced_needs_assigned_files(t, apply_task_updates(tasks, task_updates(tasks, jobs)), policy)


def synced_needs_assigned_files(t: TransformationInfo, synced: Sequence[TaskInfo], policy: RulesPolicy) -> bool:
    """``needs_assigned_files`` from the tasks with their jobs' statuses copied in (``Plan.tasks``)."""
    return summary_needs_assigned_files(t, summarise(synced), policy)


def summary_needs_assigned_files(t: TransformationInfo, summary: TaskSummary, policy: RulesPolicy) -> bool:
    """``needs_assigned_files`` from every task counted once synced (``Plan.summary``)."""
    if t.type in policy.reassign_types and summary.failed:
        return True
    # Also for the attention item "Assigned files of tasks whose job is final".
    return bool(summary.done)


def assigned_to_done_tasks(assigned_files: Iterable[FileInfo], tasks: Sequence[TaskInfo]) -> int:
    """Files still Assigned to a task whose job ended well: the job's own last step should have
    set them Processed (its report to DIRAC was lost, or a failover request is pending)."""
    done = {task.task for task in tasks if task.status in DONE_TASK_STATUSES}
    return sum(1 for f in assigned_files if f.status == ASSIGNED and f.task in done)


def parent_view(t: TransformationInfo | None, counts: FileCounts | None) -> ParentView | None:
    if t is None:
        return None
    return ParentView(t.id, t.type, t.status, bool(counts and counts.processed))


def parent_of(t: TransformationInfo) -> int | None:
    """The parent id a child must wait for, or None (production root, or not in a production)."""
    return None if t.parent in (None, ROOT) else t.parent
