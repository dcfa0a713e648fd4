"""The demo behind ``make run``: a simulated DIRAC with something to look at for half an hour.

It loads two seed-like productions (``generate``) and five small ones, each made to show what the
failover engine knows how to say about a transformation that is not moving on:

- 4852, a **failing configuration**: every job fails the same way and leaves its files Assigned,
  so the cycle resets each file MaxReassign times, after which the files sit at the cap;
- 4853, a root step whose last files are too few for a task and whose jobs all fail on them: it is
  flushed MaxFlush times, then the **flush limit** holds it;
- 4855, a **stalled step**: its jobs stay Running and never move (no progress);
- 4856, **bookkeeping gone wrong**: Done jobs whose files are still Assigned, and tasks that never
  got a job;
- 4859, a child step that **cannot complete** (Problematic files) and is left Active under its
  Completed parent.

While it runs, ``arrive`` adds a new three-step production every DEMO_ARRIVAL_SECONDS (until
DEMO_ARRIVALS have come), and one site, LCG.LANCASTER.uk, is a **black hole**: it fails most of
the jobs it runs. The behaviour (the site failure rates, per-transformation outcomes, the stalled
transformations) is simulator state (``SimState`` key ``behaviour``), read by ``advance``.
"""

from __future__ import annotations

import json

from django.db import transaction
from django.db.models import Max

from failover.domain import job_group
from failover.simulated.generate import GenerateOptions, generate
from failover.simulated.models import SimFile, SimProduction, SimState, SimTransformation
from failover.simulated.router import SIM_DB
from failover.simulated.scenario import Scenario, validate
from failover.simulated.store import load

BEHAVIOUR = "behaviour"
BLACK_HOLE = "LCG.LANCASTER.uk"
FAILING_CONFIG = 4852
FLUSH_LIMITED = 4853
STALLED = 4855
BOOKKEEPING = 4856
CANNOT_COMPLETE = 4859
# The error every job of the failing configuration ends with (the job wrapper fails before the
# workflow's last module, so the files stay Assigned for the failover cycle to reset).
CONFIG_ERROR = ("Failed", "Exception During Execution",
                "ctapipe-process: unknown configuration key 'DataWriter.write_dl1_images' (Exited With Status 2)")
# The root step 4853 fails on its last files: DIRAC's own job sets them Unused again.
INPUT_ERROR = ("Failed", "Application Finished With Errors",
               "Operation not permitted ( 1 : cta-prod-setup-software Exited With Status 1)")
# Arrivals: production ids and transformation ids after the fixed ones.
FIRST_ARRIVAL_PRODUCTION = 20
FIRST_ARRIVAL_TRANSFORMATION = 4900


def behaviour() -> dict:
    """The demo's knobs: {"site_failure": {site: rate}, "outcomes": {tid: [status, minor, app]},
    "stalled": [tid, ...]}; empty outside the demo."""
    row = SimState.objects.filter(key=BEHAVIOUR).first()
    return json.loads(row.value) if row else {}


def _production(pid: int, name: str) -> dict:
    return {"id": pid, "name": name, "status": "Active"}


def _step(tid: int, pid: int, step: int, label: str, type_: str, group: int, parent: int = -1,
          status: str = "Active") -> dict:
    return {"id": tid, "name": f"{pid:08d}_Step{step}_{label}", "type": type_, "status": status,
            "group_size": group, "production": pid, "parent": parent}


def _lfn(tid: int, i: int) -> str:
    return f"/ctao/MC/PROD5b/LaPalma/proton/{tid:08d}/{i:07d}.DL1.h5"


