"""The mirror: each transformation's tasks and jobs as DIRAC last showed them, in our database.

A cycle refreshes it (``failover/cycle/read.py``) and the rules, the overview's counters and the
report's aggregates are computed from it, with ``GROUP BY`` in the database:

- the first read of a transformation (or one whose mirror is gone) is a full read: its tasks,
  then the jobs of those tasks, written to ``MirrorTask`` / ``MirrorJob`` in chunks;
- after that, a delta read: the tasks and the jobs changed since the previous read's start, less
  ``FAILOVER_MIRROR_MARGIN_SECONDS`` (clock skew between us and DIRAC's database server; the cut is
  also taken down to DIRAC's whole second, ``dirac_cut``), upserted where they differ;
- every ``FAILOVER_RESYNC_HOURS`` (or ``failover cycle --full``) a full resync: a full read and,
  after it, the delta read of a normal cycle. A row that differs from the mirror in the full read
  but is not in the delta is **drift**: DIRAC changed it without moving its LastUpdateTime (a site
  set alone, a heartbeat, an edit by hand), or deleted it. Drift is counted (rows added, changed,
  removed, by transformation), reported and repaired.

Nothing here holds more than one transformation's rows at a time, except the answers of DIRAC's
batched calls themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.db.models import Count
from django.utils import timezone

from failover import insight
from failover.domain import (
    DONE_TASK_STATUSES,
    FAILED_TASK_STATUSES,
    FINAL_TASK_STATUSES,
    MISSING_JOB_STATUS,
    NO_JOB,
    JobInfo,
    TaskInfo,
    TaskSummary,
)
from failover.models import MirrorJob, MirrorState, MirrorTask

log = logging.getLogger(__name__)

CHUNK = 500
_JOB_FIELDS = ("status", "minor_status", "application_status", "site")


@dataclass
class Drift:
    """Rows of one transformation's mirror that a full resync found wrong (and repaired)."""

    added: int = 0
    changed: int = 0
    removed: int = 0

    @property
    def rows(self) -> int:
        return self.added + self.changed + self.removed

    def add(self, other: Drift) -> None:
        self.added += other.added
        self.changed += other.changed
        self.removed += other.removed

    def as_dict(self) -> dict:
        return {"added": self.added, "changed": self.changed, "removed": self.removed}


@dataclass
class Refresh:
    """What one batch's refresh did: which transformations changed, and the drift of the resynced."""

    touched: set[int] = field(default_factory=set)
    full: set[int] = field(default_factory=set)
    resynced: set[int] = field(default_factory=set)
    drift: dict[int, Drift] = field(default_factory=dict)


@dataclass
class Delta:
    """A cycle's delta read of many transformations, written to the mirror ahead of its batches."""

    started: datetime
    # The transformations it read (their cut moved to ``started``).
    ids: set[int] = field(default_factory=set)
    # Those whose rows really changed.
    touched: set[int] = field(default_factory=set)


