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

from django.db import connections

from failover.domain import JobInfo, TaskInfo
from failover.simulated.backend import CHUNK, SimulatedDirac, _chunks
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
        ids = list(ids)
        rows: list[TaskInfo] = []
        table = SimTask._meta.db_table
        with connections[SIM_DB].cursor() as cur:
            for chunk in _chunks(ids, 1000):
                # json_each takes the whole id list as one parameter.
                cur.execute(
                    f"SELECT transformation, task, job, status FROM {table} "
                    "WHERE transformation IN (SELECT value FROM json_each(%s)) ORDER BY transformation, task",
                    [_json_ints(chunk)],
                )
                rows.extend(TaskInfo(*r) for r in cur.fetchall())
        fault = self._rpc("tasks", pages=max(1, -(-len(rows) // CHUNK)))
        self._lost("tasks", fault)
        return rows

    def jobs(self, job_ids: Iterable[int]) -> dict[int, JobInfo]:
        if not self._sqlite():
            return super().jobs(job_ids)
        job_ids = sorted(set(job_ids))
        result: dict[int, JobInfo] = {}
        table = SimJob._meta.db_table
        with connections[SIM_DB].cursor() as cur:
            for chunk in _chunks(job_ids):
                fault = self._rpc("jobs", pages=2)
                cur.execute(
                    f"SELECT id, status, minor_status, application_status, site FROM {table} "
                    "WHERE id IN (SELECT value FROM json_each(%s)) ORDER BY id",
                    [_json_ints(chunk)],
                )
                for row in cur.fetchall():
                    result[row[0]] = JobInfo(*row)
                self._lost("jobs", fault)
        return result


def _json_ints(values) -> str:
    return "[" + ",".join(str(int(v)) for v in values) + "]"
