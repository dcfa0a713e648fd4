"""Blockers: why a transformation is not moving on, as data, from the rule that sees it to the page.

A ``Blocker`` is a small value: a code, the numbers, the related transformation and the text to
show. The rules (``failover/rules.py``) and the engine (``failover/engine.py``) make them; the cycle
stores them as rows (``failover.models.BlockerRecord``, indexed by code); the attention list, the
overview's filter, the production page and the digests (``failover/attention.py``) select and count
by code and show the text as it is, never parse it. No Django here: the rules stay pure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

# A step waits for its parent: normal, shown on the production page, not an attention item.
WAITING = "waiting"
# Every file is Processed or in a status nothing moves on (MaxReset, Problematic, ...).
CANNOT_COMPLETE = "cannot_complete"
# The flush that is due cannot happen: MaxFlush flushes were made.
FLUSH_LIMIT = "flush_limit"
# Files reached MaxReassign and stay Assigned.
AT_CAP = "at_cap"
# Assigned files of tasks whose job ended well (their report to DIRAC was lost).
ASSIGNED_FINAL = "assigned_final"
# Tasks without a job in two cycles in a row.
TASKS_WITHOUT_JOB = "tasks_without_job"
# A child still Active with nothing running while its parent is final.
CHILD_ACTIVE = "child_active"
# Neither file nor job counts moved over FAILOVER_STALL_CYCLES cycles.
NO_PROGRESS = "no_progress"
# A read the rules needed failed (the cycle went on without it).
READ_FAILED = "read_failed"
# Failed jobs whose outputs are registered: kept from reassign, for recovery (failover/recovery.py).
RECOVERABLE = "recoverable"
# Recovery findings of the last check (failover/cycle/recover.py), one blocker per case.
RECOVERY = "recovery"

# Insight (failover/insight.py), from the jobs a cycle read and the stored history:
# a site failing far more than the transformation's other sites (a one-sided Fisher test);
SITE_HINT = "site_hint"
# no file Processed for FAILOVER_STALL_HOURS while files remain Unused or Assigned;
STALLED = "stalled"
# every one of the last FAILOVER_ALL_FAILED_JOBS finished jobs failed;
ALL_FAILED = "all_failed"
# more than FAILOVER_FAILED_PERCENT % of the recent finished jobs failed;
MANY_FAILED = "many_failed"
# tasks created but not submitted for FAILOVER_UNSUBMITTED_HOURS;
NOT_SUBMITTED = "not_submitted"
# still Active FAILOVER_CHILD_LATE_HOURS after the parent became final.
CHILD_LATE = "child_late"

INSIGHT_CODES = (SITE_HINT, STALLED, ALL_FAILED, MANY_FAILED, NOT_SUBMITTED, CHILD_LATE)

CODES = (AT_CAP, ASSIGNED_FINAL, CHILD_ACTIVE, TASKS_WITHOUT_JOB, NO_PROGRESS, FLUSH_LIMIT, CANNOT_COMPLETE,
         READ_FAILED, RECOVERABLE, RECOVERY, *INSIGHT_CODES, WAITING)


@dataclass(frozen=True)
class Blocker:
    code: str
    text: str
    # The number the text is about (files, tasks), and the limit it reached (MaxFlush, MaxReassign).
    count: int | None = None
    limit: int | None = None
    # The related transformation (the parent waited for, or found final).
    related: int | None = None
    # The action kind (failover/domain.py) that fixes it, where the engine has one.
    fix: str | None = None
    # When the condition began: set by who sees it when the history says (a stall's last progress),
    # else the first cycle that saw it (kept across cycles by ``failover.attention.save_blockers``).
    # Not part of equality: the same condition seen again is the same blocker, whenever it began.
    since: datetime | None = field(default=None, compare=False)
    # The numbers behind the text, for pages and the API (a site hint's site, counts, signature).
    details: dict | None = None

    @property
    def is_attention(self) -> bool:
        """Whether a person should look at it (waiting for a parent is normal)."""
        return self.code != WAITING

    @property
    def identity(self) -> tuple:
        """What makes two cycles' blockers the same condition (its ``since`` is kept across them)."""
        return (self.code, self.related, (self.details or {}).get("site"))

    def as_dict(self) -> dict:
        return asdict(self)

    def as_json(self) -> dict:
        """``as_dict`` with ``since`` as ISO text, for a JSON field (``from_json`` reads it back)."""
        d = asdict(self)
        d["since"] = self.since.isoformat() if self.since else None
        return d

    @classmethod
    def from_json(cls, d: dict) -> Blocker:
        since = d.get("since")
        return cls(**{**d, "since": datetime.fromisoformat(since) if since else None})

    def __str__(self) -> str:
        return self.text
