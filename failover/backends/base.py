"""The one boundary between this product and DIRAC.

Every read is batched over many transformations or many jobs, so that a cycle costs a handful of
calls whatever the number of tasks, files or jobs (the CTADIRAC agent pays two calls per changed
task). Adapters: ``failover.backends.simulated`` (embedded, the default) and
``failover.backends.dirac`` (DIRAC's own clients). Both are held to ``tests/contract``.

Adapters raise ``failover.errors.BackendError`` (or ``BackendTimeout``) for any failure and return
the plain dataclasses of ``failover.domain``; nothing DIRAC-specific leaks past this module.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from failover.domain import FileCounts, FileInfo, JobInfo, TaskInfo, TransformationInfo


class CallCounter:
    """Counts calls by method name; adapters keep one so a cycle can say what it cost.

    Safe across threads: a cycle's writes run in a small pool (failover/cycle/act.py)."""

    def __init__(self) -> None:
        self.by_method: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, method: str, n: int = 1) -> None:
        with self._lock:
            self.by_method[method] = self.by_method.get(method, 0) + n

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.by_method.values())

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.by_method)

    def reset(self) -> None:
        with self._lock:
            self.by_method.clear()


@runtime_checkable
class DiracBackend(Protocol):
    """What the failover product reads from and writes to DIRAC."""

    name: str
    # Every adapter counts its calls to DIRAC (RPCs for the real one) by method name.
    calls: CallCounter

    # -- reads --------------------------------------------------------------------------------
    def transformations(
        self,
        *,
        statuses: Sequence[str] | None = None,
        types: Sequence[str] | None = None,
        ids: Iterable[int] | None = None,
    ) -> list[TransformationInfo]:
        """Transformations matching every given filter (None: no filter), with parent links.

        ``parent`` is -1 for a production's first step, the parent's id for a later step, and
        None for a transformation outside any production.
        """
        ...

    def file_counts(self, ids: Iterable[int]) -> dict[int, FileCounts]:
        """Files by status for each transformation (one batched GROUP BY in DIRAC)."""
        ...

    def tasks(self, ids: Iterable[int]) -> list[TaskInfo]:
        """All tasks of the given transformations."""
        ...

    def files(
        self,
        ids: Iterable[int],
        *,
        statuses: Sequence[str] | None = None,
        lfns: Iterable[str] | None = None,
    ) -> list[FileInfo]:
        """Files of the given transformations, optionally only those in ``statuses`` or ``lfns``."""
        ...

    def jobs(self, job_ids: Iterable[int]) -> dict[int, JobInfo]:
        """Status, minor status, application status and site of each job.

        Jobs unknown to the Job DB are absent from the answer, as in DIRAC.
        """
        ...

    def tasks_changed_since(self, ids: Iterable[int], since: datetime) -> list[TaskInfo]:
        """Tasks of the given transformations whose LastUpdateTime is at or after ``since``.

        The same ``TaskInfo`` values as ``tasks()``, in one batched read (DIRAC:
        ``getTransformationTasks`` with ``newer`` and ``timeStamp="LastUpdateTime"``). ``since``
        must be timezone-aware; DIRAC keeps naive UTC with whole seconds, so ``since`` is taken
        down to its whole second (``dirac_cut``): a change in the same second is never lost.
        DIRAC's times come from its database server's clock, not ours: a caller takes its next
        ``since`` before its read starts, less a margin for clock skew. A deleted task is never
        "changed" (only a full read sees it gone). Which writes move LastUpdateTime:
        docs/scenario.md.
        """
        ...

    def jobs_changed_since(self, ids: Iterable[int], since: datetime) -> dict[int, JobInfo]:
        """Jobs of the given transformations (JobGroup) whose LastUpdateTime is at or after
        ``since`` (taken down to its whole second, as for tasks), with their current states.

        DIRAC: one JobMonitoring ``getJobs({"JobGroup": [...]}, cutDate)`` for all the
        transformations, then ``getJobsStates`` and ``getJobsSites`` for those jobs only, as
        ``jobs()`` does. A job deleted between the two reads is absent. Not every change moves
        a job's LastUpdateTime (a site set alone, a heartbeat): docs/scenario.md.
        """
        ...

    # -- writes -------------------------------------------------------------------------------
    def set_task_status(self, transformation: int, task_ids: Sequence[int], status: str) -> None:
        """Set the ExternalStatus of several tasks of one transformation in one call."""
        ...

    def set_file_status(
        self, transformation: int, lfns: Sequence[str], status: str
    ) -> Mapping[str, str]:
        """Ask DIRAC to set files' status without forcing; returns LFN to the status written.

        DIRAC applies its own rules (Processed is sticky, MaxReset cannot go back to Unused, an
        Unused proposal may become MaxReset), so the status written may differ from the one asked,
        and unchanged or unknown LFNs are absent from the answer.
        """
        ...

    def set_transformation_status(self, transformation: int, status: str, *, expected: str) -> None:
        """Compare-and-set: change the status only if it still is ``expected``.

        Raises ``BackendError`` naming the actual status otherwise, so an operator's or another
        agent's change made meanwhile is never overwritten.
        """
        ...


def dirac_cut(since: datetime) -> datetime:
    """``since`` as DIRAC compares it: naive UTC, down to the whole second.

    DIRAC's LastUpdateTime columns are DATETIME without fractional seconds, set from MySQL's
    UTC_TIMESTAMP() (the current whole second). MariaDB compares ``12:00:00 >= '12:00:00.5'``
    as false, so a fractional cut would lose a change made earlier in the same second. A naive
    datetime is refused: whether it meant UTC or local time cannot be known.
    """
    if since.tzinfo is None or since.utcoffset() is None:
        raise ValueError(f"a delta read needs a timezone-aware time, not the naive {since.isoformat()}")
    return since.astimezone(UTC).replace(tzinfo=None, microsecond=0)
