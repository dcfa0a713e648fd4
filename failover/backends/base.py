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

    # -- recovery reads (DIRAC's DataRecoveryAgent) ------------------------------------------
    def job_input_data(self, job_ids: Iterable[int]) -> dict[int, list[str]]:
        """The JobDB ``InputData`` LFNs of each job (JobMonitoring ``getInputData`` with a list).

        Every asked job is a key, with ``[]`` when it has none or is unknown, as DIRAC answers.
        LFNs come without DIRAC's optional ``LFN:`` prefix. The list is fixed when the job is
        submitted: after a reassign, an input may belong to a newer task (the agent's "other tasks").
        """
        ...

    def job_output_data(self, job_ids: Iterable[int]) -> dict[int, list[str]]:
        """The ``ProductionOutputData`` job parameter of each job, as a list of LFNs.

        Only jobs that have the parameter (LHCb-style workflows set it; CTADIRAC never does) are
        keys. DIRAC: one JobMonitoring ``getJobParameters(ids, "ProductionOutputData")``; the value
        is a comma-separated string, split and stripped as DIRAC's agent does.
        """
        ...

    def catalogue_available(self) -> bool:
        """Whether a file catalogue is configured and known, so that the catalogue reads mean
        something. False: the catalogue reads raise ``BackendError``, and no check that needs the
        catalogue may run (the simulator: its scenario had no ``catalog`` key). No call to DIRAC
        beyond its local configuration."""
        ...

    def catalogue_exists(self, lfns: Iterable[str]) -> dict[str, bool]:
        """Whether each LFN is registered in the catalogue; every asked LFN is a key.

        DIRAC: FileCatalog ``exists`` in chunks (the agent uses 200 LFNs per call). Raises
        ``BackendError`` when the catalogue is not available or answers an LFN with an error.
        """
        ...

    def catalogue_files_by_job(self, job_ids: Iterable[int]) -> dict[int, list[str]]:
        """The LFNs registered with file metadata ``jobID`` equal to each job's id.

        CTADIRAC's ``putAndRegister`` sets ``{"jobID": <job id>}`` on every output it registers,
        so this says whether a job registered some outputs or none; it cannot say whether it
        registered all of them. Only jobs with at least one such LFN are keys, LFNs sorted.
        DIRAC: FileCatalog ``findFilesByMetadataDetailed({"jobID": [ids as strings]}, "/")``, one
        call per chunk of jobs, each LFN's ``jobID`` read back from its metadata.
        """
        ...

    def job_requests(self, job_ids: Iterable[int]) -> dict[int, str]:
        """The Request Management System's request status of each job that has a request.

        Jobs without one are absent. Pending: Waiting, Assigned, Scheduled (a failover request
        may still register outputs or set files); final: Done, Failed, Canceled. DIRAC's agent
        treats every status but Done and Canceled as pending. DIRAC: ReqManager
        ``getRequestIDsForJobs`` then ``getBulkRequestStatus``: two calls per chunk of jobs.
        """
        ...

    # -- writes -------------------------------------------------------------------------------
    def set_task_status(self, transformation: int, task_ids: Sequence[int], status: str) -> None:
        """Set the ExternalStatus of several tasks of one transformation in one call."""
        ...

    def set_file_status(
        self,
        transformation: int,
        statuses: Mapping[str, str] | Sequence[str],
        status: str | None = None,
        *,
        force: bool = False,
    ) -> Mapping[str, str]:
        """Set files' status in one transformation; returns LFN to the status written.

        ``statuses`` maps LFN to the status wanted; or it is a sequence of LFNs that all get
        ``status`` (the form the failover cycle uses). DIRAC: ``setFileStatusForTransformation``.

        Not forced, DIRAC applies its own rules (Processed is sticky, MaxReset cannot go back to
        Unused, an Unused proposal may become MaxReset at every FilesMaxResetCounter-th error), so
        the status written may differ from the one asked. ``force=True`` (what DIRAC's
        DataRecoveryAgent uses for every input status it sets) skips those rules. Either way a
        file leaving Assigned for anything but Processed has its ErrorCount raised by one, and
        unchanged or unknown LFNs are absent from the answer.
        """
        ...

    def set_job_status(
        self, job_ids: Iterable[int], status: str, *, minor_status: str, force: bool = True
    ) -> None:
        """Set the status and minor status of jobs in the Job DB (application status untouched).

        DIRAC: JobStateUpdate ``setJobStatus(job, status, minor_status, source, force=force)``,
        one call per job (there is no bulk form). ``force`` bypasses the job state machine
        (Failed to Done is refused without it); the server honours it only for a caller with
        JobAdministrator. DIRAC's DataRecoveryAgent forces, with minor status "Job forced to
        Done" or "Job forced to Failed". Moves the job's LastUpdateTime. Every job is tried;
        then ``BackendError`` names those that failed (an unknown job: "No Matching Job").
        """
        ...

    def remove_catalogue_files(self, lfns: Iterable[str]) -> dict[str, str]:
        """Remove LFNs from the catalogue; returns each asked LFN to "" (removed, or already
        absent, as DIRAC's catalogue answers) or the catalogue's error text.

        DIRAC: FileCatalog ``removeFile`` in chunks of 200. This removes catalogue entries (and
        the replicas the catalogue lists for them), not the data on storage elements: DIRAC's
        agent goes through DataManager for that. Raises ``BackendError`` when no catalogue is
        available. Deletes data's bookkeeping: callers run it only for an approved proposal.
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


def file_statuses(statuses: Mapping[str, str] | Sequence[str], status: str | None) -> dict[str, str]:
    """LFN to wanted status from set_file_status's two forms (a mapping; LFNs and one status)."""
    if isinstance(statuses, Mapping):
        if status is not None:
            raise TypeError("set_file_status: give a mapping of LFN to status, or LFNs and one status, not both")
        return {str(lfn): str(s) for lfn, s in statuses.items()}
    if isinstance(statuses, str):
        raise TypeError("set_file_status: LFNs must be a sequence, not one string")
    if status is None:
        raise TypeError("set_file_status: a sequence of LFNs needs the status to set")
    return dict.fromkeys((str(lfn) for lfn in statuses), status)
