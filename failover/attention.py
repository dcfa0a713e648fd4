"""What a production manager should look at, computed from what the cycle stored.

The items of issue 6 (item 3), each with the action that fixes it where the engine has one:

==================  ==========================================================  ================
code                condition                                                   fix
==================  ==========================================================  ================
at_cap              files reached MaxReassign and stay Assigned (engine)        (investigate)
assigned_final      Assigned files of tasks whose job is final (engine)         reassign
unused_no_flush     Active, 0 < Unused < GroupSize, flush counter at MaxFlush   (raise MaxFlush)
child_active        a child still Active, nothing running, its parent done      complete / flush
tasks_without_job   tasks that have no job (engine)                             (investigate)
no_progress         no job changed state over the last N cycles                 (investigate)
flush_limit         the flush limit is reached (engine)                         (raise MaxFlush)
proposal            a proposed action waits for an operator                     approve
==================  ==========================================================  ================

"(engine)" items come from ``TransformationState.attention``, the blockers the cycle writes.
Entries may be plain strings (classified by their wording below) or dicts with ``code``,
``text`` and optionally ``count`` and ``fix``. Every blocker but "waiting for <parent>" (normal
for a later step) is an item; one whose wording is not recognised is shown as it is.

Two views of the same rules: :func:`needs_attention_q` filters in SQL (the overview's "needs
attention" filter must paginate in the database), :func:`items_for` builds the items of some
rows in Python. The tests hold both to the same answers.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db.models import Count, F, FloatField, IntegerField, Q
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce
from django.db.models.lookups import GreaterThan, LessThan

from failover import rules
from failover.domain import ACTIVE, FINAL_TRANSFORMATION_STATUSES, UNUSED
from failover.models import ActionLog, Cycle, Policy, TransformationState

AT_CAP = "at_cap"
ASSIGNED_FINAL = "assigned_final"
UNUSED_NO_FLUSH = "unused_no_flush"
CHILD_ACTIVE = "child_active"
TASKS_WITHOUT_JOB = "tasks_without_job"
NO_PROGRESS = "no_progress"
FLUSH_LIMIT = "flush_limit"
PROPOSAL = "proposal"
OTHER = "other"

TITLES = {
    AT_CAP: "Files at their reassign cap",
    ASSIGNED_FINAL: "Assigned files of finished jobs",
    UNUSED_NO_FLUSH: "Unused files below the group size, no flush left",
    CHILD_ACTIVE: "Child still Active, parent done",
    TASKS_WITHOUT_JOB: "Tasks with no job",
    NO_PROGRESS: "No progress",
    FLUSH_LIMIT: "Flush limit reached",
    PROPOSAL: "Proposal waiting",
    OTHER: "Needs a look",
}

# A few words for the flag on an overview row (the title and text are in its tooltip).
SHORT = {
    AT_CAP: "reassign cap",
    ASSIGNED_FINAL: "stuck files",
    UNUSED_NO_FLUSH: "no flush left",
    CHILD_ACTIVE: "parent done",
    TASKS_WITHOUT_JOB: "tasks without job",
    NO_PROGRESS: "no progress",
    FLUSH_LIMIT: "flush limit",
    PROPOSAL: "proposal",
    OTHER: "check",
}

# How the engine words its blockers (failover/rules.py, failover/engine.py): a blocker containing
# one of these fragments (any case) has that code. The SQL filters look for the same fragments.
# Blockers that only say a step waits for its parent are normal and not attention items.
_FRAGMENTS = {
    AT_CAP: "reached MaxReassign",
    FLUSH_LIMIT: "flush limit reached",
    ASSIGNED_FINAL: "whose job",
    TASKS_WITHOUT_JOB: "no job",
}
_WAITING = re.compile(r"waiting for (\d+)", re.I)
_COUNT = re.compile(r"^\s*(\d+)")


def stall_cycles() -> int:
    """N of "no progress over N cycles"."""
    return getattr(settings, "FAILOVER_STALL_CYCLES", 6)


@dataclass(frozen=True)
class Item:
    transformation_id: int
    code: str
    text: str
    count: int | None = None
    # One of failover.rules.KINDS, or "approve"; None when no button fixes it.
    fix: str | None = None

    @property
    def title(self) -> str:
        return TITLES.get(self.code, TITLES[OTHER])

    @property
    def short(self) -> str:
        return SHORT.get(self.code, SHORT[OTHER])

    def as_dict(self) -> dict:
        return {**asdict(self), "title": self.title}


# -- parsing the engine's blockers ---------------------------------------------------------------


def classify(entry, transformation_id: int) -> Item | None:
    """An attention item from one blocker, or None for a blocker that is not a problem."""
    if isinstance(entry, dict):
        if _WAITING.search(str(entry.get("text", ""))) and not entry.get("code"):
            return None
        code = entry.get("code") or OTHER
        return Item(transformation_id, code, str(entry.get("text", code)), entry.get("count"),
                    entry.get("fix") or _default_fix(code))
    text = str(entry)
    if _WAITING.search(text):
        return None
    match = _COUNT.match(text)
    count = int(match.group(1)) if match else None
    for code, fragment in _FRAGMENTS.items():
        if fragment.lower() in text.lower():
            return Item(transformation_id, code, text, count, _default_fix(code))
    return Item(transformation_id, OTHER, text, count)


def _default_fix(code: str) -> str | None:
    return {ASSIGNED_FINAL: rules.REASSIGN, PROPOSAL: "approve"}.get(code)


def waiting_for(state: TransformationState) -> int | None:
    """The parent a step waits for, read from its blockers, or None."""
    for entry in state.attention or []:
        text = entry.get("text", "") if isinstance(entry, dict) else str(entry)
        match = _WAITING.search(text)
        if match:
            return int(match.group(1))
    return None


# -- the rules on rows ----------------------------------------------------------------------------


def parent_done(parent: TransformationState) -> bool:
    """The parent reached a final status (Completed, Archived, ...).

    Stricter than the complete rule's test (which also accepts "all files Processed"): a child
    whose parent has all files Processed but is not yet Completed waits for the parent's
    completion before it may be flushed, and that wait is shown as a blocker, not as a problem.
    """
    return parent.status in FINAL_TRANSFORMATION_STATUSES


def _parent_done_q() -> Q:
    return Q(status__in=FINAL_TRANSFORMATION_STATUSES)


FINISHED_JOB_STATUSES = ("Done", "Completed", "Failed", "Killed")


def unfinished_jobs(state: TransformationState) -> int:
    return sum(n for status, n in (state.jobs or {}).items() if status not in FINISHED_JOB_STATUSES)


def _nothing_running_q() -> Q:
    """No job of the transformation is still on its way (the SQL twin of ``unfinished_jobs() == 0``)."""
    finished = sum(
        (Coalesce(Cast(KT(f"jobs__{status}"), IntegerField()), 0) for status in FINISHED_JOB_STATUSES[1:]),
        Coalesce(Cast(KT(f"jobs__{FINISHED_JOB_STATUSES[0]}"), IntegerField()), 0),
    )
    return Q(jobs_total=finished)


def _stalled_ids_query():
    """Transformations whose stored job aggregates were identical in each of the last N cycles.

    Reads the SQL aggregate store's snapshots; with another store the item is not computed.
    """
    from reports.stores import SqlAggregateStore, get_store

    if not isinstance(get_store(), SqlAggregateStore):
        return None
    from reports.models import Snapshot

    n = stall_cycles()
    # Scheduled cycles only: an operator's button runs a cycle of one transformation.
    last = list(
        Cycle.objects.filter(state=Cycle.State.FINISHED).exclude(trigger="web").order_by("-started")
        .values_list("pk", flat=True)[:n]
    )
    if len(last) < n:
        return None
    return (
        Snapshot.objects.filter(cycle_id__in=last)
        .values("transformation_id")
        .annotate(n=Count("id"), sets=Count("aggregate_set_id", distinct=True))
        .filter(n=n, sets=1)
        .values("transformation_id")
    )


def _stall_candidates_q() -> Q:
    return Q(status=ACTIVE, jobs_total__gt=0, files_total__gt=F("files_processed"))


def _blockers_q() -> Q:
    # Any blocker but "waiting for the parent" (a step has at most one of those) is an item.
    return ~Q(attention=[]) & (~Q(attention__icontains="waiting for") | Q(attention__1__isnull=False))


def code_q(code: str, policy: Policy | None = None) -> Q | None:
    """A filter on TransformationState: the rows with an item of this code (None: not computable)."""
    policy = policy or Policy.current()
    coded = Q(attention__icontains=f'"code": "{code}"')
    if code in _FRAGMENTS:
        return coded | Q(attention__icontains=_FRAGMENTS[code])
    if code == OTHER:
        known = Q()
        for fragment in _FRAGMENTS.values():
            known |= Q(attention__icontains=fragment)
        return coded | (_blockers_q() & ~known)
    if code == UNUSED_NO_FLUSH:
        # The JSON value as a number: PostgreSQL does not compare jsonb with a float column.
        unused = Coalesce(Cast(KT("files__Unused"), FloatField()), 0.0)
        return Q(GreaterThan(unused, 0.0), LessThan(unused, F("group_size")), status=ACTIVE,
                 flush_count__gte=policy.max_flush)
    if code == CHILD_ACTIVE:
        # A child that still runs jobs is on its way; one with nothing running is stuck.
        parents_done = TransformationState.objects.filter(_parent_done_q()).values("transformation_id")
        return Q(status=ACTIVE, parent_id__in=parents_done) & _nothing_running_q()
    if code == PROPOSAL:
        return Q(transformation_id__in=ActionLog.objects.filter(state=ActionLog.State.PROPOSED)
                 .values("transformation_id"))
    if code == NO_PROGRESS:
        stalled = _stalled_ids_query()
        return None if stalled is None else _stall_candidates_q() & Q(transformation_id__in=stalled)
    return coded


def needs_attention_q(policy: Policy | None = None) -> Q:
    """A filter on TransformationState: the rows that have at least one attention item."""
    policy = policy or Policy.current()
    q = _blockers_q()
    for code in (UNUSED_NO_FLUSH, CHILD_ACTIVE, PROPOSAL, NO_PROGRESS):
        extra = code_q(code, policy)
        if extra is not None:
            q |= extra
    return q


def items_for(states: Sequence[TransformationState], policy: Policy | None = None) -> dict[int, list[Item]]:
    """The attention items of some rows (a page of the overview): a few queries whatever the rows."""
    policy = policy or Policy.current()
    states = list(states)
    ids = [s.transformation_id for s in states]
    out: dict[int, list[Item]] = defaultdict(list)
    if not ids:
        return out
    parent_ids = {s.parent_id for s in states if s.parent_id not in (None, -1)}
    parents = {p.transformation_id: p for p in TransformationState.objects.filter(transformation_id__in=parent_ids)}
    proposals: dict[int, list[ActionLog]] = defaultdict(list)
    for p in ActionLog.objects.filter(state=ActionLog.State.PROPOSED, transformation_id__in=ids).order_by("id"):
        proposals[p.transformation_id].append(p)
    stalled_q = _stalled_ids_query()
    stalled = set(stalled_q.filter(transformation_id__in=ids).values_list("transformation_id", flat=True)) \
        if stalled_q is not None else set()
    for s in states:
        tid = s.transformation_id
        for entry in s.attention or []:
            item = classify(entry, tid)
            if item is not None:
                out[tid].append(item)
        unused = (s.files or {}).get(UNUSED, 0)
        if s.status == ACTIVE and 0 < unused < s.group_size and s.flush_count >= policy.max_flush:
            out[tid].append(Item(
                tid, UNUSED_NO_FLUSH,
                f"{unused} Unused files, fewer than the group size {rules.fmt_size(s.group_size)}, "
                f"and the {s.flush_count} flushes allowed (MaxFlush {policy.max_flush}) are used",
                unused,
            ))
        parent = parents.get(s.parent_id)
        if s.status == ACTIVE and parent is not None and parent_done(parent) and not unfinished_jobs(s):
            all_processed = s.files_total > 0 and s.files_processed == s.files_total
            out[tid].append(Item(
                tid, CHILD_ACTIVE,
                f"still Active with no job running while its parent {parent.transformation_id} is {parent.status}",
                None, rules.COMPLETE if all_processed else (rules.FLUSH_ACTION if unused else None),
            ))
        if tid in stalled and s.status == ACTIVE and s.jobs_total > 0 and s.files_total > s.files_processed:
            out[tid].append(Item(tid, NO_PROGRESS, f"no job changed state over the last {stall_cycles()} cycles"))
        for p in proposals.get(tid, []):
            out[tid].append(Item(tid, PROPOSAL, f"proposed {p.get_kind_display().lower()}: {p.reason}", None, "approve"))
    return out


def rows_needing_attention(policy: Policy | None = None, codes: str | Iterable[str] | None = None):
    """The rows with at least one item (of one of ``codes``), as a queryset to paginate in SQL."""
    policy = policy or Policy.current()
    if not codes:
        return TransformationState.objects.filter(needs_attention_q(policy)).order_by("transformation_id")
    q = None
    for code in [codes] if isinstance(codes, str) else codes:
        extra = code_q(code, policy)
        if extra is not None:
            q = extra if q is None else q | extra
    if q is None:
        return TransformationState.objects.none()
    return TransformationState.objects.filter(q).order_by("transformation_id")


def counts_by_code_sql(policy: Policy | None = None) -> dict[str, int]:
    """How many transformations have an item of each code: one COUNT per code."""
    policy = policy or Policy.current()
    counts = {}
    for code in TITLES:
        q = code_q(code, policy)
        n = TransformationState.objects.filter(q).count() if q is not None else 0
        if n:
            counts[code] = n
    return counts


def all_items(policy: Policy | None = None, *, codes: Iterable[str] | None = None,
              transformation_ids: Iterable[int] | None = None) -> list[Item]:
    """Every attention item, ordered by transformation (small sets: tests, one transformation)."""
    policy = policy or Policy.current()
    qs = rows_needing_attention(policy)
    if transformation_ids is not None:
        qs = qs.filter(transformation_id__in=list(transformation_ids))
    return items_of_rows(list(qs), policy, codes)


def items_of_rows(rows: Sequence[TransformationState], policy: Policy | None = None,
                  codes: Iterable[str] | None = None) -> list[Item]:
    by_t = items_for(rows, policy)
    wanted = set(codes) if codes else None
    return [i for s in rows for i in by_t.get(s.transformation_id, []) if wanted is None or i.code in wanted]


def counts_by_code(items: Iterable[Item]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for item in items:
        counts[item.code] += 1
    return dict(counts)