def special(first_job: int) -> dict:
    """The five small productions that show each kind of attention item."""
    data: dict[str, list] = {"productions": [], "transformations": [], "files": [], "tasks": [], "jobs": []}
    job_id = first_job

    def add_job(tid: int, task: int, status: str, minor: str, app: str, site: str, task_status: str = "Submitted"):
        nonlocal job_id
        job_id += 1
        data["jobs"].append({"id": job_id, "status": status, "minor_status": minor, "application_status": app,
                             "site": site})
        data["tasks"].append({"transformation": tid, "task": task, "job": job_id, "status": task_status})

    def completed_first_step(tid: int, pid: int, files: int, group: int) -> None:
        """A production's first step, Completed: every file Processed by a Done job at IN2P3."""
        data["transformations"].append(_step(tid, pid, 1, "ctapipe-process", "DataReprocessing", group,
                                              status="Completed"))
        for i in range(files):
            data["files"].append({"transformation": tid, "lfn": _lfn(tid, i), "status": "Processed",
                                  "task": i // group + 1})
        for task in range(1, files // group + 1):
            add_job(tid, task, "Done", "Execution Complete", "Workflow successful", "LCG.IN2P3-CC.fr", "Done")

    # 9: the failing configuration, 60 files not yet in tasks.
    data["productions"].append(_production(9, "Prod5b_LaPalma_proton_9_new-config"))
    data["transformations"].append(_step(FAILING_CONFIG, 9, 1, "ctapipe-process", "DataReprocessing", 5))
    data["files"] += [{"transformation": FAILING_CONFIG, "lfn": _lfn(FAILING_CONFIG, i), "status": "Unused",
                       "task": None} for i in range(60)]
    # 10: a root step of group size 20 with 7 files left, which fail whenever they run.
    data["productions"].append(_production(10, "Prod5b_LaPalma_proton_10_tail"))
    data["transformations"].append(_step(FLUSH_LIMITED, 10, 1, "ctapipe-process", "DataReprocessing", 20))
    # 20 files went into task 1, 13 into a task an earlier flush made; 7 still wait.
    for i in range(40):
        task = 1 if i < 20 else (2 if i < 33 else None)
        data["files"].append({"transformation": FLUSH_LIMITED, "lfn": _lfn(FLUSH_LIMITED, i),
                              "status": "Processed" if task else "Unused", "task": task})
    add_job(FLUSH_LIMITED, 1, "Done", "Execution Complete", "Workflow successful", "LCG.CNAF.it", "Done")
    add_job(FLUSH_LIMITED, 2, "Done", "Execution Complete", "Workflow successful", "LCG.CNAF.it", "Done")
    # 11: step 1 Completed; step 2's jobs stopped moving (the stalled step).
    data["productions"].append(_production(11, "Prod5b_LaPalma_proton_11"))
    completed_first_step(4854, 11, 50, 5)
    data["transformations"].append(_step(STALLED, 11, 2, "merge10", "Merging", 10, parent=4854))
    for i in range(40):
        data["files"].append({"transformation": STALLED, "lfn": _lfn(STALLED, i), "status": "Assigned",
                              "task": i // 10 + 1})
    for task in range(1, 5):
        add_job(STALLED, task, "Running", "Application", "Executing Step1_merge", "LCG.DESY-ZEUTHEN.de", "Running")
    # 12: Done jobs whose files stayed Assigned, and tasks without a job.
    data["productions"].append(_production(12, "Prod5b_LaPalma_proton_12"))
    data["transformations"].append(_step(BOOKKEEPING, 12, 1, "ctapipe-process", "DataReprocessing", 2))
    for task in range(1, 11):
        lost_report = task in (7, 8)
        no_job = task in (9, 10)
        for k in range(2):
            i = (task - 1) * 2 + k
            data["files"].append({"transformation": BOOKKEEPING, "lfn": _lfn(BOOKKEEPING, i),
                                  "status": "Assigned" if lost_report or no_job else "Processed", "task": task})
        if no_job:
            # The WorkflowTaskAgent reserved the task and never submitted it.
            data["tasks"].append({"transformation": BOOKKEEPING, "task": task, "job": 0, "status": "Reserved"})
        else:
            add_job(BOOKKEEPING, task, "Done", "Execution Complete", "Workflow successful", "LCG.CNAF.it",
                    "Submitted" if lost_report else "Done")
    # 13: a child step with Problematic files, left Active under its Completed parent.
    data["productions"].append(_production(13, "Prod5b_LaPalma_proton_13"))
    completed_first_step(4858, 13, 25, 5)
    data["transformations"].append(_step(CANNOT_COMPLETE, 13, 2, "merge5", "Merging", 5, parent=4858))
    for i in range(5):
        data["files"].append({"transformation": CANNOT_COMPLETE, "lfn": _lfn(CANNOT_COMPLETE, i),
                              "status": "Problematic" if i >= 3 else "Processed", "task": 1})
    add_job(CANNOT_COMPLETE, 1, "Done", "Execution Complete", "Workflow successful", "LCG.IN2P3-CC.fr", "Done")
    return data


def demo_scenario(files: int = 1000) -> Scenario:
    """Two seed-like productions of ``files`` input files each, and the five special ones."""
    data = generate(GenerateOptions(productions=2, files=files)).as_dict()
    first_job = max((j["id"] for j in data["jobs"]), default=1_000_000) + 1000
    for key, rows in special(first_job).items():
        data[key] += rows
    return validate(data)


DEMO_BEHAVIOUR = {
    # The black hole, and the other sites as advance.SITE_FAILURE has them.
    "site_failure": {BLACK_HOLE: 0.85},
    "outcomes": {str(FAILING_CONFIG): list(CONFIG_ERROR), str(FLUSH_LIMITED): list(INPUT_ERROR)},
    "stalled": [STALLED],
}


@transaction.atomic(using=SIM_DB)
def load_demo(files: int = 1000) -> Scenario:
    scenario = demo_scenario(files)
    load(scenario)
    SimState.objects.update_or_create(key=BEHAVIOUR, defaults={"value": json.dumps(DEMO_BEHAVIOUR)})
    return scenario


@transaction.atomic(using=SIM_DB)
def arrive(files: int = 300, limit: int | None = None) -> int | None:
    """A new three-step production arrives (processing by 5, merge by 50, merge by 10000), its
    first step's files Unused, as DIRAC's production system creates one; returns its id, or
    None once ``limit`` productions have arrived."""
    n = int((SimState.objects.filter(key="demo_arrivals").first() or SimState(value="0")).value)
    if limit is not None and n >= limit:
        return None
    pid = FIRST_ARRIVAL_PRODUCTION + n
    first = max(FIRST_ARRIVAL_TRANSFORMATION,
                (SimTransformation.objects.aggregate(m=Max("id"))["m"] or 0) + 1)
    particle = ("gamma-diffuse", "proton", "electron", "gamma")[n % 4]
    SimProduction.objects.create(id=pid, name=f"Prod6_Paranal_{particle}_{pid}", status="Active")
    parent = -1
    for step, (type_, group, label) in enumerate((("DataReprocessing", 5, "ctapipe-process"),
                                                   ("Merging", 50, "merge50"), ("Merging", 10000, "merge10000"))):
        tid = first + step
        SimTransformation.objects.create(id=tid, name=f"{pid:08d}_Step{step + 1}_{label}", type=type_,
                                         status="Active", group_size=group, production=pid, parent=parent)
        parent = tid
    # Sizes vary a little, so productions do not all finish in step.
    count = files + (n * 37) % 150
    SimFile.objects.bulk_create(
        SimFile(transformation=first, lfn=f"/ctao/MC/PROD6/Paranal/{particle}/{first:08d}/{i:07d}.simtel.zst",
                status="Unused") for i in range(count)
    )
    SimState.objects.update_or_create(key="demo_arrivals", defaults={"value": str(n + 1)})
    return pid


def stalled_groups(knobs: dict) -> list[str]:
    return [job_group(int(t)) for t in knobs.get("stalled", [])]

