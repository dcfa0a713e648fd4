"""Loading and dumping the simulated DIRAC's whole state as a scenario."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Q

from failover.domain import job_group
from failover.simulated.models import (
    SimCatalogFile,
    SimFile,
    SimJob,
    SimProduction,
    SimRequest,
    SimState,
    SimTask,
    SimTransformation,
    dirac_now,
)
from failover.simulated.router import SIM_DB
from failover.simulated.scenario import LAST_UPDATE_FORMAT, Scenario

BATCH = 5000
# Set when the loaded scenario gave any last_update: dump then writes every task's and job's.
DUMP_LAST_UPDATE = "dump_last_update"
# Set when the loaded scenario had a ``catalog`` (the catalogue is known) / ``requests`` key.
CATALOG_KNOWN = "catalog_known"
REQUESTS_KNOWN = "requests_known"


def _when(row: dict, default: datetime) -> dict:
    """A scenario row with its last_update as the simulator stores it (aware UTC)."""
    row = dict(row)
    given = row.pop("last_update", None)
    row["last_update"] = (
        datetime.strptime(given, LAST_UPDATE_FORMAT).replace(tzinfo=UTC) if given else default
    )
    return row


@transaction.atomic(using=SIM_DB)
def load(scenario: Scenario) -> None:
    """Replace the whole simulated state; the scenario was validated, so nothing is half-loaded."""
    for model in (SimFile, SimTask, SimJob, SimTransformation, SimProduction, SimState, SimCatalogFile, SimRequest):
        model.objects.all().delete()
    SimProduction.objects.bulk_create(SimProduction(**p) for p in scenario.productions)
    SimTransformation.objects.bulk_create(
        (SimTransformation(**t) for t in scenario.transformations), batch_size=BATCH
    )
    group_of_job = {t["job"]: job_group(t["transformation"]) for t in scenario.tasks if t["job"]}
    # Without a last_update, a task or job was last changed when it was loaded: a load is how
    # time passes in DIRAC, so a delta read since before the load sees everything it set.
    now = dirac_now()
    # A job's InputData defaults to the files of its task, as DIRAC's JobDB has them at submission.
    task_of_job = {t["job"]: (t["transformation"], t["task"]) for t in scenario.tasks if t["job"]}
    files_of_task: dict[tuple[int, int], list[str]] = {}
    for f in scenario.files:
        if f["task"] is not None:
            files_of_task.setdefault((f["transformation"], f["task"]), []).append(f["lfn"])
    SimJob.objects.bulk_create(
        (
            SimJob(
                job_group=group_of_job.get(j["id"], "00000000"),
                input_data=j.get("input_data", files_of_task.get(task_of_job.get(j["id"]), [])),
                input_data_given="input_data" in j,
                **_when({k: v for k, v in j.items() if k != "input_data"}, now),
            )
            for j in scenario.jobs
        ),
        batch_size=BATCH,
    )
    SimTask.objects.bulk_create((SimTask(**_when(t, now)) for t in scenario.tasks), batch_size=BATCH)
    if any("last_update" in row for row in (*scenario.tasks, *scenario.jobs)):
        SimState.objects.create(key=DUMP_LAST_UPDATE, value="1")
    SimFile.objects.bulk_create((SimFile(**f) for f in scenario.files), batch_size=BATCH)
    if scenario.catalog is not None:
        SimState.objects.create(key=CATALOG_KNOWN, value="1")
        SimCatalogFile.objects.bulk_create(
            (
                SimCatalogFile(
                    lfn=c["lfn"],
                    metadata=c.get("metadata", {}),
                    ancestors=c.get("ancestors", []),
                    job=catalog_job(c.get("metadata")),
                )
                for c in scenario.catalog
            ),
            batch_size=BATCH,
        )
    if scenario.requests is not None:
        SimState.objects.create(key=REQUESTS_KNOWN, value="1")
        SimRequest.objects.bulk_create((SimRequest(**r) for r in scenario.requests), batch_size=BATCH)


def catalog_job(metadata: dict | None) -> str | None:
    """The ``jobID`` metadata as the text DIRAC's catalogue compares (None: no jobID)."""
    value = (metadata or {}).get("jobID")
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def dump() -> Scenario:
    # Sorted in Python, not by the database: PostgreSQL's locale collation orders LFNs otherwise.
    scenario = _read_all()
    scenario.files.sort(key=lambda f: (f["transformation"], f["lfn"]))
    if SimState.objects.filter(key=DUMP_LAST_UPDATE).exists():
        task_times = {
            (t, k): when for t, k, when in SimTask.objects.values_list("transformation", "task", "last_update")
        }
        job_times = dict(SimJob.objects.values_list("id", "last_update"))
        for t in scenario.tasks:
            t["last_update"] = _text_time(task_times[(t["transformation"], t["task"])])
        for j in scenario.jobs:
            j["last_update"] = _text_time(job_times[j["id"]])
    _dump_recovery(scenario)
    return scenario


def _dump_recovery(scenario: Scenario) -> None:
    """The recovery keys, each only where the loaded scenario had it."""
    data = {
        jid: (given, inputs, outputs)
        for jid, given, inputs, outputs in SimJob.objects.values_list(
            "id", "input_data_given", "input_data", "output_data"
        ).filter(Q(input_data_given=True) | Q(output_data__isnull=False))
    }
    for j in scenario.jobs:
        if j["id"] in data:
            given, inputs, outputs = data[j["id"]]
            if given:
                j["input_data"] = list(inputs)
            if outputs is not None:
                j["output_data"] = list(outputs)
    known = set(SimState.objects.filter(key__in=[CATALOG_KNOWN, REQUESTS_KNOWN]).values_list("key", flat=True))
    if CATALOG_KNOWN in known:
        catalog = []
        for lfn, metadata, ancestors in SimCatalogFile.objects.values_list("lfn", "metadata", "ancestors"):
            entry: dict = {"lfn": lfn}
            if metadata:
                entry["metadata"] = metadata
            if ancestors:
                entry["ancestors"] = ancestors
            catalog.append(entry)
        scenario.catalog = sorted(catalog, key=lambda c: c["lfn"])
    if REQUESTS_KNOWN in known:
        scenario.requests = list(SimRequest.objects.order_by("job").values("job", "status"))


def _text_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime(LAST_UPDATE_FORMAT)


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
