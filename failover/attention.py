"""What a production manager should look at: the blockers the cycle stored, and proposals waiting.

An attention item is made where its condition is seen, once: by the rules (``failover/rules.py``)
or the engine (``failover/engine.py``), as a ``failover.blockers.Blocker``; the cycle stores them as
``BlockerRecord`` rows (``save_blockers``). This module only selects and counts them by code, in
SQL, and turns rows into the items the pages and digests show; a proposal waiting for an operator
is an item read from the action log. No text is ever parsed.

==================  ==========================================================  ================
code                condition (where it is seen)                                fix
==================  ==========================================================  ================
at_cap              files reached MaxReassign and stay Assigned (rules)         (investigate)
assigned_final      Assigned files of tasks whose job is final (engine)         reassign
child_active        a child still Active, nothing running, its parent final     complete / flush
                    (engine, after acting)
tasks_without_job   tasks that have no job for two cycles (engine)              (investigate)
no_progress         counts unchanged over FAILOVER_STALL_CYCLES cycles          (investigate)
                    (engine's ``TransformationState.unchanged_cycles``)
flush_limit         a flush is due but MaxFlush flushes were made (rules)       (raise MaxFlush)
cannot_complete     files in statuses nothing moves on (rules)                  (a person)
read_failed         a read the rules needed failed (engine)                     (next cycle)
proposal            a proposed action waits for an operator (action log)        approve
site_hint           a site fails far more of the recent jobs than the others    (a person: ban
                    (one-sided Fisher test, engine via failover/insight.py)     or tell the site)
stalled             no file Processed for FAILOVER_STALL_HOURS (history)        (investigate)
all_failed          the last FAILOVER_ALL_FAILED_JOBS jobs all failed           (configuration)
many_failed         > FAILOVER_FAILED_PERCENT % of recent jobs failed           (investigate)
not_submitted       tasks not submitted for FAILOVER_UNSUBMITTED_HOURS          (investigate)
child_late          Active FAILOVER_CHILD_LATE_HOURS after the parent finished  (investigate)
recoverable         failed jobs whose outputs are registered, kept from         (recovery)
                    reassign (rules)
recovery            recovery findings of one case still to be carried out       approve
                    (``RecoveryFinding`` rows, failover/cycle/recover.py)
==================  ==========================================================  ================

Every item has a ``since``: when its condition began (from the history where it says, else the
first cycle that saw it), kept while the condition lasts, so the list shows how long it has lasted.

A step waiting for its parent (code ``waiting``) is normal: not an item, but the production page
shows it (``waiting_for``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from django.db.models import Count, Q
from django.utils import timezone

from failover.blockers import (
    ALL_FAILED,
    ASSIGNED_FINAL,
    AT_CAP,
    CANNOT_COMPLETE,
    CHILD_ACTIVE,
    CHILD_LATE,
    FLUSH_LIMIT,
    MANY_FAILED,
    NO_PROGRESS,
    NOT_SUBMITTED,
    READ_FAILED,
    RECOVERABLE,
    RECOVERY,
    SITE_HINT,
    STALLED,
    TASKS_WITHOUT_JOB,
    WAITING,
    Blocker,
)
from failover.models import ActionLog, BlockerRecord, Policy, RecoveryFinding, TransformationState
from failover.outcomes import count

PROPOSAL = "proposal"
OTHER = "other"

TITLES = {
    AT_CAP: "Files at their reassign cap",
    ASSIGNED_FINAL: "Assigned files of finished jobs",
    CHILD_ACTIVE: "Child still Active, parent done",
    TASKS_WITHOUT_JOB: "Tasks with no job",
    NO_PROGRESS: "No progress",
    FLUSH_LIMIT: "Flush limit reached",
    CANNOT_COMPLETE: "Cannot complete",
    READ_FAILED: "DIRAC could not be read",
    SITE_HINT: "Site failing far more",
    STALLED: "Nothing Processed for hours",
    ALL_FAILED: "Every recent job failed",
    MANY_FAILED: "Many jobs failed",
    NOT_SUBMITTED: "Tasks not submitted",
    CHILD_LATE: "Active long after parent",
    RECOVERABLE: "Failed jobs with registered outputs",
    RECOVERY: "Recovery finding",
    PROPOSAL: "Proposal waiting",
    OTHER: "Needs a look",
}

# A few words for the flag on an overview row (the title and text are in its tooltip).
SHORT = {
    AT_CAP: "reassign cap",
    ASSIGNED_FINAL: "stuck files",
    CHILD_ACTIVE: "parent done",
    TASKS_WITHOUT_JOB: "tasks without job",
    NO_PROGRESS: "no progress",
    FLUSH_LIMIT: "flush limit",
    CANNOT_COMPLETE: "cannot complete",
    READ_FAILED: "read failed",
    SITE_HINT: "site hint",
    STALLED: "stalled",
    ALL_FAILED: "all failing",
    MANY_FAILED: "many failed",
    NOT_SUBMITTED: "not submitted",
    CHILD_LATE: "late child",
    RECOVERABLE: "outputs registered",
    RECOVERY: "recovery",
    PROPOSAL: "proposal",
    OTHER: "check",
}


@dataclass(frozen=True)
class Item:
    transformation_id: int
    code: str
    text: str
    count: int | None = None
    # An action kind (failover/domain.py), or "approve"; None when no button fixes it.
    fix: str | None = None
    # When the condition began, and the numbers behind the text (Blocker.since, Blocker.details).
    since: datetime | None = None
    details: dict | None = None

    @property
    def title(self) -> str:
        return TITLES.get(self.code, TITLES[OTHER])

    @property
    def short(self) -> str:
        return SHORT.get(self.code, SHORT[OTHER])

    def as_dict(self) -> dict:
        return {**asdict(self), "title": self.title}

    def age(self, now: datetime | None = None):
        """How long the condition has lasted (a timedelta), or None when not known."""
        return (now or timezone.now()) - self.since if self.since else None

    @classmethod
    def of(cls, transformation_id: int, blocker: Blocker) -> Item:
        return cls(transformation_id, blocker.code, blocker.text, blocker.count, blocker.fix, blocker.since,
                   blocker.details)


# -- writing: the cycle's blockers of one transformation --------------------------------------------


def save_blockers(transformation_id: int, found: Sequence[Blocker], now: datetime | None = None) -> None:
    """Replace a transformation's stored blockers with ``found`` (nothing is written when unchanged).

    A blocker without ``since`` keeps the one stored for the same condition (``Blocker.identity``),
    or starts now: its age is how long it has lasted.
    """
    stored = [r.as_blocker() for r in BlockerRecord.objects.filter(transformation_id=transformation_id)]
    began = {b.identity: b.since for b in stored if b.since}
    now = now or timezone.now()
    found = [b if b.since else replace(b, since=began.get(b.identity, now)) for b in found]
    if [(b, b.since) for b in stored] == [(b, b.since) for b in found]:
        return
    BlockerRecord.objects.filter(transformation_id=transformation_id).delete()
    BlockerRecord.objects.bulk_create(BlockerRecord.of(transformation_id, i, b) for i, b in enumerate(found))


def blockers_of(transformation_id: int) -> list[Blocker]:
    return [r.as_blocker() for r in BlockerRecord.objects.filter(transformation_id=transformation_id)]


def waiting_for(state: TransformationState) -> int | None:
    """The parent a step waits for, or None."""
    return (
        BlockerRecord.objects.filter(transformation_id=state.transformation_id, code=WAITING)
        .values_list("related", flat=True).first()
    )


# -- reading: filters and items -----------------------------------------------------------------


def _with_blocker(codes: Iterable[str] | None = None) -> Q:
    rows = BlockerRecord.objects.exclude(code=WAITING)
    if codes is not None:
        rows = rows.filter(code__in=list(codes))
    return Q(transformation_id__in=rows.values("transformation_id"))


# Recovery findings a person should look at: waiting for approval, or an action that did not work.
RECOVERY_OPEN = ("proposed", "failed", "interrupted", "pending")


def _with_recovery() -> Q:
    return Q(transformation_id__in=RecoveryFinding.objects.filter(state__in=RECOVERY_OPEN)
             .values("transformation_id"))


def recovery_cases(transformation_id: int, jobs_shown: int = 20) -> list[dict]:
    """The last recovery check's findings of one transformation, per case: counts by state and
    the jobs (the first ``jobs_shown``), as data for the page, the API and the digests."""
    from failover import recovery

    cases: dict[str, dict] = {}
    for f in RecoveryFinding.objects.filter(transformation_id=transformation_id).order_by("case", "job"):
        c = cases.setdefault(f.case, {
            "case": f.case, "number": recovery.CASES[f.case].number if f.case in recovery.CASES else "",
            "title": recovery.CASE_TITLES.get(f.case, f.case), "count": 0, "states": {}, "jobs": [],
            "actions": list(f.actions), "checked": f.checked, "proposals": set(),
        })
        c["count"] += 1
        c["states"][f.state] = c["states"].get(f.state, 0) + 1
        if len(c["jobs"]) < jobs_shown:
            c["jobs"].append({"job": f.job, "task": f.task, "state": f.state, "outputs": f.outputs})
        if f.state == "proposed" and f.action_id:
            c["proposals"].add(f.action_id)
    for c in cases.values():
        c["proposals"] = sorted(c["proposals"])
    return list(cases.values())


def _recovery_items(ids: Sequence[int]) -> dict[int, list[Item]]:
    from failover import recovery

    out: dict[int, list[Item]] = defaultdict(list)
    rows = (RecoveryFinding.objects.filter(transformation_id__in=ids, state__in=RECOVERY_OPEN)
            .values_list("transformation_id", "case", "state").annotate(n=Count("id")).order_by("transformation_id",
                                                                                                 "case"))
    merged: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
    for tid, case, state, n in rows:
        merged[(tid, case)][state] = n
    for (tid, case), states in merged.items():
        n = sum(states.values())
        words = ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
        title = recovery.CASE_TITLES.get(case, case)
        out[tid].append(Item(tid, RECOVERY, f"{title}: {count(n, 'job')} ({words})", n,
                             "approve" if "proposed" in states else None))
    return out


def _with_proposal() -> Q:
    return Q(transformation_id__in=ActionLog.objects.filter(state=ActionLog.State.PROPOSED).values("transformation_id"))


def code_q(code: str, policy: Policy | None = None) -> Q:
    """A filter on TransformationState: the rows with an item of this code."""
    if code == PROPOSAL:
        return _with_proposal()
    if code == RECOVERY:
        return _with_recovery()
    if code == OTHER:
        return _with_blocker() & ~_with_blocker(set(TITLES) - {OTHER})
    return _with_blocker([code])


def needs_attention_q(policy: Policy | None = None) -> Q:
    """A filter on TransformationState: the rows that have at least one attention item."""
    return _with_blocker() | _with_proposal() | _with_recovery()


def items_for(states: Sequence[TransformationState], policy: Policy | None = None) -> dict[int, list[Item]]:
    """The attention items of some rows (a page of the overview): two queries whatever the rows."""
    ids = [s.transformation_id for s in states]
    out: dict[int, list[Item]] = defaultdict(list)
    if not ids:
        return out
    for r in BlockerRecord.objects.filter(transformation_id__in=ids).exclude(code=WAITING):
        out[r.transformation_id].append(Item.of(r.transformation_id, r.as_blocker()))
    for tid, found in _recovery_items(ids).items():
        out[tid].extend(found)
    for p in ActionLog.objects.filter(state=ActionLog.State.PROPOSED, transformation_id__in=ids).order_by("id"):
        out[p.transformation_id].append(
            Item(p.transformation_id, PROPOSAL, f"proposed {p.get_kind_display().lower()}: {p.reason}", None, "approve")
        )
    return out


def rows_needing_attention(policy: Policy | None = None, codes: str | Iterable[str] | None = None):
    """The rows with at least one item (of one of ``codes``), as a queryset to paginate in SQL."""
    if not codes:
        return TransformationState.objects.filter(needs_attention_q(policy)).order_by("transformation_id")
    q = Q(pk__in=[])
    for code in [codes] if isinstance(codes, str) else codes:
        q |= code_q(code, policy)
    return TransformationState.objects.filter(q).order_by("transformation_id")


def counts_by_code_sql(policy: Policy | None = None) -> dict[str, int]:
    """How many transformations have an item of each code: one GROUP BY, and one COUNT of proposals."""
    counts = {
        code: n for code, n in BlockerRecord.objects.exclude(code=WAITING)
        .filter(transformation_id__in=TransformationState.objects.values("transformation_id"))
        .values_list("code").annotate(n=Count("transformation_id", distinct=True))
    }
    known = {c: n for c, n in counts.items() if c in TITLES}
    other = TransformationState.objects.filter(code_q(OTHER)).count() if set(counts) - set(TITLES) else 0
    proposals = TransformationState.objects.filter(_with_proposal()).count()
    out = {**known, OTHER: other, PROPOSAL: proposals,
           RECOVERY: TransformationState.objects.filter(_with_recovery()).count()}
    return {code: out[code] for code in TITLES if out.get(code)}


def items_of_rows(rows: Sequence[TransformationState], policy: Policy | None = None,
                  codes: Iterable[str] | None = None) -> list[Item]:
    by_t = items_for(rows, policy)
    wanted = set(codes) if codes else None
    if wanted and OTHER in wanted:
        wanted |= {i.code for items in by_t.values() for i in items if i.code not in TITLES}
    return [i for s in rows for i in by_t.get(s.transformation_id, []) if wanted is None or i.code in wanted]