def chunks(items: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def states(ids: Iterable[int]) -> dict[int, MirrorState]:
    out: dict[int, MirrorState] = {}
    for chunk in chunks(sorted(set(ids))):
        out.update((s.transformation_id, s) for s in MirrorState.objects.filter(transformation_id__in=chunk))
    return out


def _job_row(job: JobInfo) -> tuple[str, str, str, str]:
    return (job.status, job.minor_status, job.application_status, job.site)


# -- writes --------------------------------------------------------------------------------------


def _upsert(model, columns: Sequence[str], conflict: Sequence[str], rows: Sequence[tuple], now: datetime) -> None:
    """INSERT ... ON CONFLICT DO UPDATE (SQLite and PostgreSQL), many rows per statement, with
    ``last_update`` = ``now``: the ORM's bulk_create costs more in Python than the database
    does in writing a full read of many thousand rows."""
    if not rows:
        return
    q = connection.ops.quote_name
    cols = [*columns, "last_update"]
    update = [c for c in cols if c not in conflict]
    sql = (f"INSERT INTO {q(model._meta.db_table)} ({', '.join(map(q, cols))}) "
           f"VALUES ({', '.join(['%s'] * len(cols))}) ON CONFLICT ({', '.join(map(q, conflict))}) "
           f"DO UPDATE SET {', '.join(f'{q(c)} = excluded.{q(c)}' for c in update)}")
    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        for chunk in chunks(rows, 2000):
            cursor.executemany(sql, [(*row, stamp) for row in chunk])


def write_tasks(rows: Sequence[tuple[int, int, int, str]], now: datetime) -> None:
    """(transformation, task, job, status) rows, inserted or updated."""
    _upsert(MirrorTask, ("transformation_id", "task_id", "job_id", "status"), ("transformation_id", "task_id"),
            rows, now)


def write_jobs(rows: Sequence[tuple], now: datetime) -> None:
    """(job, transformation, status, minor status, application status, site) rows, inserted or updated."""
    _upsert(MirrorJob, ("job_id", "transformation_id", *_JOB_FIELDS), ("job_id",), rows, now)


def _select(model, columns: Sequence[str], where: str, values: Sequence, params: Sequence = ()) -> list[tuple]:
    """Rows of ``model``'s ``columns`` WHERE ``where`` IN ``values`` (``params`` first), one
    plain statement: a delta's rows are compared with the mirror's, and the ORM's rows cost more
    in Python than the database does in finding them."""
    if not values:
        return []
    q = connection.ops.quote_name
    sql = (f"SELECT {', '.join(map(q, columns))} FROM {q(model._meta.db_table)} "
           f"WHERE {where} IN ({', '.join(['%s'] * len(values))})")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *values])
        return cursor.fetchall()


def set_task_statuses(rows: Sequence[tuple[int, int, str]], now: datetime) -> None:
    """(transformation, task, status) of tasks whose status this system just wrote to DIRAC, set
    in the mirror too (one UPDATE statement, executed for every row); a task the mirror does not
    have is left alone."""
    if not rows:
        return
    q = connection.ops.quote_name
    sql = (f"UPDATE {q(MirrorTask._meta.db_table)} SET {q('status')} = %s, {q('last_update')} = %s "
           f"WHERE {q('transformation_id')} = %s AND {q('task_id')} = %s")
    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        for chunk in chunks(rows, 2000):
            cursor.executemany(sql, [(status, stamp, tid, task) for tid, task, status in chunk])


def write_states(rows: Iterable[tuple[int, Mapping[str, object]]]) -> None:
    """Fields of existing ``MirrorState`` rows, ``(transformation, {field: value})``: one UPDATE
    per set of fields, executed for every row of that set (Django's ``bulk_update`` builds a
    ``CASE`` per field over the rows instead: about 1.7 ms a row on a cycle's batches). A
    transformation with no row is left alone."""
    by_fields: dict[tuple[str, ...], list[tuple[int, Mapping[str, object]]]] = {}
    for tid, fields in rows:
        by_fields.setdefault(tuple(sorted(fields)), []).append((tid, fields))
    q = connection.ops.quote_name
    table = q(MirrorState._meta.db_table)
    with connection.cursor() as cursor:
        for names, items in by_fields.items():
            if not names:
                continue
            model_fields = [MirrorState._meta.get_field(name) for name in names]
            sql = (f"UPDATE {table} SET " + ", ".join(f"{q(f.column)} = %s" for f in model_fields)
                   + f" WHERE {q('transformation_id')} = %s")
            for chunk in chunks(items, 2000):
                cursor.executemany(sql, [[f.get_db_prep_save(fields[f.name], connection) for f in model_fields] + [tid]
                                         for tid, fields in chunk])


