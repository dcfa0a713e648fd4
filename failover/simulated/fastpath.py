"""A faster read path for the simulated DIRAC, for large states; what get_backend() returns.

``FastSimulatedDirac`` answers the two bulk reads of a cycle, ``tasks`` and ``jobs``, with one
plain SQL statement per chunk instead of a Django ``__in`` lookup: Django prepares each of the
10,000 parameters of a chunk one by one, which on a 1,000,000-job state made the simulator's
answering about half of a cycle's wall time (docs/benchmarks.md). Everything else, including the
call counting, the injected latency and the faults, is SimulatedDirac's own. Only for SQLite;
with another database it falls back to the ORM path.

The contract suite runs against both read paths; the benchmarks can run the product with either
(``--contenders``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import connections

from failover.domain import JobInfo, TaskInfo, job_group
from failover.simulated.backend import CHUNK, SimulatedDirac, _chunks, _sim_cut
from failover.simulated.models import SimJob, SimTask
from failover.simulated.router import SIM_DB


class FastSimulatedDirac(SimulatedDirac):
    name = "simulated"

    @staticmethod
    def _sqlite() -> bool:
        return connections[SIM_DB].vendor == "sqlite"

    def tasks(self, ids: Iterable[int]) -> list[TaskInfo]:
        if not self._sqlite():
            return super().tasks(ids)
        rows = _task_rows(list(ids))
        fault = self._rpc("tasks", pages=max(1, -(-len(rows) // CHUNK)))
        self._lost("tasks", fault)
        return rows

    def tasks_changed_since(self, ids: Iterable[int], since: datetime) -> list[TaskInfo]:
        if not self._sqlite():
            return super().tasks_changed_since(ids, since)
        cut = connections[SIM_DB].ops.adapt_datetimefield_value(_sim_cut(since))
        ids = list(ids)
        if not ids:
            return []
        rows = _task_rows(ids, "AND last_update >= %s", [cut])
        rows.sort(key=lambda r: (r.transformation, r.task))
        fault = self._rpc("tasks_changed_since", pages=max(1, -(-len(rows) // CHUNK)))
        self._lost("tasks_changed_since", fault)
        return rows

    def jobs_changed_since(self, ids: Iterable[int], since: datetime) -> dict[int, JobInfo]:
        if not self._sqlite():
            return super().jobs_changed_since(ids, since)
        cut = connections[SIM_DB].ops.adapt_datetimefield_value(_sim_cut(since))
        groups = sorted({job_group(i) for i in ids})
        if not groups:
            return {}
        fault = self._rpc("jobs_changed_since")
        table = SimJob._meta.db_table
        changed: list[int] = []
        with connections[SIM_DB].cursor() as cur:
            for chunk in _chunks(groups, 1000):
                cur.execute(
                    f"SELECT id FROM {table} WHERE job_group IN (SELECT value FROM json_each(%s)) "
                    "AND last_update >= %s",
                    ["[" + ",".join(f'"{g}"' for g in chunk) + "]", cut],
                )
                changed.extend(r[0] for r in cur.fetchall())
        self._lost("jobs_changed_since", fault)
        return self._job_states_sql(sorted(changed), "jobs_changed_since")

    def jobs(self, job_ids: Iterable[int]) -> dict[int, JobInfo]:
        if not self._sqlite():
            return super().jobs(job_ids)
        return self._job_states_sql(sorted(set(job_ids)), "jobs")

    def _job_states_sql(self, job_ids: list[int], method: str) -> dict[int, JobInfo]:
        result: dict[int, JobInfo] = {}
        table = SimJob._meta.db_table
        with connections[SIM_DB].cursor() as cur:
            for chunk in _chunks(job_ids):
                fault = self._rpc(method, pages=2)
                cur.execute(
                    f"SELECT id, status, minor_status, application_status, site FROM {table} "
                    "WHERE id IN (SELECT value FROM json_each(%s)) ORDER BY id",
                    [_json_ints(chunk)],
                )
                for row in cur.fetchall():
                    result[row[0]] = JobInfo(*row)
                self._lost(method, fault)
        return result


def _task_rows(ids: list[int], where: str = "", params: list | None = None) -> list[TaskInfo]:
    """The tasks of these transformations (and ``where``), by plain SQL in chunks of ids."""
    rows: list[TaskInfo] = []
    table = SimTask._meta.db_table
    with connections[SIM_DB].cursor() as cur:
        for chunk in _chunks(ids, 1000):
            # json_each takes the whole id list as one parameter.
            cur.execute(
                f"SELECT transformation, task, job, status FROM {table} "
                f"WHERE transformation IN (SELECT value FROM json_each(%s)) {where} ORDER BY transformation, task",
                [_json_ints(chunk), *(params or [])],
            )
            rows.extend(TaskInfo(*r) for r in cur.fetchall())
    return rows


def _json_ints(values) -> str:
    return "[" + ",".join(str(int(v)) for v in values) + "]"
