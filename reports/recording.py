"""The reports side of ``failover.recording``: a cycle's aggregates, from the mirror, into the aggregate store.

The aggregates are one GROUP BY over the mirror's jobs of a transformation (``failover.mirror.
job_aggregates``), never a walk over job objects. A transformation whose tasks and jobs did not
change since its last snapshot is recorded with the same aggregates again, without reading a job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from failover import mirror
from failover.recording import SnapshotMeta
from reports.aggregation import AggregateRow
from reports.models import AggregateSet, Snapshot
from reports.stores import AggregateStore, get_store


def mirror_aggregates(transformation_id: int) -> list[AggregateRow]:
    """The report's rows of a transformation, from the mirror (one GROUP BY in the database)."""
    return [AggregateRow(*row) for row in mirror.job_aggregates(transformation_id)]


class StoreRecorder:
    """Aggregates the mirror's jobs of a treated transformation and writes the snapshot to ``store``."""

    def __init__(self, store: AggregateStore | None = None):
        self.store = store if store is not None else get_store()

    def record(self, cycle_id: int, timestamp: datetime, meta: SnapshotMeta, aggregates: Sequence[tuple]) -> None:
        """``aggregates``: the mirror's GROUP BY for this transformation (the engine computes it once)."""
        self.store.write(cycle_id, timestamp, meta, [AggregateRow(*row) for row in aggregates])

    def record_many(self, cycle_id: int, timestamp: datetime,
                    items: Sequence[tuple[SnapshotMeta, Sequence[tuple]]]) -> None:
        """``record`` for the transformations of a batch, in one write where the store can."""
        many = getattr(self.store, "write_many", None)
        if many is not None:
            many(cycle_id, timestamp, [(meta, [AggregateRow(*row) for row in aggs]) for meta, aggs in items])
            return
        for meta, aggs in items:
            self.record(cycle_id, timestamp, meta, aggs)

    def record_unchanged(self, cycle_id: int, timestamp: datetime, metas: Sequence[SnapshotMeta],
                         previous: Mapping[int, int] | None = None) -> None:
        """Transformations whose jobs did not change: this cycle's snapshot is their last one's."""
        carry = getattr(self.store, "carry_forward", None)
        left = carry(cycle_id, timestamp, metas, previous or {}) if carry is not None else list(metas)
        for meta in left:
            last = self.store.latest(meta.transformation_id)
            rows = last.rows if last is not None else mirror_aggregates(meta.transformation_id)
            self.store.write(cycle_id, timestamp, meta, rows)


def prune_aggregates(cutoff: datetime) -> list[tuple[int, str]]:
    """Stored snapshots older than ``cutoff``, and the aggregate sets no snapshot uses any more
    (registered with failover.maintenance at app ready)."""
    snapshots, _ = Snapshot.objects.filter(timestamp__lt=cutoff).delete()
    sets, _ = AggregateSet.objects.filter(snapshots__isnull=True, created__lt=cutoff).delete()
    return [(snapshots, "stored snapshots"), (sets, "aggregate sets no snapshot uses any more")]
