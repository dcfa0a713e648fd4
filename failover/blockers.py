"""Blockers: why a transformation is not moving on, as data, from the rule that sees it to the page.

A ``Blocker`` is a small value: a code, the numbers, the related transformation and the text to
show. The rules (``failover/rules.py``) and the engine (``failover/engine.py``) make them; the cycle
stores them as rows (``failover.models.BlockerRecord``, indexed by code); the attention list, the
overview's filter, the production page and the digests (``failover/attention.py``) select and count
by code and show the text as it is, never parse it. No Django here: the rules stay pure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

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

CODES = (AT_CAP, ASSIGNED_FINAL, CHILD_ACTIVE, TASKS_WITHOUT_JOB, NO_PROGRESS, FLUSH_LIMIT, CANNOT_COMPLETE,
         READ_FAILED, RECOVERABLE, RECOVERY, WAITING)


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

    @property
    def is_attention(self) -> bool:
        """Whether a person should look at it (waiting for a parent is normal)."""
        return self.code != WAITING

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return self.text