def _stored_tasks(keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], tuple[int, str]]:
    """The mirror's (job, status) of the given (transformation, task) pairs it has: one SELECT
    per 400 pairs, whatever transformations they belong to (a join with a VALUES list)."""
    q = connection.ops.quote_name
    table = q(MirrorTask._meta.db_table)
    have: dict[tuple[int, int], tuple[int, str]] = {}
    with connection.cursor() as cursor:
        for chunk in chunks(keys, 400):
            values = ", ".join(["(%s, %s)"] * len(chunk))
            cursor.execute(
                f"WITH wanted (tid, task) AS (VALUES {values}) "
                f"SELECT m.{q('transformation_id')}, m.{q('task_id')}, m.{q('job_id')}, m.{q('status')} "
                f"FROM {table} m JOIN wanted w ON m.{q('transformation_id')} = w.tid AND m.{q('task_id')} = w.task",
                [v for pair in chunk for v in pair],
            )
            for tid, task, job, status in cursor.fetchall():
                have[(tid, task)] = (job, status)
    return have


def upsert_tasks(tasks: Sequence[TaskInfo], now: datetime) -> set[int]:
    """Write changed and new tasks; the transformations whose tasks really changed."""
    latest: dict[tuple[int, int], TaskInfo] = {}
    for task in tasks:
        latest[(task.transformation, task.task)] = task  # a task read twice: its last answer
    have = _stored_tasks(list(latest))
    changed = [t for key, t in latest.items() if have.get(key) != (t.job, t.status)]
    write_tasks([(t.transformation, t.task, t.job, t.status) for t in changed], now)
    return {t.transformation for t in changed}


def upsert_jobs(jobs: Mapping[int, JobInfo], now: datetime, owner: Mapping[int, int] | None = None) -> set[int]:
    """Write changed and new jobs; the transformations (where known) whose jobs really changed.

    ``owner``: job id to transformation id for jobs the mirror does not know yet (from the tasks
    just read); a job nobody's task names yet keeps a NULL transformation until one does."""
    touched: set[int] = set()
    ids = sorted(jobs)
    for chunk in chunks(ids):
        have = {j: (t, (s, m, a, site)) for j, t, s, m, a, site in _select(
            MirrorJob, ("job_id", "transformation_id", *_JOB_FIELDS), "job_id", chunk)}
        unknown = [j for j in chunk if (have.get(j, (None,))[0] is None) and not (owner and j in owner)]
        found_owner = dict(owner or {})
        if unknown:
            found_owner.update(MirrorTask.objects.filter(job_id__in=unknown).values_list("job_id", "transformation_id"))
        rows = []
        for j in chunk:
            job = jobs[j]
            old = have.get(j)
            tid = old[0] if old is not None and old[0] is not None else found_owner.get(j)
            if old is not None and old[1] == _job_row(job) and old[0] == tid:
                continue
            if tid is not None:
                touched.add(tid)
            rows.append((j, tid, *_job_row(job)))
        write_jobs(rows, now)
    return touched


