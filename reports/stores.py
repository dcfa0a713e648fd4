"""Aggregate stores: where each cycle's job-status aggregates go and where pages read them.

One interface, answered by SQL (the default) or, with OPENSEARCH_URL set, by OpenSearch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from failover.recording import SnapshotMeta
from reports.aggregation import AggregateRow
from reports.models import AggregateRowModel, AggregateSet, Snapshot
from reports.opensearch_store import OpenSearchAggregateStore
from reports.storage import AggregateStore, AggregateStoreError, StoredAggregates

# The interface lives in reports/storage.py (so the OpenSearch store needs nothing from here);
# callers may name it through this module.
__all__ = [
    "AggregateStore", "AggregateStoreError", "SnapshotMeta", "SqlAggregateStore", "StoredAggregates", "get_store",
]


def digest(rows: Sequence[AggregateRow]) -> str:
    h = hashlib.sha256()
    for r in sorted(rows, key=lambda r: (r.status, r.minor_status, r.application_status, r.site)):
        h.update(f"{r.status}\x1f{r.minor_status}\x1f{r.application_status}\x1f{r.site}\x1f{r.count}\x1f{r.first_job}\x1e".encode())
    return h.hexdigest()


# The aggregate rows' columns, in the order ``_insert_rows`` writes them.
_ROW_COLUMNS = ("aggregate_set_id", "status", "minor_status", "application_status", "site", "count", "first_job")


def _insert_rows(rows) -> None:
    """Insert ``(aggregate set id, AggregateRow)`` pairs: one prepared INSERT run for every row.
    A warm cycle on 1,000 transformations writes some 30,000 rows; ``bulk_create``, a model
    instance per row and its SQL built in chunks, took 4 s of it (docs/benchmarks.md)."""
    q = connection.ops.quote_name
    sql = (f"INSERT INTO {q(AggregateRowModel._meta.db_table)} ({', '.join(q(c) for c in _ROW_COLUMNS)}) "
           f"VALUES ({', '.join(['%s'] * len(_ROW_COLUMNS))})")
    params = [(set_id, r.status, r.minor_status, r.application_status, r.site, r.count, r.first_job)
              for set_id, r in rows]
    if params:
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)


class SqlAggregateStore:
    name = "sql"

    def write(self, cycle_id, timestamp, meta, rows) -> None:
        key = digest(rows)
        with transaction.atomic():
            agg = AggregateSet.objects.filter(transformation_id=meta.transformation_id, digest=key).first()
            if agg is None:
                try:
                    with transaction.atomic():
                        agg = AggregateSet.objects.create(
                            transformation_id=meta.transformation_id, digest=key, total=sum(r.count for r in rows)
                        )
                except IntegrityError:  # another worker stored the same set meanwhile
                    agg = AggregateSet.objects.get(transformation_id=meta.transformation_id, digest=key)
                else:
                    _insert_rows((agg.pk, r) for r in rows)
            # A re-run of the same cycle (a retried task) replaces its snapshot, never doubles it:
            # one INSERT ... ON CONFLICT UPDATE (not a SELECT, then an INSERT or an UPDATE).
            Snapshot.objects.bulk_create(
                [Snapshot(cycle_id=cycle_id, transformation_id=meta.transformation_id, timestamp=timestamp,
                          aggregate_set=agg, production_id=meta.production_id,
                          transformation_type=meta.transformation_type)],
                update_conflicts=True, unique_fields=["cycle_id", "transformation_id"],
                update_fields=["timestamp", "aggregate_set", "production_id", "transformation_type"],
            )

    def write_many(self, cycle_id, timestamp, items) -> None:
        """``write`` for many transformations at once (a batch of a cycle): ``items`` are
        ``(meta, rows)``. A few statements for the whole batch: which aggregate sets exist
        already, the new sets, all their rows, all the snapshots. If another worker stores one of
        the same sets meanwhile, the batch is written one transformation at a time instead."""
        items = [(meta, rows, digest(rows)) for meta, rows in items]
        if not items:
            return
        with transaction.atomic():
            found: dict[tuple[int, str], int] = {}
            for start in range(0, len(items), 400):
                chunk = items[start : start + 400]
                for tid, key, pk in AggregateSet.objects.filter(
                    transformation_id__in={m.transformation_id for m, _, _ in chunk},
                    digest__in={key for _, _, key in chunk},
                ).values_list("transformation_id", "digest", "id"):
                    found[(tid, key)] = pk
            new: dict[tuple[int, str], tuple[AggregateSet, Sequence[AggregateRow]]] = {}
            for meta, rows, key in items:
                ident = (meta.transformation_id, key)
                if ident not in found and ident not in new:
                    new[ident] = (AggregateSet(transformation_id=meta.transformation_id, digest=key,
                                               total=sum(r.count for r in rows)), rows)
            if new:
                try:
                    with transaction.atomic():
                        AggregateSet.objects.bulk_create([agg for agg, _ in new.values()], batch_size=400)
                except IntegrityError:  # another worker stored one of the same sets meanwhile
                    for meta, rows, _ in items:
                        self.write(cycle_id, timestamp, meta, rows)
                    return
                if any(agg.pk is None for agg, _ in new.values()):  # a database that returns no ids
                    for ident in new:
                        new[ident][0].pk = AggregateSet.objects.get(transformation_id=ident[0], digest=ident[1]).pk
                _insert_rows((agg.pk, r) for agg, rows in new.values() for r in rows)
                found.update({ident: agg.pk for ident, (agg, _) in new.items()})
            # A re-run of the same cycle replaces its snapshots, as ``write`` does.
            Snapshot.objects.bulk_create(
                [Snapshot(cycle_id=cycle_id, transformation_id=meta.transformation_id, timestamp=timestamp,
                          aggregate_set_id=found[(meta.transformation_id, key)], production_id=meta.production_id,
                          transformation_type=meta.transformation_type) for meta, _, key in items],
                update_conflicts=True, unique_fields=["cycle_id", "transformation_id"],
                update_fields=["timestamp", "aggregate_set", "production_id", "transformation_type"],
                batch_size=400,
            )

    def carry_forward(self, cycle_id, timestamp, metas, previous=None) -> list:
        """Snapshots of ``cycle_id`` that share each transformation's last aggregate set (its jobs
        did not change), in one bulk write; returns the metas that had no snapshot yet.

        ``previous``: the cycle that last recorded each transformation, so that their sets are
        read in one query; the others are looked up one by one (the latest by time)."""
        previous = previous or {}
        sets: dict[int, int] = {}
        metas = list(metas)
        for start in range(0, len(metas), 500):
            chunk = [m.transformation_id for m in metas[start : start + 500] if m.transformation_id in previous]
            if chunk:
                for tid, c, agg in Snapshot.objects.filter(
                    transformation_id__in=chunk, cycle_id__in={previous[t] for t in chunk}
                ).values_list("transformation_id", "cycle_id", "aggregate_set_id"):
                    if previous.get(tid) == c:
                        sets[tid] = agg
        rows, left = [], []
        for meta in metas:
            last = sets.get(meta.transformation_id)
            if last is None:
                last = (Snapshot.objects.filter(transformation_id=meta.transformation_id)
                        .order_by("-timestamp", "-cycle_id").values_list("aggregate_set_id", flat=True).first())
            if last is None:
                left.append(meta)
                continue
            rows.append(Snapshot(cycle_id=cycle_id, transformation_id=meta.transformation_id, timestamp=timestamp,
                                 aggregate_set_id=last, production_id=meta.production_id,
                                 transformation_type=meta.transformation_type))
        if rows:
            Snapshot.objects.bulk_create(
                rows, update_conflicts=True, unique_fields=["cycle_id", "transformation_id"],
                update_fields=["timestamp", "aggregate_set", "production_id", "transformation_type"],
            )
        return left

    def _load(self, snapshot) -> StoredAggregates:
        rows = [
            AggregateRow(r.status, r.minor_status, r.application_status, r.site, r.count, r.first_job)
            for r in snapshot.aggregate_set.rows.order_by("first_job", "id")
        ]
        return StoredAggregates(snapshot.cycle_id, snapshot.timestamp, snapshot.transformation_id, rows)

    def latest(self, transformation_id: int) -> StoredAggregates | None:
        snap = Snapshot.objects.filter(transformation_id=transformation_id).order_by("-timestamp", "-cycle_id").first()
        return self._load(snap) if snap else None

    def at_cycle(self, transformation_id: int, cycle_id: int) -> StoredAggregates | None:
        snap = Snapshot.objects.filter(transformation_id=transformation_id, cycle_id=cycle_id).first()
        return self._load(snap) if snap else None

    def series(self, transformation_id: int, limit: int = 500) -> list[StoredAggregates]:
        snaps = list(
            Snapshot.objects.filter(transformation_id=transformation_id).order_by("-timestamp")[:limit]
        )[::-1]
        rows_by_set: dict[int, list[AggregateRow]] = {}
        # The same row order as latest() and at_cycle(), on any database.
        for r in AggregateRowModel.objects.filter(aggregate_set_id__in={s.aggregate_set_id for s in snaps}).order_by(
            "first_job", "id"
        ):
            rows_by_set.setdefault(r.aggregate_set_id, []).append(
                AggregateRow(r.status, r.minor_status, r.application_status, r.site, r.count, r.first_job)
            )
        return [
            StoredAggregates(s.cycle_id, s.timestamp, s.transformation_id, rows_by_set.get(s.aggregate_set_id, []))
            for s in snaps
        ]


def get_store() -> AggregateStore:
    if getattr(settings, "OPENSEARCH_URL", ""):
        return OpenSearchAggregateStore.from_settings()
    return SqlAggregateStore()


def stored_aggregates(
    transformation_id: int, cycle_id: int | None = None, store: AggregateStore | None = None
) -> StoredAggregates | None:
    """The aggregates stored for a transformation by ``cycle_id``, or by the latest cycle: the one
    definition of "the stored report" (pages, API, ``manage.py report --stored``, digests)."""
    store = store if store is not None else get_store()
    return store.at_cycle(transformation_id, cycle_id) if cycle_id else store.latest(transformation_id)
