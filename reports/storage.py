"""The aggregate store's interface and the values it takes and gives (SQL and OpenSearch implement it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from failover.errors import FailoverError
from failover.recording import SnapshotMeta
from reports.aggregation import AggregateRow


class AggregateStoreError(FailoverError):
    """The aggregate store (OpenSearch) cannot be read; the message says which and why."""


@dataclass(frozen=True)
class StoredAggregates:
    cycle_id: int
    timestamp: datetime
    transformation_id: int
    rows: list[AggregateRow]


class AggregateStore(Protocol):
    def write(self, cycle_id: int, timestamp: datetime, meta: SnapshotMeta, rows: Sequence[AggregateRow]) -> None: ...

    def latest(self, transformation_id: int) -> StoredAggregates | None: ...

    def at_cycle(self, transformation_id: int, cycle_id: int) -> StoredAggregates | None: ...

    def series(self, transformation_id: int, limit: int = 500) -> list[StoredAggregates]: ...