def replace(tid: int, tasks: Sequence[TaskInfo], jobs: Mapping[int, JobInfo], now: datetime, *,
            skip_tasks: Iterable[int] = (), skip_jobs: Iterable[int] = (), resync: bool = False,
            ) -> tuple[bool, Drift | None, tuple[int, int]]:
    """Make ``tid``'s mirror what a full read showed: ``tasks`` and ``jobs`` (those of the tasks).

    ``skip_tasks`` / ``skip_jobs``: rows the delta read after the full read already wrote (they are
    newer than the full read, so they stay, and are not drift). With ``resync``, every other row
    the full read finds different from the mirror (added, changed, removed) is drift, counted and
    returned; a first fill has none. Returns (anything written, drift or None, (tasks, jobs) now)."""
    skip_tasks = set(skip_tasks)
    skip_jobs = set(skip_jobs)
    drift = Drift()
    have_tasks = {k: (j, s) for k, j, s in MirrorTask.objects.filter(transformation_id=tid).values_list(
        "task_id", "job_id", "status").iterator(chunk_size=5000)}
    full_tasks = {t.task: (t.job, t.status) for t in tasks if t.transformation == tid}
    task_rows: dict[int, tuple[int, str]] = {}
    for k, row in full_tasks.items():
        if k in skip_tasks:
            continue
        if k not in have_tasks:
            drift.added += 1
            task_rows[k] = row
        elif have_tasks[k] != row:
            drift.changed += 1
            task_rows[k] = row
    removed_tasks = [k for k in have_tasks if k not in full_tasks and k not in skip_tasks]
    drift.removed += len(removed_tasks)
    final = {**have_tasks, **task_rows}
    for k in removed_tasks:
        del final[k]
    referenced = {j for j, _ in final.values() if j != NO_JOB}
    n_tasks = len(final)
    del have_tasks, final

    # The jobs the mirror holds for this transformation, and the ones its tasks name.
    have_jobs: dict[int, tuple] = {
        j: (s, m, a, site) for j, s, m, a, site in MirrorJob.objects.filter(transformation_id=tid).values_list(
            "job_id", *_JOB_FIELDS).iterator(chunk_size=5000)
    }
    for chunk in chunks(sorted(referenced - have_jobs.keys())):
        for j, s, m, a, site in MirrorJob.objects.filter(job_id__in=chunk).values_list("job_id", *_JOB_FIELDS):
            have_jobs[j] = (s, m, a, site)
    job_rows: dict[int, tuple] = {}
    removed_jobs = []
    for j in referenced:
        if j in skip_jobs:
            continue
        if j in jobs:
            row = _job_row(jobs[j])
            if j not in have_jobs:
                drift.added += 1
                job_rows[j] = row
            elif have_jobs[j] != row:
                drift.changed += 1
                job_rows[j] = row
        elif j in have_jobs:
            drift.removed += 1  # gone from DIRAC's Job DB
            removed_jobs.append(j)
    # The tasks' jobs the mirror holds now: those DIRAC showed, in the full read or the delta.
    n_jobs = sum(1 for j in referenced if j in skip_jobs or j in jobs)
    # Jobs of this transformation no task names any more: dropped, not drift (the tasks were).
    removed_jobs.extend(j for j in have_jobs if j not in referenced and j not in skip_jobs)
    del have_jobs

    for chunk in chunks(removed_tasks):
        MirrorTask.objects.filter(transformation_id=tid, task_id__in=chunk).delete()
    for chunk in chunks(removed_jobs):
        MirrorJob.objects.filter(job_id__in=chunk).delete()
    write_tasks([(tid, k, j, s) for k, (j, s) in sorted(task_rows.items())], now)
    write_jobs([(j, tid, *row) for j, row in sorted(job_rows.items())], now)
    changed = bool(removed_tasks or removed_jobs or task_rows or job_rows)
    return changed, (drift if resync else None), (n_tasks, n_jobs)


def fill(tid: int, tasks: Sequence[TaskInfo], jobs: Mapping[int, JobInfo], now: datetime) -> tuple[int, int]:
    """A first fill of a transformation that has no row in the mirror: its tasks and the jobs
    they name, written as they are (no comparison to make). Returns (tasks, jobs) written."""
    task_rows = [(tid, t.task, t.job, t.status) for t in tasks if t.transformation == tid]
    named = {t[2] for t in task_rows if t[2] != NO_JOB}
    job_rows = [(j, tid, *_job_row(jobs[j])) for j in sorted(named) if j in jobs]
    write_tasks(task_rows, now)
    write_jobs(job_rows, now)
    return len(task_rows), len(job_rows)


def prune(cutoff: datetime) -> list[tuple[int, str]]:
    """Mirrors of transformations no cycle has read since ``cutoff`` (no longer selected): dropped;
    one selected again is read in full."""
    ids = list(MirrorState.objects.filter(cut__lt=cutoff).values_list("transformation_id", flat=True))
    for chunk in chunks(ids):
        MirrorTask.objects.filter(transformation_id__in=chunk).delete()
        MirrorJob.objects.filter(transformation_id__in=chunk).delete()
        MirrorState.objects.filter(transformation_id__in=chunk).delete()
    return [(len(ids), "mirrors of transformations not read since")]


