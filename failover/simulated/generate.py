"""Synthetic scenarios: by default a production like the seed's YAML, and large ones for benchmarks.

Deterministic for a given seed. The default is the seed's chain: a processing step, a merge by 50
fed by it, and a merge by 10000 fed by that, with jobs in every state and a failure mix by site
similar to the seed's report for transformation 4848.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from failover.simulated.scenario import Scenario, validate

SITES = ("LCG.IN2P3-CC.fr", "LCG.GRIF.fr", "LCG.LANCASTER.uk", "LCG.CNAF.it", "LCG.DESY-ZEUTHEN.de")
DONE_OUTCOMES = (
    ("Done", "Execution Complete", "Workflow successful, end of FailoverRequest module execution.", 0.95),
    ("Done", "Requests done", "Workflow successful, end of FailoverRequest module execution.", 0.05),
)
FAILED_OUTCOMES = (
    ("Failed", "Maximum of reschedulings reached", "Failed Input Data Resolution", 0.8),
    (
        "Failed",
        "Application Finished With Errors",
        "Operation not permitted ( 1 : cta-prod-setup-software Exited With Status 1)",
        0.1,
    ),
    ("Killed", "Received Kill signal", "Executing Step1_ctapipe_process", 0.1),
)
RUNNING_STATES = (
    ("Waiting", "Pilot Agent Submission", "Unknown"),
    ("Running", "Application", "Executing Step1_ctapipe_process"),
)
STEPS = (
    ("DataReprocessing", 5, "ctapipe-process"),
    ("Merging", 50, "merge50"),
    ("Merging", 10000, "merge10000"),
)


@dataclass
class GenerateOptions:
    productions: int = 1
    steps: int = 3
    files: int = 400  # input files of each production's first step
    failure_rate: float = 0.12
    running_rate: float = 0.1
    unsubmitted_rate: float = 0.03
    seed: int = 1
    first_transformation: int = 4846
    first_production: int = 7
    extra_types: tuple[str, ...] = ()


def generate(options: GenerateOptions | None = None) -> Scenario:
    o = options or GenerateOptions()
    rng = random.Random(o.seed)
    data: dict[str, list] = {"productions": [], "transformations": [], "files": [], "tasks": [], "jobs": []}
    next_tid = o.first_transformation
    next_job = 1_000_001
    for p in range(o.productions):
        pid = o.first_production + p
        data["productions"].append({"id": pid, "name": f"Prod5b_LaPalma_gamma-diffuse_{pid}", "status": "Active"})
        parent = -1
        n_inputs = o.files
        for s in range(o.steps):
            step_type, group_size, label = STEPS[min(s, len(STEPS) - 1)]
            tid = next_tid
            next_tid += 1
            data["transformations"].append(
                {
                    "id": tid,
                    "name": f"{pid:08d}_Step{s + 1}_{label}",
                    "type": step_type,
                    "status": "Active",
                    "group_size": group_size,
                    "production": pid,
                    "parent": parent,
                }
            )
            n_done_tasks = _fill_step(data, rng, o, tid, n_inputs, group_size, next_job)
            next_job += n_inputs + 1
            parent = tid
            # Each Done task of this step wrote one output file: the child's inputs.
            n_inputs = n_done_tasks
    return validate(data)


def _pick(rng: random.Random, outcomes):
    r = rng.random()
    acc = 0.0
    for outcome in outcomes:
        acc += outcome[-1]
        if r < acc:
            return outcome[:-1]
    return outcomes[-1][:-1]


def _fill_step(data, rng, o: GenerateOptions, tid: int, n_inputs: int, group_size: int, first_job: int) -> int:
    """Files grouped into tasks of ``group_size``; the last partial group is left Unused."""
    files = [f"/ctao/MC/PROD5b/LaPalma/gamma-diffuse/{tid:08d}/{i:07d}.DL2.h5" for i in range(n_inputs)]
    n_tasks = len(files) // group_size if group_size <= len(files) else 0
    job_id = first_job
    done = 0
    site_bias = {site: 0.5 + rng.random() for site in SITES}
    for k in range(n_tasks):
        task = k + 1
        members = files[k * group_size : (k + 1) * group_size]
        roll = rng.random()
        site = rng.choices(SITES, weights=[site_bias[s] for s in SITES])[0]
        if roll < o.unsubmitted_rate:
            data["tasks"].append({"transformation": tid, "task": task, "job": 0, "status": "Created"})
            file_status = "Assigned"
        else:
            job_id += 1
            if roll < o.unsubmitted_rate + o.running_rate:
                status, minor, app = rng.choice(RUNNING_STATES)
                file_status = "Assigned"
            elif roll < o.unsubmitted_rate + o.running_rate + o.failure_rate * site_bias[site]:
                status, minor, app = _pick(rng, FAILED_OUTCOMES)
                file_status = "Unused" if minor == "Application Finished With Errors" else "Assigned"
            else:
                status, minor, app = _pick(rng, DONE_OUTCOMES)
                file_status = "Processed"
                done += 1
            data["jobs"].append(
                {"id": job_id, "status": status, "minor_status": minor, "application_status": app, "site": site}
            )
            # Task statuses lag behind: nobody copied the job status since submission.
            data["tasks"].append({"transformation": tid, "task": task, "job": job_id, "status": "Submitted"})
        for lfn in members:
            data["files"].append(
                {
                    "transformation": tid,
                    "lfn": lfn,
                    "status": file_status,
                    "task": task,
                    "error_count": 1 if file_status == "Unused" else 0,
                }
            )
    for lfn in files[n_tasks * group_size :]:
        data["files"].append({"transformation": tid, "lfn": lfn, "status": "Unused", "task": None, "error_count": 0})
    return done


def generate_large(transformations: int, jobs: int, *, seed: int = 1, failure_rate: float = 0.12,
                   catch_up: bool = False) -> Scenario:
    """Many three-step productions with ``jobs`` jobs spread over ``transformations`` transformations.

    Every transformation gets group size 1 so one file is one task is one job, which keeps the
    numbers exact. ``catch_up`` leaves every task's status stale (many tasks to update); otherwise
    task statuses already match their jobs except for a few recent changes (steady state).
    """
    rng = random.Random(seed)
    data: dict[str, list] = {"productions": [], "transformations": [], "files": [], "tasks": [], "jobs": []}
    per = max(1, jobs // transformations)
    job_id = 0
    for i in range(transformations):
        tid = i + 1
        step = i % 3
        pid = i // 3 + 1
        if step == 0:
            data["productions"].append({"id": pid, "name": f"Production{pid}", "status": "Active"})
        data["transformations"].append(
            {
                "id": tid,
                "name": f"{pid:08d}_Step{step + 1}",
                "type": "DataReprocessing" if step == 0 else "Merging",
                "status": "Active",
                "group_size": 1,
                "production": pid,
                "parent": -1 if step == 0 else tid - 1,
            }
        )
        for k in range(per):
            job_id += 1
            roll = rng.random()
            site = SITES[job_id % len(SITES)]
            if roll < failure_rate:
                status, minor, app = _pick(rng, FAILED_OUTCOMES)
                file_status = "Assigned"
            elif roll < failure_rate + 0.1:
                status, minor, app = RUNNING_STATES[1]
                file_status = "Assigned"
            else:
                status, minor, app = _pick(rng, DONE_OUTCOMES)
                file_status = "Processed"
            stale = catch_up or rng.random() < 0.01
            data["jobs"].append(
                {"id": job_id, "status": status, "minor_status": minor, "application_status": app, "site": site}
            )
            data["tasks"].append(
                {"transformation": tid, "task": k + 1, "job": job_id, "status": "Submitted" if stale else status}
            )
            data["files"].append(
                {"transformation": tid, "lfn": f"/sim/{tid:08d}/{k:07d}.h5", "status": file_status, "task": k + 1}
            )
    return validate(data)
