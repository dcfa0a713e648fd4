"""The simulated DIRAC adapter: the DiracBackend Protocol over the simulator's own tables.

It follows DIRAC's semantics where the product can see them (the contract suite in
tests/contract checks both adapters alike): file-status rules of setFileStatusForTransformation,
compare-and-set of transformation status, unknown jobs absent from job reads, silent success for
unknown task ids.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from django.db import connections, transaction
from django.db.models import Count, F

from failover.backends.base import CallCounter, dirac_cut, file_statuses
from failover.domain import (
    ASSIGNED,
    PROCESSED,
    UNUSED,
    FileCounts,
    FileInfo,
    JobInfo,
    TaskInfo,
    TransformationInfo,
    job_group,
)
from failover.errors import BackendError, BackendTimeout
from failover.simulated.faults import FaultInjector, FaultPlan
from failover.simulated.models import (
    SimCatalogFile,
    SimFile,
    SimJob,
    SimProduction,
    SimRequest,
    SimState,
    SimTask,
    SimTransformation,
    dirac_now,
)
from failover.simulated.router import SIM_DB

# DIRAC's Operations option Transformations/FilesMaxResetCounter (default 10).
FILES_MAX_RESET_COUNTER = 10
MAX_RESET = "MaxReset"
# DIRAC reads large id lists in chunks; so do we, to keep SQL parameter lists bounded.
CHUNK = 10_000
# DIRAC's DataRecoveryAgent asks the catalogue about 200 LFNs per call; so do both adapters.
CATALOGUE_CHUNK = 200
REQUEST_CHUNK = 1000

# DIRAC's job state machine (DIRACCommon JobStatus.JobsStateMachine): the statuses a job may move
# to from each status without force. A refused move keeps the current status (setJobStatus still
# answers OK). Stalled is taken as Running, as JobStatusUtility does.
JOB_TRANSITIONS = {
    "Deleted": set(),
    "Killed": {"Deleted"},
    "Failed": {"Rescheduled", "Deleted"},
    "Done": {"Deleted"},
    "Completed": {"Done", "Failed"},
    "Completing": {"Done", "Failed", "Completed", "Stalled", "Killed"},
    "Stalled": {"Running", "Failed", "Killed"},
    "Running": {"Stalled", "Done", "Failed", "Rescheduled", "Completing", "Killed", "Received"},
    "Rescheduled": {"Waiting", "Received", "Deleted", "Failed", "Killed"},
    "Matched": {"Running", "Failed", "Rescheduled", "Killed"},
    "Waiting": {"Matched", "Rescheduled", "Deleted", "Killed"},
    "Staging": {"Checking", "Waiting", "Failed", "Killed"},
    "Scouting": {"Checking", "Failed", "Stalled", "Killed"},
    "Checking": {"Scouting", "Staging", "Waiting", "Rescheduled", "Failed", "Deleted", "Killed"},
    "Received": {"Scouting", "Checking", "Staging", "Waiting", "Failed", "Deleted", "Killed"},
    "Submitting": {"Received", "Checking", "Deleted", "Killed"},
}


def _chunks(items: Sequence, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


# The simulated DIRAC of a process answers one call at a time (its database, SQLite by default,
# writes one at a time, and an in-memory test database has no busy timeout at all); the injected
# latency, the network, is waited outside, after the answer. So calls made from several threads
# (a cycle's overlapped writes, failover/cycle/act.py) overlap their latency as they would against
# a real DIRAC, and never meet "database is locked".
_SERVING = threading.RLock()
_serving_here = threading.local()
# The Protocol's calls (failover/backends/base.py), each served under _SERVING.
SERVED = (
    "transformations", "file_counts", "tasks", "files", "jobs", "tasks_changed_since", "jobs_changed_since",
    "set_task_status", "set_file_status", "set_transformation_status",
)


def _served(method):
    @functools.wraps(method)
    def serve(self, *args, **kwargs):
        if getattr(_serving_here, "depth", 0):
            return method(self, *args, **kwargs)  # a call inside a call (a subclass's super())
        _serving_here.depth, _serving_here.owed = 1, 0.0
        try:
            with _SERVING:
                return method(self, *args, **kwargs)
        finally:
            owed = _serving_here.owed
            _serving_here.depth, _serving_here.owed = 0, 0.0
            if owed:
                time.sleep(owed)

    serve.served = True
    return serve


class SimulatedDirac:
    name = "simulated"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in SERVED:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "served", False):
                setattr(cls, name, _served(method))

    @property
    def concurrent_calls(self) -> bool:
        """Whether this simulator may be called from other threads: not while the calling thread
        holds its database in a transaction (a test's), which another thread's connection cannot see."""
        return not connections[SIM_DB].in_atomic_block

    def __init__(self, *, latency_ms: float = 0.0, faults: str | FaultPlan = ""):
        self.calls = CallCounter()
        self.latency = latency_ms / 1000.0
        plan = faults if isinstance(faults, FaultPlan) else FaultPlan.parse(faults)
        self.faults = FaultInjector(plan)

    # One simulated RPC: counted, delayed, and maybe failed. ``pages`` is how many RPCs DIRAC
    # would need for the same answer (its clients page large reads).
    def _rpc(self, method: str, pages: int = 1) -> str | None:
        self.calls.add(method, pages)
        if self.latency:
            if getattr(_serving_here, "depth", 0):
                _serving_here.owed += self.latency * pages  # waited once the answer is ready
            else:
                time.sleep(self.latency * pages)
        fault = self.faults.next_fault(method)
        if fault == "error":
            raise BackendError("simulated DIRAC error", call=method)
        if fault == "timeout":
            raise BackendTimeout("simulated timeout: no answer", call=method)
        return fault

    @staticmethod
    def _lost(method: str, fault: str | None) -> None:
        if fault == "lost":
            raise BackendTimeout("simulated timeout: the answer was lost", call=method)

    # -- reads --------------------------------------------------------------------------------
    def transformations(self, *, statuses=None, types=None, ids=None) -> list[TransformationInfo]:
        fault = self._rpc("transformations")
        qs = SimTransformation.objects.all()
        if statuses is not None:
            qs = qs.filter(status__in=list(statuses))
        if types is not None:
            qs = qs.filter(type__in=list(types))
        if ids is not None:
            qs = qs.filter(id__in=list(ids))
        rows = [
            TransformationInfo(
                id=t.id,
                name=t.name,
                type=t.type,
                status=t.status,
                group_size=t.group_size,
                production=t.production,
                parent=t.parent,
            )
            for t in qs.order_by("id")
        ]
        self._lost("transformations", fault)
        return rows

    def production_info(self, ids: Iterable[int]) -> dict[int, dict]:
        """Name and status of each production (not part of the Protocol: the productions list
        uses it where an adapter has it)."""
        fault = self._rpc("production_info")
        rows = {p.id: {"name": p.name, "status": p.status} for p in SimProduction.objects.filter(id__in=list(ids))}
        self._lost("production_info", fault)
        return rows

    def file_counts(self, ids: Iterable[int]) -> dict[int, FileCounts]:
        ids = list(ids)
        fault = self._rpc("file_counts")
        counts: dict[int, dict[str, int]] = {i: {} for i in ids}
        for chunk in _chunks(ids):
            rows = (
                SimFile.objects.filter(transformation__in=chunk)
                .values_list("transformation", "status")
                .order_by()
                .annotate(n=Count("id"))
            )
            for tid, status, n in rows:
                counts[tid][status] = n
        self._lost("file_counts", fault)
        return {tid: FileCounts(by_status) for tid, by_status in counts.items()}

    def tasks(self, ids: Iterable[int]) -> list[TaskInfo]:
        ids = list(ids)
        rows: list[TaskInfo] = []
        for chunk in _chunks(ids, 1000):
            rows.extend(
                TaskInfo(t, k, j, s)
                for t, k, j, s in SimTask.objects.filter(transformation__in=chunk)
                .order_by("transformation", "task")
                .values_list("transformation", "task", "job", "status")
                .iterator(chunk_size=20_000)
            )
        # DIRAC pages getTransformationTasks at 10000 rows.
        fault = self._rpc("tasks", pages=max(1, -(-len(rows) // CHUNK)))
        self._lost("tasks", fault)
        return rows

    def tasks_changed_since(self, ids: Iterable[int], since: datetime) -> list[TaskInfo]:
        cut = _sim_cut(since)
        ids = list(ids)
        if not ids:
            return []
        rows: list[TaskInfo] = []
        for chunk in _chunks(ids, 1000):
            rows.extend(
                TaskInfo(t, k, j, s)
                for t, k, j, s in SimTask.objects.filter(transformation__in=chunk, last_update__gte=cut)
                .order_by("transformation", "task")
                .values_list("transformation", "task", "job", "status")
            )
        rows.sort(key=lambda r: (r.transformation, r.task))
        fault = self._rpc("tasks_changed_since", pages=max(1, -(-len(rows) // CHUNK)))
        self._lost("tasks_changed_since", fault)
        return rows

    def jobs_changed_since(self, ids: Iterable[int], since: datetime) -> dict[int, JobInfo]:
        cut = _sim_cut(since)
        groups = sorted({job_group(i) for i in ids})
        if not groups:
            return {}
        # getJobs: one RPC; then getJobsStates and getJobsSites per chunk of the changed jobs.
        fault = self._rpc("jobs_changed_since")
        changed: list[int] = []
        for chunk in _chunks(groups, 1000):
            changed.extend(
                SimJob.objects.filter(job_group__in=chunk, last_update__gte=cut).values_list("id", flat=True)
            )
        self._lost("jobs_changed_since", fault)
        return self._job_states(sorted(changed), "jobs_changed_since")

    def files(self, ids: Iterable[int], *, statuses=None, lfns=None) -> list[FileInfo]:
        ids = list(ids)
        fault = self._rpc("files")
        qs = SimFile.objects.filter(transformation__in=ids)
        if statuses is not None:
            qs = qs.filter(status__in=list(statuses))
        rows: list[FileInfo] = []
        lfn_list = list(lfns) if lfns is not None else None
        for lfn_chunk in _chunks(lfn_list, 900) if lfn_list is not None else [None]:
            part = qs if lfn_chunk is None else qs.filter(lfn__in=lfn_chunk)
            rows.extend(
                FileInfo(t, lfn, s, task, e)
                for t, lfn, s, task, e in part.order_by("transformation", "lfn").values_list(
                    "transformation", "lfn", "status", "task", "error_count"
                )
            )
        self._lost("files", fault)
        return rows

    def jobs(self, job_ids: Iterable[int]) -> dict[int, JobInfo]:
        return self._job_states(sorted(set(job_ids)), "jobs")

    def _job_states(self, job_ids: list[int], method: str) -> dict[int, JobInfo]:
        result: dict[int, JobInfo] = {}
        for chunk in _chunks(job_ids):
            # The real adapter reads states and sites: two RPCs per chunk.
            fault = self._rpc(method, pages=2)
            for row in SimJob.objects.filter(id__in=chunk).values_list(
                "id", "status", "minor_status", "application_status", "site"
            ):
                result[row[0]] = JobInfo(*row)
            self._lost(method, fault)
        return result

    # -- recovery reads -----------------------------------------------------------------------
    def job_input_data(self, job_ids: Iterable[int]) -> dict[int, list[str]]:
        ids = sorted({int(j) for j in job_ids})
        # As DIRAC's getInputData with a list: every asked job is a key.
        result: dict[int, list[str]] = {j: [] for j in ids}
        for chunk in _chunks(ids):
            fault = self._rpc("job_input_data")
            for jid, lfns in SimJob.objects.filter(id__in=chunk).values_list("id", "input_data"):
                # JobDB.getInputData strips each LFN and a leading "LFN:".
                result[jid] = [_strip_lfn(lfn) for lfn in lfns or []]
            self._lost("job_input_data", fault)
        return result

    def job_output_data(self, job_ids: Iterable[int]) -> dict[int, list[str]]:
        ids = sorted({int(j) for j in job_ids})
        result: dict[int, list[str]] = {}
        for chunk in _chunks(ids):
            fault = self._rpc("job_output_data")
            for jid, lfns in SimJob.objects.filter(id__in=chunk, output_data__isnull=False).values_list(
                "id", "output_data"
            ):
                result[jid] = list(lfns)
            self._lost("job_output_data", fault)
        return result

    def catalogue_available(self) -> bool:
        # Local knowledge, no simulated RPC: whether the loaded scenario described a catalogue.
        return SimState.objects.filter(key="catalog_known").exists()

    def _require_catalogue(self, method: str) -> None:
        if not self.catalogue_available():
            raise BackendError(
                "no file catalogue is known (the scenario has no catalog)", call=method, retriable=False
            )

    def catalogue_exists(self, lfns: Iterable[str]) -> dict[str, bool]:
        wanted = list(dict.fromkeys(lfns))
        self._require_catalogue("catalogue_exists")
        result: dict[str, bool] = {}
        for chunk in _chunks(wanted, CATALOGUE_CHUNK):
            fault = self._rpc("catalogue_exists")
            present = set(SimCatalogFile.objects.filter(lfn__in=chunk).values_list("lfn", flat=True))
            result.update((lfn, lfn in present) for lfn in chunk)
            self._lost("catalogue_exists", fault)
        return result

    def catalogue_files_by_job(self, job_ids: Iterable[int]) -> dict[int, list[str]]:
        ids = sorted({int(j) for j in job_ids})
        self._require_catalogue("catalogue_files_by_job")
        result: dict[int, list[str]] = {}
        for chunk in _chunks(ids, 1000):
            fault = self._rpc("catalogue_files_by_job")
            rows = SimCatalogFile.objects.filter(job__in=[str(j) for j in chunk]).values_list("job", "lfn")
            for job, lfn in rows:
                result.setdefault(int(job), []).append(lfn)
            self._lost("catalogue_files_by_job", fault)
        return {j: sorted(lfns) for j, lfns in sorted(result.items())}

    def job_requests(self, job_ids: Iterable[int]) -> dict[int, str]:
        ids = sorted({int(j) for j in job_ids})
        result: dict[int, str] = {}
        for chunk in _chunks(ids, REQUEST_CHUNK):
            # getRequestIDsForJobs, then getBulkRequestStatus when any job has a request.
            fault = self._rpc("job_requests")
            found = dict(SimRequest.objects.filter(job__in=chunk).values_list("job", "status"))
            if found:
                self._rpc("job_requests")
            result.update(found)
            self._lost("job_requests", fault)
        return dict(sorted(result.items()))

    # -- writes -------------------------------------------------------------------------------
    def _require(self, method: str, transformation: int) -> SimTransformation:
        try:
            return SimTransformation.objects.get(id=transformation)
        except SimTransformation.DoesNotExist:
            raise BackendError(
                f"Transformation {transformation} does not exist", call=method, retriable=False
            ) from None

    def set_task_status(self, transformation: int, task_ids: Sequence[int], status: str) -> None:
        fault = self._rpc("set_task_status")
        self._require("set_task_status", transformation)
        task_ids = list(task_ids)
        with transaction.atomic(using=SIM_DB):
            for chunk in _chunks(task_ids, 900):
                # DIRAC's setTaskStatus moves LastUpdateTime of every task it is given, even when
                # the status is the same (TransformationDB's task parameter update).
                SimTask.objects.filter(transformation=transformation, task__in=chunk).update(
                    status=status, last_update=dirac_now()
                )
        self._lost("set_task_status", fault)

    def set_file_status(
        self,
        transformation: int,
        statuses: Mapping[str, str] | Sequence[str],
        status: str | None = None,
        *,
        force: bool = False,
    ) -> Mapping[str, str]:
        wanted = file_statuses(statuses, status)
        lfns = list(wanted)
        # DIRAC's client reads the current rows in chunks of 1000 LFNs, then writes once.
        fault = self._rpc("set_file_status", pages=-(-len(lfns) // 1000) + 1 if lfns else 1)
        # As in DIRAC, an unknown transformation has no such files: nothing is written, no error.
        written: dict[str, str] = {}
        with transaction.atomic(using=SIM_DB):
            rows = []
            for chunk in _chunks(lfns, 900):
                rows.extend(
                    SimFile.objects.select_for_update().filter(transformation=transformation, lfn__in=chunk)
                )
            by_new: dict[tuple[str, bool], list[int]] = defaultdict(list)
            for row in rows:
                new = wanted[row.lfn] if force else _dirac_file_rule(row.status, wanted[row.lfn], row.error_count)
                if new == row.status:
                    continue  # unchanged statuses are silently dropped
                leaves_assigned = row.status == ASSIGNED and new != PROCESSED
                by_new[(new, leaves_assigned)].append(row.pk)
                written[row.lfn] = new
            for (new, bump), pks in by_new.items():
                for chunk in _chunks(pks, 900):
                    qs = SimFile.objects.filter(pk__in=chunk)
                    if bump:
                        qs.update(status=new, error_count=F("error_count") + 1)
                    else:
                        qs.update(status=new)
        self._lost("set_file_status", fault)
        return written

    def set_job_status(
        self, job_ids: Iterable[int], status: str, *, minor_status: str, force: bool = True
    ) -> None:
        ids = list(dict.fromkeys(int(j) for j in job_ids))
        failed: list[int] = []
        last_fault = None
        for jid in ids:
            # One JobStateUpdate setJobStatus per job, as DIRAC has no bulk form.
            fault = self._rpc("set_job_status")
            with transaction.atomic(using=SIM_DB):
                job = SimJob.objects.select_for_update().filter(id=jid).first()
                if job is None:
                    failed.append(jid)
                    continue
                current = "Running" if job.status == "Stalled" else job.status
                if force or status == current or status in JOB_TRANSITIONS.get(current, set()):
                    job.status = status
                job.minor_status = minor_status or job.minor_status
                job.last_update = dirac_now()
                job.save(update_fields=["status", "minor_status", "last_update"])
            last_fault = fault or last_fault
        if failed:
            raise BackendError(
                "No Matching Job: " + ", ".join(str(j) for j in failed), call="set_job_status", retriable=False
            )
        self._lost("set_job_status", last_fault)

    def remove_catalogue_files(self, lfns: Iterable[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(lfns))
        self._require_catalogue("remove_catalogue_files")
        result: dict[str, str] = {}
        last_fault = None
        for chunk in _chunks(wanted, CATALOGUE_CHUNK):
            fault = self._rpc("remove_catalogue_files")
            # As DIRAC's catalogue: an LFN already absent counts as removed.
            SimCatalogFile.objects.filter(lfn__in=chunk).delete()
            result.update(dict.fromkeys(chunk, ""))
            last_fault = fault or last_fault
        self._lost("remove_catalogue_files", last_fault)
        return result

    def set_transformation_status(self, transformation: int, status: str, *, expected: str) -> None:
        fault = self._rpc("set_transformation_status")
        with transaction.atomic(using=SIM_DB):
            row = self._require("set_transformation_status", transformation)
            if row.status != expected:
                raise BackendError(
                    f"transformation {transformation} status is {row.status}, not {expected}",
                    call="set_transformation_status",
                    retriable=False,
                )
            if status != row.status:
                row.status = status
                row.save(update_fields=["status", "last_update"])
        self._lost("set_transformation_status", fault)


for _name in SERVED:
    setattr(SimulatedDirac, _name, _served(getattr(SimulatedDirac, _name)))


def _strip_lfn(lfn: str) -> str:
    lfn = lfn.strip()
    return lfn[4:] if lfn.lower().startswith("lfn:") else lfn


def _sim_cut(since: datetime) -> datetime:
    """The cut as DIRAC compares it (whole UTC seconds), aware for the simulator's database."""
    return dirac_cut(since).replace(tzinfo=UTC)


def _dirac_file_rule(current: str, proposed: str, error_count: int) -> str:
    """What DIRAC's setFileStatusForTransformation writes when not forced (reference 1.2)."""
    if current == PROCESSED:
        return PROCESSED
    if current == MAX_RESET and proposed == UNUSED:
        return MAX_RESET
    if proposed == UNUSED and error_count and error_count % FILES_MAX_RESET_COUNTER == 0:
        return MAX_RESET
    return proposed