def forget(tid: int) -> None:
    """Drop a transformation's mirror (the next cycle reads it in full)."""
    MirrorState.objects.filter(transformation_id=tid).delete()
    MirrorTask.objects.filter(transformation_id=tid).delete()
    MirrorJob.objects.filter(transformation_id=tid).delete()


# -- reads: what the rules and the pages take from the mirror -------------------------------------


def _task_jobs(tid: int):
    return MirrorTask.objects.filter(transformation_id=tid).exclude(job_id=NO_JOB).values("job_id")


def tasks_of(tid: int) -> list[TaskInfo]:
    return [
        TaskInfo(tid, k, j, s)
        for k, j, s in MirrorTask.objects.filter(transformation_id=tid).order_by("task_id").values_list(
            "task_id", "job_id", "status").iterator(chunk_size=5000)
    ]


@dataclass
class PlanView:
    """What a plan reads of one transformation's mirror (``plan_view``): some tasks with their
    jobs, and every task counted."""

    tasks: list[TaskInfo]
    jobs: dict[int, JobInfo]
    summary: TaskSummary


def _synced_sql() -> tuple[str, list]:
    """A task's status once its job's is copied in (``rules.apply_task_updates(tasks,
    rules.task_updates(tasks, jobs))``), as SQL over ``t`` LEFT JOIN ``j``, and its parameters."""
    final = sorted(FINAL_TASK_STATUSES)
    sql = (f"CASE WHEN t.job_id = {NO_JOB} THEN t.status WHEN j.job_id IS NULL THEN "
           f"(CASE WHEN t.status IN {_in(final)} THEN t.status ELSE %s END) ELSE j.status END")
    return sql, [*final, MISSING_JOB_STATUS]


def plan_view(tid: int, assigned_tasks: Iterable[int]) -> PlanView:
    """What the rules plan from, without holding every task and job:

    - ``tasks``: the tasks whose job's status differs from theirs (or whose job is gone from the
      Job DB while they are not final), and the tasks in ``assigned_tasks`` (those of the
      Assigned files read), with their jobs in ``jobs``; every other task is in step with its job
      and no rule looks at it alone;
    - ``summary``: every task counted once synced (``rules.summarise`` over all of them).

    Three queries (and one per 500 Assigned tasks), whatever the transformation's size; the rows
    held are those above."""
    q = connection.ops.quote_name
    task_table, job_table = q(MirrorTask._meta.db_table), q(MirrorJob._meta.db_table)
    final, failed, done = sorted(FINAL_TASK_STATUSES), sorted(FAILED_TASK_STATUSES), sorted(DONE_TASK_STATUSES)
    select = (f"SELECT t.task_id, t.job_id, t.status, j.job_id, j.status, j.minor_status, j.application_status, "
              f"j.site FROM {task_table} t LEFT JOIN {job_table} j ON j.job_id = t.job_id AND t.job_id <> {NO_JOB} "
              f"WHERE t.transformation_id = %s AND ")
    rows: dict[int, tuple] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            select + f"t.job_id <> {NO_JOB} AND ((j.job_id IS NULL AND t.status NOT IN {_in(final)}) "
            f"OR (j.job_id IS NOT NULL AND j.status <> t.status))",
            [tid, *final],
        )
        for row in cursor.fetchall():
            rows[row[0]] = row
        wanted = sorted({int(k) for k in assigned_tasks if k is not None} - set(rows))
        for chunk in chunks(wanted):
            cursor.execute(select + f"t.task_id IN {_in(chunk)}", [tid, *chunk])
            for row in cursor.fetchall():
                rows[row[0]] = row
        synced, synced_params = _synced_sql()
        cursor.execute(
            f"SELECT COUNT(*), SUM(CASE WHEN s.synced IN {_in(final)} THEN 0 ELSE 1 END), "
            f"SUM(CASE WHEN s.synced IN {_in(failed)} THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN s.synced IN {_in(done)} THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN s.job_id = {NO_JOB} THEN 1 ELSE 0 END), "
            f"MIN(CASE WHEN s.job_id = {NO_JOB} THEN s.task_id END) FROM ("
            f"SELECT t.task_id AS task_id, t.job_id AS job_id, {synced} AS synced FROM {task_table} t "
            f"LEFT JOIN {job_table} j ON j.job_id = t.job_id AND t.job_id <> {NO_JOB} "
            f"WHERE t.transformation_id = %s) s",
            [*final, *failed, *done, *synced_params, tid],
        )
        total, not_final, n_failed, n_done, without_job, oldest = cursor.fetchone()
    tasks: list[TaskInfo] = []
    jobs: dict[int, JobInfo] = {}
    for k in sorted(rows):
        _, j, s, jid, js, m, a, site = rows[k]
        tasks.append(TaskInfo(tid, k, j, s))
        if jid is not None:
            jobs[jid] = JobInfo(jid, js, m, a, site)
    summary = TaskSummary(total or 0, not_final or 0, n_failed or 0, n_done or 0, without_job or 0, oldest or 0)
    return PlanView(tasks, jobs, summary)


