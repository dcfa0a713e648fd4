"""Loading and dumping the simulated DIRAC's whole state as a scenario."""

from __future__ import annotations

from django.db import transaction

from failover.domain import job_group
from failover.simulated.models import SimFile, SimJob, SimProduction, SimState, SimTask, SimTransformation
from failover.simulated.router import SIM_DB
from failover.simulated.scenario import Scenario

BATCH = 5000


@transaction.atomic(using=SIM_DB)
def load(scenario: Scenario) -> None:
    """Replace the whole simulated state; the scenario was validated, so nothing is half-loaded."""
    for model in (SimFile, SimTask, SimJob, SimTransformation, SimProduction, SimState):
        model.objects.all().delete()
    SimProduction.objects.bulk_create(SimProduction(**p) for p in scenario.productions)
    SimTransformation.objects.bulk_create(
        (SimTransformation(**t) for t in scenario.transformations), batch_size=BATCH
    )
    group_of_job = {t["job"]: job_group(t["transformation"]) for t in scenario.tasks if t["job"]}
    SimJob.objects.bulk_create(
        (SimJob(job_group=group_of_job.get(j["id"], "00000000"), **j) for j in scenario.jobs),
        batch_size=BATCH,
    )
    SimTask.objects.bulk_create((SimTask(**t) for t in scenario.tasks), batch_size=BATCH)
    SimFile.objects.bulk_create((SimFile(**f) for f in scenario.files), batch_size=BATCH)


def dump() -> Scenario:
    # Sorted in Python, not by the database: PostgreSQL's locale collation orders LFNs otherwise.
    scenario = _read_all()
    scenario.files.sort(key=lambda f: (f["transformation"], f["lfn"]))
    return scenario


def _read_all() -> Scenario:
    return Scenario(
        productions=list(SimProduction.objects.order_by("id").values("id", "name", "status")),
        transformations=[
            {**t, "group_size": _number(t["group_size"])}
            for t in SimTransformation.objects.order_by("id").values(
                "id", "name", "type", "status", "group_size", "production", "parent"
            )
        ],
        files=list(
            SimFile.objects.order_by("transformation", "lfn").values(
                "transformation", "lfn", "status", "task", "error_count"
            )
        ),
        tasks=list(
            SimTask.objects.order_by("transformation", "task").values("transformation", "task", "job", "status")
        ),
        jobs=list(
            SimJob.objects.order_by("id").values("id", "status", "minor_status", "application_status", "site")
        ),
    )


def _number(value: float) -> int | float:
    # DIRAC stores GroupSize as a float; show 50 rather than 50.0 when it is whole.
    return int(value) if float(value).is_integer() else value
