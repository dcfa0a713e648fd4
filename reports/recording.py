"""The reports side of ``failover.recording``: a cycle's jobs, aggregated, into the aggregate store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from failover.domain import JobInfo
from failover.recording import SnapshotMeta
from reports.aggregation import aggregate_jobs
from reports.models import AggregateSet, Snapshot
from reports.stores import AggregateStore, get_store


class StoreRecorder:
    """Aggregates the jobs of a treated transformation and writes the snapshot to ``store``."""

    def __init__(self, store: AggregateStore | None = None):
        self.store = store if store is not None else get_store()

    def record(self, cycle_id: int, timestamp: datetime, meta: SnapshotMeta, jobs: Sequence[JobInfo]) -> None:
        self.store.write(cycle_id, timestamp, meta, aggregate_jobs(jobs))


def prune_aggregates(cutoff: datetime) -> list[tuple[int, str]]:
    """Stored snapshots older than ``cutoff``, and the aggregate sets no snapshot uses any more
    (registered with failover.maintenance at app ready)."""
    snapshots, _ = Snapshot.objects.filter(timestamp__lt=cutoff).delete()
    sets, _ = AggregateSet.objects.filter(snapshots__isnull=True, created__lt=cutoff).delete()
    return [(snapshots, "stored snapshots"), (sets, "aggregate sets no snapshot uses any more")]
