"""Read: what a cycle needs from DIRAC, in a few batched calls, into plain values.

``Reading.read_selection`` reads the transformations to treat, their parents and every file count
(a ``Selection``); ``Reading.read_batch`` reads one batch's tasks, jobs, Assigned files and reassign
counters (a ``BatchInputs``). The rules (``failover/rules.py``) plan from these values alone.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from failover import rules
from failover.domain import ASSIGNED, FileCounts, FileInfo, JobInfo, TaskInfo, TransformationInfo
from failover.errors import BackendError, FailoverError, UnknownTransformation
from failover.models import ReassignCounter

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Selection:
    """The transformations to treat, parents first, and what is known of every one read."""

    selected: list[TransformationInfo]
    # Selected, their parents and the ones read along: a child's parent after the parent's turn.
    known: dict[int, TransformationInfo] = field(default_factory=dict)
    counts: dict[int, FileCounts] = field(default_factory=dict)


@dataclass
class BatchInputs:
    """One batch's inputs, read in one call each."""

    tasks: dict[int, list[TaskInfo]] = field(default_factory=dict)
    jobs: dict[int, JobInfo] = field(default_factory=dict)
    assigned: dict[int, list[FileInfo]] = field(default_factory=dict)
    # Why the Assigned files could not be read (the batch goes on without them), or "".
    assigned_error: str = ""
    counters: dict[int, dict[str, int]] = field(default_factory=dict)
    # Per transformation, the failed tasks whose job registered outputs (None: no catalogue).
    registered: dict[int, set[int]] | None = None
    # Why the catalogue could not be read (reassign then waits for the failed tasks), or "".
    registered_error: str = ""

    def registered_of(self, transformation_id: int) -> set[int] | None:
        return None if self.registered is None else self.registered.get(transformation_id, set())

    def tasks_of(self, transformation_id: int) -> list[TaskInfo]:
        return self.tasks.get(transformation_id, [])

    def jobs_of(self, transformation_id: int) -> dict[int, JobInfo]:
        return {task.job: self.jobs[task.job] for task in self.tasks_of(transformation_id) if task.job in self.jobs}


def policy_selects(policy, t: TransformationInfo) -> bool:
    return (not policy.transformation_statuses or t.status in policy.transformation_statuses) and (
        not policy.transformation_types or t.type in policy.transformation_types
    )


