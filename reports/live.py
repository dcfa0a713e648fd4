"""The report computed from DIRAC's current jobs, in a few batched reads."""

from __future__ import annotations

from failover.backends import get_backend
from failover.backends.base import DiracBackend
from failover.errors import UnknownTransformation
from reports.aggregation import Report, aggregate_jobs, build_report


def live_report(transformation_id: int, backend: DiracBackend | None = None) -> Report:
    backend = backend or get_backend()
    if not backend.transformations(ids=[transformation_id]):
        raise UnknownTransformation(transformation_id)
    tasks = backend.tasks([transformation_id])
    jobs = backend.jobs([t.job for t in tasks if t.job])
    return build_report(transformation_id, aggregate_jobs(jobs.values()))
