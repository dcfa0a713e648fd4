"""Keeping the database small: old cycles and what apps stored per cycle go; the audit log stays.

Aggregates are kept per cycle for the plots and the reports "as of a past cycle". After
FAILOVER_KEEP_DAYS they are dropped, with the cycles they belong to. The action log is an audit
trail and is never pruned here. Apps that store data per cycle (reports: snapshots and aggregate
sets) register a pruner at app ready; each runs in the same transaction as the cycles' removal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from failover import mirror
from failover.models import Cycle, ProgressSample
from failover.outcomes import count

# A pruner removes what is older than the cutoff and says how many of what: [(count, "what"), ...].
Pruner = Callable[[datetime], list[tuple[int, str]]]
_pruners: list[Pruner] = []


def register_pruner(pruner: Pruner) -> None:
    if pruner not in _pruners:
        _pruners.append(pruner)


@dataclass
class PruneResult:
    cycles: int
    others: list[tuple[int, str]] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [count(self.cycles, "cycle"), *(f"{n} {what}" for n, what in self.others)]
        return "removed " + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0])


def prune(keep_days: int) -> PruneResult:
    cutoff = timezone.now() - timedelta(days=keep_days)
    with transaction.atomic():
        others = [item for pruner in _pruners for item in pruner(cutoff)]
        # The history the forecasts and stall alerts read (failover/insight.py).
        samples, _ = ProgressSample.objects.filter(at__lt=cutoff).delete()
        if samples:
            others.append((samples, "history samples"))
        # The mirror of a transformation no cycle read since (failover/mirror.py).
        others.extend(mirror.prune(cutoff))
        # Cycles still running are left alone, however old: the health check reports them.
        cycles = Cycle.objects.filter(started__lt=cutoff).exclude(state=Cycle.State.RUNNING)
        cycle_count = cycles.count()
        cycles.delete()
    return PruneResult(cycle_count, others)
