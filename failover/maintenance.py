"""Keeping the database small: old cycles and stored aggregates go; the audit log stays.

Aggregates are kept per cycle for the plots and the reports "as of a past cycle". After
FAILOVER_KEEP_DAYS they are dropped, with the cycles they belong to. The action log is an audit
trail and is never pruned here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from failover.models import Cycle


@dataclass
class PruneResult:
    cycles: int
    snapshots: int
    aggregate_sets: int

    def __str__(self) -> str:
        return (f"removed {self.cycles} cycles, {self.snapshots} stored snapshots and "
                f"{self.aggregate_sets} aggregate sets no snapshot uses any more")


def prune(keep_days: int) -> PruneResult:
    from reports.models import AggregateSet, Snapshot

    cutoff = timezone.now() - timedelta(days=keep_days)
    with transaction.atomic():
        snapshots, _ = Snapshot.objects.filter(timestamp__lt=cutoff).delete()
        sets, _ = AggregateSet.objects.filter(snapshots__isnull=True, created__lt=cutoff).delete()
        # Cycles still running are left alone, however old: the health check reports them.
        cycles = Cycle.objects.filter(started__lt=cutoff).exclude(state=Cycle.State.RUNNING)
        cycle_count = cycles.count()
        cycles.delete()
    return PruneResult(cycle_count, snapshots, sets)