def recent_jobs(tid: int, cfg: insight.InsightSettings) -> insight.RecentJobs:
    """``insight.RecentJobs.of`` the transformation's jobs, counted by the database: two queries
    whose answers are a few groups and the latest ``all_failed_jobs`` jobs."""
    q = connection.ops.quote_name
    task_table, job_table = q(MirrorTask._meta.db_table), q(MirrorJob._meta.db_table)
    final, failed = sorted(FINAL_TASK_STATUSES), sorted(FAILED_TASK_STATUSES)
    w_sites, w_alerts, w_last = insight.RecentJobs.windows(cfg)
    widest = None if w_sites is None or w_alerts is None else max(w_sites, w_alerts)
    # The finished jobs of the transformation's tasks, latest first (DIRAC numbers jobs in order).
    latest = (f"FROM {job_table} j WHERE j.job_id IN (SELECT t.job_id FROM {task_table} t "
              f"WHERE t.transformation_id = %s AND t.job_id <> {NO_JOB}) AND j.status IN {_in(final)} "
              f"ORDER BY j.job_id DESC")
    big = 2**62  # "all of them"

    def limit(n: int | None) -> str:
        return "" if n is None else f" LIMIT {int(n)}"

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT r.site, r.failed, r.minor_status, r.application_status, "
            f"SUM(CASE WHEN r.rn <= %s THEN 1 ELSE 0 END), SUM(CASE WHEN r.rn <= %s THEN 1 ELSE 0 END) FROM ("
            f"SELECT j.site AS site, CASE WHEN j.status IN {_in(failed)} THEN 1 ELSE 0 END AS failed, "
            f"j.minor_status AS minor_status, j.application_status AS application_status, "
            f"ROW_NUMBER() OVER (ORDER BY j.job_id DESC) AS rn {latest}{limit(widest)}) r "
            f"GROUP BY r.site, r.failed, r.minor_status, r.application_status",
            [big if w_sites is None else w_sites, big if w_alerts is None else w_alerts, *failed, tid, *final],
        )
        rows = cursor.fetchall()
        cursor.execute(
            f"SELECT j.job_id, j.status, j.minor_status, j.application_status, j.site {latest}{limit(w_last)}",
            [tid, *final],
        )
        last = tuple(JobInfo(*row) for row in reversed(cursor.fetchall()))
    return insight.RecentJobs(
        groups=tuple(sorted((site, bool(f), minor, app, int(n)) for site, f, minor, app, n, _ in rows if n)),
        total=sum(int(m) for *_, m in rows),
        failed=sum(int(m) for _, f, _, _, _, m in rows if f),
        last=last,
    )