def read_counters(ids: Sequence[int]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = defaultdict(dict)
    for tid, lfn, n in ReassignCounter.objects.filter(transformation_id__in=ids).values_list(
        "transformation_id", "lfn", "count"
    ):
        out[tid][lfn] = n
    return out


class Reading:
    """The engine's reads (a mixin: it uses the engine's backend, policy and retry settings)."""

    def _retrying(self, fn: Callable[..., T], *args, what: str = "read", **kwargs) -> T:
        """A call that is safe to repeat (a read, or setting task statuses), retried with
        exponential backoff. Other writes are never repeated blindly: they are reconciled."""
        attempt = 0
        while True:
            try:
                return fn(*args, **kwargs)
            except BackendError as exc:
                if not exc.retriable or attempt >= self.retries or self.circuit.is_open:
                    raise
                pause = self.backoff * (2**attempt)
                log.warning("DIRAC %s failed (%s); retry %d in %.1f s", what, exc, attempt + 1, pause)
                time.sleep(pause)
                attempt += 1

    def select(self) -> list[TransformationInfo]:
        """The transformations the policy selects now (one call)."""
        p = self.policy
        return self._retrying(
            self.backend.transformations,
            statuses=p.transformation_statuses or None,
            types=p.transformation_types or None,
        )

    def read_selection(self, ids: Sequence[int] | None, also_read: Sequence[int] = ()) -> Selection:
        """``ids`` (default: the policy's selection) with ``also_read`` in the same call, then the
        parents not read yet, then every file count: three calls at most."""
        prefetched: dict[int, TransformationInfo] = {}
        if ids:
            found = self._retrying(self.backend.transformations, ids=[*ids, *also_read])
            prefetched = {t.id: t for t in found if t.id not in ids}
            selected = [t for t in found if t.id in ids]
            missing = set(ids) - {t.id for t in selected}
            if missing:
                raise UnknownTransformation(", ".join(str(i) for i in sorted(missing)))
        else:
            selected = self.select()
        known: dict[int, TransformationInfo] = {t.id: t for t in selected}
        known.update({i: t for i, t in prefetched.items() if i not in known})
        parent_ids = {rules.parent_of(t) for t in selected} - {None} - known.keys()
        if parent_ids:
            for p in self._retrying(self.backend.transformations, ids=sorted(parent_ids)):
                known[p.id] = p
        counts = self._retrying(self.backend.file_counts, sorted(known))
        return Selection(topological(selected), known, counts)

    def read_batch(self, batch: Sequence[TransformationInfo]) -> BatchInputs:
        """Tasks, jobs, Assigned files (only where a rule looks at them) and counters of a batch.

        Raises ``FailoverError`` when the tasks or jobs cannot be read; a failed read of Assigned
        files is kept in ``assigned_error`` and the batch goes on without them."""
        tasks = self._retrying(self.backend.tasks, [t.id for t in batch])
        inputs = BatchInputs(tasks=defaultdict(list), assigned=defaultdict(list))
        for task in tasks:
            inputs.tasks[task.transformation].append(task)
        job_ids = [task.job for task in tasks if task.job]
        inputs.jobs = self._retrying(self.backend.jobs, job_ids) if job_ids else {}
        need = [
            t.id for t in batch
            if rules.needs_assigned_files(t, inputs.tasks_of(t.id), inputs.jobs, self.rules_policy)
        ]
        if need:
            try:
                for f in self._retrying(self.backend.files, need, statuses=[ASSIGNED]):
                    inputs.assigned[f.transformation].append(f)
            except FailoverError as exc:
                inputs.assigned_error = f"reading Assigned files failed: {exc}"
        inputs.counters = read_counters([t.id for t in batch])
        self._read_registered(batch, inputs)
        return inputs

    def _read_registered(self, batch: Sequence[TransformationInfo], inputs: BatchInputs) -> None:
        """Which failed tasks with Assigned files have a job whose outputs are registered
        (rules.decide_reassign leaves those to recovery). Only when a catalogue is configured."""
        from failover import recovery
        from failover.domain import FAILED_TASK_STATUSES
        from failover.models import RecoveryPolicy

        candidates: dict[int, dict[int, int]] = {}  # transformation -> {job: task}
        for t in batch:
            if t.type not in self.rules_policy.reassign_types or not inputs.assigned.get(t.id):
                continue
            jobs = {task.job: task.status for task in inputs.tasks_of(t.id) if task.job}
            synced = {task.task: inputs.jobs[task.job].status if task.job in inputs.jobs else task.status
                      for task in inputs.tasks_of(t.id)}
            with_files = {f.task for f in inputs.assigned[t.id] if f.task is not None}
            failed = {task.job: task.task for task in inputs.tasks_of(t.id)
                      if task.job in jobs and task.task in with_files and synced[task.task] in FAILED_TASK_STATUSES}
            if failed:
                candidates[t.id] = failed
        if not candidates or not self.backend.catalogue_available():
            return
        source = RecoveryPolicy.current().output_source
        job_ids = sorted({j for failed in candidates.values() for j in failed})
        inputs.registered = {}
        try:
            pod = (self._retrying(self.backend.job_output_data, job_ids)
                   if source != recovery.SOURCE_METADATA else {})
            by_job = (self._retrying(self.backend.catalogue_files_by_job, job_ids)
                      if source != recovery.SOURCE_PRODUCTION_OUTPUT_DATA else None)
            lfns = sorted({lfn for j in job_ids for lfn in pod.get(j, ())})
            existence = self._retrying(self.backend.catalogue_exists, lfns) if lfns else {}
        except FailoverError as exc:
            # Unknown whether they registered outputs: reassign waits rather than risk processing twice.
            inputs.registered_error = f"reading the catalogue failed (reassign waits for the failed tasks): {exc}"
            inputs.registered = {tid: set(failed.values()) for tid, failed in candidates.items()}
            return
        for tid, failed in candidates.items():
            inputs.registered[tid] = {
                task for job, task in failed.items()
                if (out := recovery.choose_outputs(source, job, pod, existence, by_job)) is not None and out.all_exist
            }


def topological(transformations: Sequence[TransformationInfo]) -> list[TransformationInfo]:
    """Parents before children, otherwise by id."""
    by_id = {t.id: t for t in transformations}
    depth: dict[int, int] = {}

    def level(t: TransformationInfo) -> int:
        if t.id in depth:
            return depth[t.id]
        depth[t.id] = 0  # guards against a cycle in bad data
        parent = rules.parent_of(t)
        depth[t.id] = level(by_id[parent]) + 1 if parent in by_id else 0
        return depth[t.id]

    return sorted(transformations, key=lambda t: (level(t), t.id))
