"""What the engine hands on about each transformation a cycle treated: an interface failover owns.

The engine records the transformations a recorded cycle planned once per batch, after their turns
(``record_many``, or ``record`` for each where a recorder has no ``record_many``: ``record_all``),
and ``record_unchanged`` for the transformations of a batch whose tasks and jobs did not change
(their aggregates are the last ones). The reports app
implements it (it aggregates the mirror's jobs with a GROUP BY and writes a snapshot to the aggregate
store, SQL or OpenSearch) and registers its factory when the app is ready
(``reports/apps.py``). Without a registered recorder (failover on its own), nothing is recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class SnapshotMeta:
    transformation_id: int
    production_id: int | None
    transformation_type: str


class CycleRecorder(Protocol):
    def record(self, cycle_id: int, timestamp: datetime, meta: SnapshotMeta, aggregates: Sequence[tuple]) -> None:
        """``aggregates``: ``failover.mirror.job_aggregates`` of the transformation, computed once."""

    def record_unchanged(self, cycle_id: int, timestamp: datetime, metas: Sequence[SnapshotMeta],
                         previous: Mapping[int, int] | None = None) -> None:
        """``previous``: the cycle that last recorded each transformation, where known."""


def record_all(recorder: CycleRecorder, cycle_id: int, timestamp: datetime,
               items: Sequence[tuple[SnapshotMeta, Sequence[tuple]]]) -> None:
    """Record a batch's planned transformations: ``(meta, aggregates)`` each, in one
    ``record_many`` where the recorder has one (a few statements for the batch), else one by one."""
    if not items:
        return
    many = getattr(recorder, "record_many", None)
    if many is not None:
        many(cycle_id, timestamp, items)
        return
    for meta, aggregates in items:
        recorder.record(cycle_id, timestamp, meta, aggregates)


class NoRecorder:
    """Records nothing: failover without the reports app."""

    def record(self, cycle_id: int, timestamp: datetime, meta: SnapshotMeta, aggregates: Sequence[tuple]) -> None:
        return None

    def record_many(self, cycle_id: int, timestamp: datetime,
                    items: Sequence[tuple[SnapshotMeta, Sequence[tuple]]]) -> None:
        return None

    def record_unchanged(self, cycle_id: int, timestamp: datetime, metas: Sequence[SnapshotMeta],
                         previous: Mapping[int, int] | None = None) -> None:
        return None


_factory: Callable[[], CycleRecorder] = NoRecorder


def register(factory: Callable[[], CycleRecorder]) -> None:
    """Set what makes each engine's recorder (called by the reports app when it is ready)."""
    global _factory
    _factory = factory


def new_recorder() -> CycleRecorder:
    """A recorder for one engine run (each gets its own, so a store's settings are read per run)."""
    return _factory()