def jobs_of(tid: int) -> dict[int, JobInfo]:
    """The jobs of the transformation's tasks that DIRAC's Job DB has (as ``jobs()`` answers)."""
    return {
        j: JobInfo(j, s, m, a, site)
        for j, s, m, a, site in MirrorJob.objects.filter(job_id__in=_task_jobs(tid)).values_list(
            "job_id", *_JOB_FIELDS).iterator(chunk_size=5000)
    }


def jobs_by_status(tid: int) -> dict[str, int]:
    """The overview's job counters of one transformation (GROUP BY Status)."""
    return dict(
        MirrorJob.objects.filter(job_id__in=_task_jobs(tid)).values_list("status").annotate(n=Count("job_id"))
        .order_by("status")
    )


def job_aggregates(tid: int) -> list[tuple[str, str, str, str, int, int]]:
    """The report's aggregates of one transformation: (Status, MinorStatus, ApplicationStatus,
    Site, count, lowest job id), one GROUP BY over the jobs of its tasks, ordered by the lowest
    job id (the order in which the combinations first appear)."""
    q = connection.ops.quote_name
    task_table, job_table = q(MirrorTask._meta.db_table), q(MirrorJob._meta.db_table)
    sql = (f"SELECT j.status, j.minor_status, j.application_status, j.site, COUNT(*), MIN(j.job_id) "
           f"FROM {job_table} j WHERE j.job_id IN (SELECT t.job_id FROM {task_table} t "
           f"WHERE t.transformation_id = %s AND t.job_id <> {NO_JOB}) "
           f"GROUP BY j.status, j.minor_status, j.application_status, j.site ORDER BY MIN(j.job_id)")
    with connection.cursor() as cursor:
        cursor.execute(sql, [tid])
        return [tuple(row) for row in cursor.fetchall()]


def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join("%s" for _ in values) + ")"


def synced_flags(ids: Sequence[int], failed: Iterable[str], done: Iterable[str]) -> dict[int, tuple[bool, bool]]:
    """Per transformation: whether a task has a status in ``failed``, and one in ``done``, once
    its job's status is copied into it (as ``rules.apply_task_updates(tasks, rules.task_updates(
    tasks, jobs))``: a task takes its job's status, a task whose job is gone from the Job DB
    becomes Failed unless it is final), in one query for all of ``ids``, reading no task."""
    failed, done = sorted(failed), sorted(done)
    q = connection.ops.quote_name
    task_table, job_table = q(MirrorTask._meta.db_table), q(MirrorJob._meta.db_table)
    synced, synced_params = _synced_sql()
    out: dict[int, tuple[bool, bool]] = {}
    for chunk in chunks(list(ids)):
        sql = (f"SELECT s.tid, MAX(CASE WHEN s.synced IN {_in(failed)} THEN 1 ELSE 0 END), "
               f"MAX(CASE WHEN s.synced IN {_in(done)} THEN 1 ELSE 0 END) FROM ("
               f"SELECT t.transformation_id AS tid, {synced} AS synced FROM {task_table} t "
               f"LEFT JOIN {job_table} j ON j.job_id = t.job_id AND t.job_id <> {NO_JOB} "
               f"WHERE t.transformation_id IN {_in(chunk)}) s GROUP BY s.tid")
        params = [*failed, *done, *synced_params, *chunk]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for tid, f, d in cursor.fetchall():
                out[tid] = (bool(f), bool(d))
    return out


def tasks_without_job(tid: int) -> int:
    return MirrorTask.objects.filter(transformation_id=tid, job_id=NO_JOB).count()


def counts(tid: int) -> tuple[int, int]:
    """(tasks, jobs of those tasks) in the mirror."""
    return (MirrorTask.objects.filter(transformation_id=tid).count(),
            MirrorJob.objects.filter(job_id__in=_task_jobs(tid)).count())


def now() -> datetime:
    return timezone.now()
