"""Read: what a cycle needs from DIRAC, in a few batched calls, into plain values.

``Reading.read_selection`` reads the transformations to treat, their parents and every file count
(a ``Selection``); ``Reading.read_batch`` refreshes one batch's mirror (``failover/mirror.py``: a
full read the first time and at each resync, otherwise only what changed), then reads Assigned files
and the reassign counters' totals (a ``BatchInputs``). The rules (``failover/rules.py``) plan from the mirror's
tasks and jobs, read one transformation at a time.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from failover import mirror, rules
from failover.domain import (
    ASSIGNED,
    DONE_TASK_STATUSES,
    FAILED_TASK_STATUSES,
    FileCounts,
    FileInfo,
    JobInfo,
    TaskInfo,
    TransformationInfo,
)
from failover.errors import BackendError, FailoverError, UnknownTransformation
from failover.models import ActionLog, MirrorJob, MirrorState, MirrorTask, ReassignCounter

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
class Carried:
    """What a fanned-out cycle's start read for one of its groups (failover/cycles.py): the
    group's part of the selection and of the cycle's delta read, which the start wrote to the
    mirror already. A group given it reads neither again; one without it (a message put back on
    the queue, a delta read that failed) reads for itself. Travels in the group's message as JSON."""

    selection: Selection
    delta: mirror.Delta | None = None

    def as_message(self) -> dict:
        sel, delta = self.selection, self.delta
        return {
            "selected": [t.id for t in sel.selected],
            "known": [list(astuple(t)) for t in sel.known.values()],
            "counts": {str(tid): c.by_status for tid, c in sel.counts.items()},
            "delta": None if delta is None else {
                "started": delta.started.isoformat(), "ids": sorted(delta.ids), "touched": sorted(delta.touched)},
        }

    @classmethod
    def from_message(cls, message: dict) -> Carried:
        known = {int(row[0]): TransformationInfo(*row) for row in message["known"]}
        counts = {int(tid): FileCounts(dict(by_status)) for tid, by_status in message["counts"].items()}
        selection = Selection([known[int(i)] for i in message["selected"]], known, counts)
        d = message.get("delta")
        delta = None if d is None else mirror.Delta(
            started=datetime.fromisoformat(d["started"]), ids={int(i) for i in d["ids"]},
            touched={int(i) for i in d["touched"]})
        return cls(selection, delta)

    def part(self, ids: Sequence[int]) -> Carried:
        """The part of a whole cycle's reads that one group needs: its transformations, their
        parents, their file counts, and its share of the delta read."""
        sel, wanted = self.selection, set(ids)
        selected = [t for t in sel.selected if t.id in wanted]
        keep = wanted | {p for t in selected if (p := rules.parent_of(t)) is not None}
        known = {i: t for i, t in sel.known.items() if i in keep}
        counts = {i: c for i, c in sel.counts.items() if i in keep}
        delta = None if self.delta is None else mirror.Delta(
            self.delta.started, self.delta.ids & wanted, self.delta.touched & wanted)
        return Carried(Selection(selected, known, counts), delta)


@dataclass
class BatchInputs:
    """One batch's inputs: its mirror refreshed (tasks and jobs are read from it, one
    transformation at a time), Assigned files where a rule looks at them, and the counters."""

    refresh: mirror.Refresh = field(default_factory=mirror.Refresh)
    # The mirror's state of each transformation, after the refresh.
    states: dict[int, MirrorState] = field(default_factory=dict)
    assigned: dict[int, list[FileInfo]] = field(default_factory=dict)
    # The transformations whose Assigned files were read (or tried).
    assigned_read: set[int] = field(default_factory=set)
    # Why the Assigned files could not be read (the batch goes on without them), or "".
    assigned_error: str = ""
    # Per transformation, (how many files have a reassign counter, the counters' sum): what the
    # quiet check needs of them, from one GROUP BY (a planned transformation reads its own counters).
    counter_totals: dict[int, tuple[int, int]] = field(default_factory=dict)
    # Per transformation, the failed tasks whose job registered outputs (None: no catalogue).
    registered: dict[int, set[int]] | None = None
    # Why the catalogue could not be read (reassign then waits for the failed tasks), or "".
    registered_error: str = ""

    def registered_of(self, transformation_id: int) -> set[int] | None:
        return None if self.registered is None else self.registered.get(transformation_id, set())
    # Transformations with an action still pending (reconciled at their turn).
    pending: set[int] = field(default_factory=set)

    def tasks_of(self, transformation_id: int) -> list[TaskInfo]:
        return mirror.tasks_of(transformation_id)

    def jobs_of(self, transformation_id: int) -> dict[int, JobInfo]:
        return mirror.jobs_of(transformation_id)


