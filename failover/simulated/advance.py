"""``simdirac advance``: play DIRAC's own agents forward, one deterministic step at a time.

One step does, in DIRAC's order: the TransformationAgent groups Unused files into new tasks
(all remaining files when the transformation is in Flush, which then returns to Active); the
WorkflowTaskAgent submits Created tasks as jobs; every unfinished job moves one state along
Received, Waiting, Running and ends Done, Failed or Killed with a failure mix by site. A Done job
sets its input files Processed and writes one output file into each child step. Job statuses are
NOT copied into tasks: that is the failover cycle's work, as in CTAO's installation.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Max

from failover.domain import ASSIGNED, FINAL_TRANSFORMATION_STATUSES, FLUSH, PROCESSED, UNUSED, job_group
from failover.simulated.demo import behaviour, stalled_groups
from failover.simulated.generate import DONE_OUTCOMES, FAILED_OUTCOMES, SITES, _pick
from failover.simulated.models import SimFile, SimJob, SimState, SimTask, SimTransformation, dirac_now
from failover.simulated.router import SIM_DB

# Statuses in which DIRAC's TransformationAgent creates tasks.
TASK_CREATING = ("Active", "Flush", "Completing")
# How likely each site is to fail a job: enough difference for the "failures by site" plot.
SITE_FAILURE = {
    "LCG.IN2P3-CC.fr": 0.08,
    "LCG.GRIF.fr": 0.2,
    "LCG.LANCASTER.uk": 0.3,
    "LCG.CNAF.it": 0.05,
    "LCG.DESY-ZEUTHEN.de": 0.1,
}
NEXT_STATE = {"Received": "Waiting", "Checking": "Waiting", "Waiting": "Running", "Matched": "Running"}


@dataclass
class AdvanceResult:
    step: int
    tasks_created: int = 0
    jobs_submitted: int = 0
    jobs_moved: int = 0
    files_added: int = 0

    def __str__(self) -> str:
        return (
            f"step {self.step}: {self.tasks_created} tasks created, {self.jobs_submitted} jobs submitted, "
            f"{self.jobs_moved} jobs moved, {self.files_added} files added to child steps"
        )


def _state(key: str, default: str) -> str:
    row = SimState.objects.filter(key=key).first()
    return row.value if row else default


@transaction.atomic(using=SIM_DB)
def advance(*, seed: int = 1, max_jobs: int | None = None) -> AdvanceResult:
    step = int(_state("advance_step", "0")) + 1
    SimState.objects.update_or_create(key="advance_step", defaults={"value": str(step)})
    rng = random.Random(f"{seed}:{step}")
    result = AdvanceResult(step=step)
    # Task creation and submission and every job status move set LastUpdateTime, as in DIRAC
    # (docs/scenario.md, "LastUpdateTime: which writes move it").
    _create_tasks(result)
    _submit_tasks(result)
    _move_jobs(result, rng, max_jobs, behaviour())
    return result


def _create_tasks(result: AdvanceResult) -> None:
    for t in SimTransformation.objects.filter(status__in=TASK_CREATING).order_by("id"):
        unused = list(
            SimFile.objects.filter(transformation=t.id, status=UNUSED).order_by("lfn").values_list("pk", flat=True)
        )
        size = max(1, int(t.group_size))
        groups = [unused[i : i + size] for i in range(0, len(unused), size)]
        if t.status != FLUSH and groups and len(groups[-1]) < size:
            groups.pop()  # an incomplete group waits for more files, unless flushing
        last = SimTask.objects.filter(transformation=t.id).aggregate(m=Max("task"))["m"] or 0
        for group in groups:
            last += 1
            # addTaskForTransformation: CreationTime and LastUpdateTime are now.
            SimTask.objects.create(transformation=t.id, task=last, job=0, status="Created", last_update=dirac_now())
            SimFile.objects.filter(pk__in=group).update(status=ASSIGNED, task=last)
            result.tasks_created += 1
        if t.status == FLUSH:
            # Flush is one-shot: once every file went into a task, back to Active.
            t.status = "Active"
            t.save(update_fields=["status", "last_update"])


def _submit_tasks(result: AdvanceResult) -> None:
    next_job = (SimJob.objects.aggregate(m=Max("id"))["m"] or 0) + 1
    for task in SimTask.objects.filter(job=0, status="Created").order_by("transformation", "task"):
        SimJob.objects.create(
            id=next_job,
            status="Received",
            minor_status="Job accepted",
            application_status="Unknown",
            site="ANY",
            job_group=job_group(task.transformation),
            last_update=dirac_now(),  # insertNewJobIntoDB
            # The JobDB InputData of a submitted task: its files, fixed from now on.
            input_data=sorted(
                SimFile.objects.filter(transformation=task.transformation, task=task.task).values_list("lfn", flat=True)
            ),
        )
        task.job = next_job
        task.status = "Submitted"
        task.last_update = dirac_now()  # setTaskStatusAndWmsID
        task.save(update_fields=["job", "status", "last_update"])
        next_job += 1
        result.jobs_submitted += 1


def _move_jobs(result: AdvanceResult, rng: random.Random, max_jobs: int | None, knobs: dict) -> None:
    """Move jobs one state on. ``knobs`` (the demo's, failover/simulated/demo.py) may set site
    failure rates, one outcome for every job of a transformation, and transformations whose
    jobs never move (a stalled step)."""
    site_failure = {**SITE_FAILURE, **knobs.get("site_failure", {})}
    outcomes = {job_group(int(t)): tuple(o) for t, o in knobs.get("outcomes", {}).items()}
    moving = SimJob.objects.exclude(status__in=["Done", "Completed", "Failed", "Killed", "Deleted"]).order_by("id")
    stalled = stalled_groups(knobs)
    if stalled:
        moving = moving.exclude(job_group__in=stalled)
    if max_jobs:
        moving = moving[:max_jobs]
    task_of_job = {}
    finished: list[tuple[SimJob, bool]] = []
    for job in moving:
        if job.status in NEXT_STATE:
            job.status = NEXT_STATE[job.status]
            if job.status == "Running":
                job.site = rng.choice(SITES)
                job.minor_status = "Application"
                job.application_status = "Executing Step1_ctapipe_process"
            else:
                job.minor_status = "Pilot Agent Submission"
        elif job.job_group in outcomes:
            job.status, job.minor_status, job.application_status = outcomes[job.job_group]
            finished.append((job, job.status != "Done"))
        else:
            failed = rng.random() < site_failure.get(job.site, 0.1)
            job.status, job.minor_status, job.application_status = _pick(
                rng, FAILED_OUTCOMES if failed else DONE_OUTCOMES
            )
            finished.append((job, failed))
        # Every move is a status update (the Matcher's report with the site, then the job's own
        # reports through JobStateUpdate), each of which moves LastUpdateTime in DIRAC.
        job.last_update = dirac_now()
        job.save(update_fields=["status", "minor_status", "application_status", "site", "last_update"])
        result.jobs_moved += 1
    if not finished:
        return
    for t, task, j in SimTask.objects.filter(job__in=[j.id for j, _ in finished]).values_list(
        "transformation", "task", "job"
    ):
        task_of_job[j] = (t, task)
    children = defaultdict(list)
    for cid, parent, status in SimTransformation.objects.exclude(parent=None).values_list("id", "parent", "status"):
        if status not in FINAL_TRANSFORMATION_STATUSES:
            children[parent].append(cid)
    for job, failed in finished:
        if job.id not in task_of_job:
            continue
        tid, task = task_of_job[job.id]
        inputs = SimFile.objects.filter(transformation=tid, task=task, status=ASSIGNED)
        if not failed:
            inputs.update(status=PROCESSED)
            for child in children[tid]:
                SimFile.objects.get_or_create(
                    transformation=child,
                    lfn=f"/ctao/MC/PROD5b/LaPalma/gamma-diffuse/{tid:08d}/out_{task:07d}.merged.DL2.h5",
                    defaults={"status": UNUSED},
                )
                result.files_added += 1
        elif job.minor_status == "Application Finished With Errors":
            # The job's own last workflow module reports a failed step by setting its inputs
            # Unused; DIRAC then counts the error. Jobs that die earlier leave them Assigned.
            inputs.update(status=UNUSED, error_count=F("error_count") + 1)
