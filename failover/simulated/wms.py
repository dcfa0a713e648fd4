"""The simulated Job DB's writes, each moving LastUpdateTime exactly where DIRAC 9.1's does.

- ``set_job_status``: JobStateUpdate's setJobStatus / setJobApplicationStatus / setJobStatusBulk
  (JobStatusUtility, then JobDB.setJobAttributes with update) and the Matcher's report: moves it,
  even when the values are the same.
- ``set_job_site``: JobStateUpdate's setJobSite (JobDB.setJobAttribute without update): does not.
- ``heartbeat``: JobStateUpdate's sendHeartBeat (JobDB.setHeartBeatData): sets the job Running
  (its HeartBeatTime too, which the simulator does not keep) and does NOT move it.

docs/scenario.md, "LastUpdateTime: which writes move it", names the DIRAC functions.
"""

from __future__ import annotations

from failover.errors import BackendError
from failover.simulated.models import SimJob, dirac_now


def _job(job_id: int) -> SimJob:
    try:
        return SimJob.objects.get(id=job_id)
    except SimJob.DoesNotExist:
        raise BackendError(f"job {job_id} does not exist", retriable=False) from None


def set_job_status(
    job_id: int, status: str | None = None, minor_status: str | None = None, application_status: str | None = None
) -> None:
    job = _job(job_id)
    fields = ["last_update"]
    for name, value in (("status", status), ("minor_status", minor_status),
                        ("application_status", application_status)):
        if value:
            setattr(job, name, value)
            fields.append(name)
    job.last_update = dirac_now()
    job.save(update_fields=fields)


def set_job_site(job_id: int, site: str) -> None:
    SimJob.objects.filter(id=_job(job_id).id).update(site=site)


def heartbeat(job_id: int) -> None:
    SimJob.objects.filter(id=_job(job_id).id).update(status="Running")