def counter_totals(ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """(files with a reassign counter, the counters' sum) per transformation, one GROUP BY per
    chunk: the quiet check's part of the counters, without reading a counter row."""
    out: dict[int, tuple[int, int]] = {}
    for chunk in mirror.chunks(sorted(set(ids))):
        for tid, n, total in (ReassignCounter.objects.filter(transformation_id__in=chunk)
                              .values_list("transformation_id").annotate(n=Count("lfn"), total=Sum("count"))
                              .values_list("transformation_id", "n", "total").order_by()):
            out[tid] = (n, total or 0)
    return out


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
        return self._complete_selection(selected, prefetched)

    def _complete_selection(self, selected: Sequence[TransformationInfo],
                            prefetched: dict[int, TransformationInfo] | None = None) -> Selection:
        """The selection of ``selected``: their parents not read yet (one call) and every file
        count (one call)."""
        known: dict[int, TransformationInfo] = {t.id: t for t in selected}
        known.update({i: t for i, t in (prefetched or {}).items() if i not in known})
        parent_ids = {rules.parent_of(t) for t in selected} - {None} - known.keys()
        if parent_ids:
            for p in self._retrying(self.backend.transformations, ids=sorted(parent_ids)):
                known[p.id] = p
        counts = self._retrying(self.backend.file_counts, sorted(known))
        return Selection(topological(selected), known, counts)

    def carry(self, selected: Sequence[TransformationInfo]) -> Carried:
        """What a fanned-out cycle's start reads once for all its groups (``Carried``): the rest
        of the selection of ``selected`` and the delta read of all of them, written to the
        mirror now. So the groups together make the calls of a one-task cycle, not a set each."""
        selection = self._complete_selection(selected)
        return Carried(selection, self.read_deltas([t.id for t in selection.selected]))

    def read_batch(self, batch: Sequence[TransformationInfo], selection: Selection | None = None, *,
                   full: bool = False, replan: Callable[[TransformationInfo, BatchInputs], bool] | None = None,
                   delta: mirror.Delta | None = None) -> BatchInputs:
        """Refresh the batch's mirror from DIRAC, then read Assigned files (only where a rule
        looks at them, of the transformations ``replan`` says will be planned) and the counters' totals.

        A transformation without a mirror is read in full; one due for a resync (``full``, or
        its last full read older than FAILOVER_RESYNC_HOURS) too, and the drift is counted; the
        others read what changed since their last read's start (less the margin), unless the cycle's
        ``delta`` (``read_deltas``) read them already. Raises
        ``FailoverError`` when the tasks or jobs cannot be read (the mirror is then left as it
        was); a failed read of Assigned files is kept in ``assigned_error``."""
        ids = [t.id for t in batch]
        inputs = BatchInputs(assigned=defaultdict(list))
        inputs.refresh = self.refresh_mirror(ids, selection.counts if selection else {}, full=full, delta=delta)
        inputs.states = mirror.states(ids)
        inputs.pending = set(
            ActionLog.objects.filter(transformation_id__in=ids, state=ActionLog.State.PENDING)
            .values_list("transformation_id", flat=True)
        )
        inputs.counter_totals = counter_totals(ids)
        self.read_assigned(inputs, [t for t in batch if replan is None or replan(t, inputs)])
        return inputs

    def read_assigned(self, inputs: BatchInputs, batch: Sequence[TransformationInfo]) -> None:
        """Read, in one call, the Assigned files of those of ``batch`` whose rules look at them."""
        todo = [t for t in batch if t.id not in inputs.assigned_read]
        inputs.assigned_read.update(t.id for t in todo)
        flags = mirror.synced_flags([t.id for t in todo], FAILED_TASK_STATUSES, DONE_TASK_STATUSES)
        need = [t.id for t in todo if needs_assigned_files(t, self.rules_policy, flags.get(t.id, (False, False)))]
        if need:
            try:
                for f in self._retrying(self.backend.files, need, statuses=[ASSIGNED]):
                    inputs.assigned[f.transformation].append(f)
            except FailoverError as exc:
                inputs.assigned_error = f"reading Assigned files failed: {exc}"
        self._read_registered(todo, inputs)

    def _read_registered(self, batch: Sequence[TransformationInfo], inputs: BatchInputs) -> None:
        """Which failed tasks with Assigned files have a job whose outputs are registered
        (rules.decide_reassign leaves those to recovery). Only when a catalogue is configured."""
        from failover import recovery
        from failover.domain import FAILED_TASK_STATUSES
        from failover.models import RecoveryPolicy

        batch = [t for t in batch if t.type in self.rules_policy.reassign_types and inputs.assigned.get(t.id)]
        if not batch or not self.backend.catalogue_available():
            return
        candidates: dict[int, dict[int, int]] = {}  # transformation -> {job: task}
        for t in batch:
            tasks, t_jobs = inputs.tasks_of(t.id), inputs.jobs_of(t.id)
            jobs = {task.job: task.status for task in tasks if task.job}
            synced = {task.task: t_jobs[task.job].status if task.job in t_jobs else task.status for task in tasks}
            with_files = {f.task for f in inputs.assigned[t.id] if f.task is not None}
            failed = {task.job: task.task for task in tasks
                      if task.job in jobs and task.task in with_files and synced[task.task] in FAILED_TASK_STATUSES}
            if failed:
                candidates[t.id] = failed
        if not candidates:
            return
        source = RecoveryPolicy.current().output_source
        job_ids = sorted({j for failed in candidates.values() for j in failed})
        if inputs.registered is None:
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
            inputs.registered.update({tid: set(failed.values()) for tid, failed in candidates.items()})
            return
        for tid, failed in candidates.items():
            inputs.registered[tid] = {
                task for job, task in failed.items()
                if (out := recovery.choose_outputs(source, job, pod, existence, by_job)) is not None and out.all_exist
            }

    def read_deltas(self, ids: Sequence[int], *, full: bool = False) -> mirror.Delta | None:
        """One delta read for all of ``ids`` that have a mirror and are not due for a resync (the
        whole selection of a cycle, ahead of its batches), written to the mirror at once: a cycle's
        delta reads cost the same few calls however many batches it has. Their rows are let go
        once written (the read holds what changed, not what exists). The batches then read only
        what is due in full (``refresh_mirror`` with ``delta``). None with ``full`` or nothing to read."""
        if full or not ids:
            return None
        states = mirror.states(ids)
        started = timezone.now()  # the next read's cut, taken before this one starts
        resync_after = timedelta(hours=settings.FAILOVER_RESYNC_HOURS)
        due = [i for i in ids if i in states and started - states[i].last_full < resync_after]
        if not due:
            return None
        delta = mirror.Delta(started=started, ids=set(due))
        margin = timedelta(seconds=settings.FAILOVER_MIRROR_MARGIN_SECONDS)
        tasks, jobs = self._read_delta([(i, states[i].cut - margin) for i in due], margin)
        with transaction.atomic():
            delta.touched = self._write_delta(tasks, jobs, started, {})
            for chunk in mirror.chunks(sorted(due)):
                MirrorState.objects.filter(transformation_id__in=chunk).update(cut=started)
            # Those whose rows changed are not quiet until a plan says so again, whoever plans
            # them: this cycle's batches, or the group of a fanned-out cycle given this read.
            for chunk in mirror.chunks(sorted(delta.touched)):
                MirrorState.objects.filter(transformation_id__in=chunk).update(quiet=False)
        return delta

    def _read_delta(self, cuts: Sequence[tuple[int, datetime]], margin: timedelta
                    ) -> tuple[list[TaskInfo], dict[int, JobInfo]]:
        """The tasks and the jobs changed since each transformation's cut: one pair of reads per
        group of close cuts (``_by_cut``)."""
        tasks: list[TaskInfo] = []
        jobs: dict[int, JobInfo] = {}
        for since, group in _by_cut(cuts, margin):
            tasks.extend(self._retrying(self.backend.tasks_changed_since, group, since))
            jobs.update(self._retrying(self.backend.jobs_changed_since, group, since))
        return tasks, jobs

    def _write_delta(self, delta_tasks: Sequence[TaskInfo], delta_jobs: dict[int, JobInfo], started: datetime,
                     full_jobs: dict[int, JobInfo]) -> set[int]:
        """Upsert a delta read into the mirror (in the caller's transaction); the transformations
        whose rows really changed."""
        touched = mirror.upsert_tasks(delta_tasks, started)
        owner = {t.job: t.transformation for t in delta_tasks if t.job}
        touched |= mirror.upsert_jobs(delta_jobs, started, owner)
        # Jobs the changed tasks name that neither the mirror nor the delta has (a job made
        # just before the cut, a task given another job): read them once.
        named = sorted({t.job for t in delta_tasks if t.job and t.job not in delta_jobs and t.job not in full_jobs})
        known_jobs = set()
        for chunk in mirror.chunks(named):
            known_jobs.update(MirrorJob.objects.filter(job_id__in=chunk).values_list("job_id", flat=True))
        missing = [j for j in named if j not in known_jobs]
        if missing:
            touched |= mirror.upsert_jobs(self._retrying(self.backend.jobs, missing), started, owner)
        return touched

    def _fill(self, group: Sequence[int], started: datetime, sizes: dict[int, tuple[int, int]],
              refresh: mirror.Refresh) -> None:
        """A full read of transformations without a mirror state, written at once: as read where
        nothing of it is left in the mirror, else made what the read showed (``mirror.replace``,
        no drift counted: the state was lost, not the rows' truth)."""
        full_tasks: dict[int, list[TaskInfo]] = defaultdict(list)
        for task in self._retrying(self.backend.tasks, group):
            full_tasks[task.transformation].append(task)
        job_ids = [task.job for tasks in full_tasks.values() for task in tasks if task.job]
        full_jobs = self._retrying(self.backend.jobs, job_ids) if job_ids else {}
        del job_ids
        with transaction.atomic():
            leftover = set()
            for chunk in mirror.chunks(list(group)):
                leftover.update(MirrorTask.objects.filter(transformation_id__in=chunk).values_list(
                    "transformation_id", flat=True).distinct())
                leftover.update(MirrorJob.objects.filter(transformation_id__in=chunk).values_list(
                    "transformation_id", flat=True).distinct())
            for tid in group:
                if tid not in leftover:
                    sizes[tid] = mirror.fill(tid, full_tasks.get(tid, []), full_jobs, started)
                    refresh.touched.add(tid)
                else:
                    changed, _, sizes[tid] = mirror.replace(tid, full_tasks.get(tid, []), full_jobs, started)
                    if changed:
                        refresh.touched.add(tid)
                refresh.full.add(tid)

    def refresh_mirror(self, ids: Sequence[int], counts: dict[int, FileCounts], *, full: bool = False,
                       delta: mirror.Delta | None = None) -> mirror.Refresh:
        """Bring the mirror of ``ids`` up to date with DIRAC (see ``failover/mirror.py``).

        ``delta``: the cycle's delta read already made (``read_deltas``) for some of them: those
        are neither read again nor resynced here, and keep that read's cut."""
        refresh = mirror.Refresh()
        if not ids:
            return refresh
        states = mirror.states(ids)
        started = timezone.now()  # the next read's cut, taken before this one starts
        read_before = delta.ids if delta is not None else set()
        if delta is not None:
            refresh.touched |= delta.touched & set(ids)
        resync_after = timedelta(hours=settings.FAILOVER_RESYNC_HOURS)
        sizes: dict[int, tuple[int, int]] = {}
        fill = [i for i in ids if i not in states]
        # First fills, group by group (no delta to wait for: a transformation without a mirror has
        # no cut); each group's rows are let go once written.
        for group in _by_files(fill, counts, settings.FAILOVER_FILL_FILES):
            self._fill(group, started, sizes, refresh)
        resync = [i for i in ids if i in states and i not in read_before
                  and (full or started - states[i].last_full >= resync_after)]
        margin = timedelta(seconds=settings.FAILOVER_MIRROR_MARGIN_SECONDS)
        whole = resync
        full_tasks: dict[int, list[TaskInfo]] = defaultdict(list)
        full_jobs: dict[int, JobInfo] = {}
        if whole:
            for task in self._retrying(self.backend.tasks, whole):
                full_tasks[task.transformation].append(task)
            job_ids = [task.job for tasks in full_tasks.values() for task in tasks if task.job]
            full_jobs = self._retrying(self.backend.jobs, job_ids) if job_ids else {}
        # The delta read (after the full one: what changed meanwhile is newer than it).
        delta_tasks, delta_jobs = self._read_delta(
            [(i, states[i].cut - margin) for i in ids if i in states and i not in read_before], margin)
        with transaction.atomic():
            refresh.touched |= self._write_delta(delta_tasks, delta_jobs, started, full_jobs)
            skip_tasks: dict[int, set[int]] = defaultdict(set)
            for t in delta_tasks:
                skip_tasks[t.transformation].add(t.task)
            for tid in whole:
                changed, drift, sizes[tid] = mirror.replace(
                    tid, full_tasks.get(tid, []), full_jobs, started, skip_tasks=skip_tasks.get(tid, ()),
                    skip_jobs=delta_jobs.keys(), resync=tid in states,
                )
                refresh.full.add(tid)
                if changed:
                    refresh.touched.add(tid)
                if drift is not None:
                    refresh.resynced.add(tid)
                    if drift.rows:
                        refresh.drift[tid] = drift
            # One statement moves every cut read here (the cycle's delta read moved its own); a row
            # of its own only where more than the cut changed.
            for chunk in mirror.chunks([i for i in ids if i in states and i not in read_before]):
                MirrorState.objects.filter(transformation_id__in=chunk).update(cut=started)
            existing: list[tuple[int, dict]] = []
            for tid in ids:
                fields = {"file_counts": counts[tid].by_status if tid in counts else {}}
                if tid in states and states[tid].file_counts == fields["file_counts"] and not (
                        tid in refresh.full or tid in refresh.touched):
                    continue
                fields["cut"] = delta.started if tid in read_before else started
                if tid in refresh.touched:
                    # Its tasks or jobs moved: not quiet until a plan says so again (written after
                    # the batch's turns, Engine._record_treated; a cycle that dies before that
                    # leaves it to be planned next time, never skipped on its old plan).
                    fields["quiet"] = False
                if tid in refresh.full:
                    fields["last_full"] = started
                if tid in refresh.drift or tid in refresh.resynced:
                    fields["drift"] = refresh.drift[tid].as_dict() if tid in refresh.drift else {}
                    fields["drift_at"] = started
                    fields["resync_cycle"] = self.cycle.pk if getattr(self, "cycle", None) is not None else None
                if tid in sizes:
                    fields["tasks"], fields["jobs"] = sizes[tid]
                if tid in states:
                    # Written below with the others that change the same fields: one UPDATE.
                    existing.append((tid, fields))
                else:
                    MirrorState.objects.update_or_create(transformation_id=tid, defaults=fields)
            mirror.write_states(existing)
        for tid, drift in sorted(refresh.drift.items()):
            log.warning("mirror of transformation %s drifted from DIRAC: %d rows added, %d changed, %d removed; "
                        "repaired", tid, drift.added, drift.changed, drift.removed)
        return refresh


def needs_assigned_files(t: TransformationInfo, policy: rules.RulesPolicy, flags: tuple[bool, bool]) -> bool:
    """``rules.needs_assigned_files`` from the mirror's ``synced_flags`` (a failed task, a done
    task once job statuses are copied), without reading a task."""
    failed, done = flags
    return (t.type in policy.reassign_types and failed) or done


def _by_files(ids: Sequence[int], counts: dict[int, FileCounts], limit: int) -> list[list[int]]:
    """``ids`` in order, in groups of about ``limit`` files by their file counts (a transformation
    with more is a group of its own; one without counts counts as one file)."""
    groups: list[list[int]] = []
    size = 0
    for tid in ids:
        n = max(1, counts[tid].total) if tid in counts else 1
        if groups and size + n <= limit:
            groups[-1].append(tid)
            size += n
        else:
            groups.append([tid])
            size = n
    return groups


def _by_cut(cuts: Sequence[tuple[int, datetime]], margin: timedelta) -> list[tuple[datetime, list[int]]]:
    """Transformations grouped into delta reads: one read per group, from its oldest cut; a
    transformation whose cut is far older than the others' (not selected for a while) gets its
    own read rather than making the whole batch read its long history."""
    groups: list[tuple[datetime, list[int]]] = []
    for tid, cut in sorted(cuts, key=lambda c: (c[1], c[0])):
        if groups and cut - groups[-1][0] <= max(margin, timedelta(seconds=60)):
            groups[-1][1].append(tid)
        else:
            groups.append((cut, [tid]))
    return groups


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
