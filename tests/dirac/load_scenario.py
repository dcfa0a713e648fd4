"""Fill real DIRAC services from one of our scenarios (docs/scenario.md).

Test set-up only: it runs with the DIRAC venv's python (``DIRAC_TEST_PYTHON``) next to the services
started by ``tests/dirac/services.sh``. What DIRAC's RPCs can create is created through them
(productions, transformations, files, tasks in TaskID order); what no RPC can write exactly as a
scenario says is written with SQL straight into the DIRAC databases:

- parent links (``ProductionTransformationLinks``): ``addTransformationsToProduction`` only links a
  child to a parent whose meta-queries match, so children are linked with -1 and then corrected;
- the production's status (``setProductionStatus`` would start or stop its transformations);
- file Status and ErrorCount (the state machine would otherwise rewrite them), task ExternalStatus
  and ExternalID;
- jobs: ``JobJDLs`` gives the id (auto-increment, as ``JobDB.insertNewJobIntoDB`` does) and
  ``Jobs`` holds Status, MinorStatus, ApplicationStatus, Site and JobGroup, which a submitted job
  only reaches through agents we do not run; plus each job's first ``LoggingInfo`` row in the
  JobLoggingDB, as submission writes it (JobStateUpdate's status reports need one);
- a task's or job's optional ``last_update`` as its LastUpdateTime (else the load time);
- recovery: a job's ``InputData`` rows (its ``input_data``, else its task's files); a request's
  status (``putRequest`` makes it Waiting). The rest goes through RPCs: ``ProductionOutputData``
  (JobStateUpdate ``setJobParameter``), the catalogue (FileCatalog ``addFile``,
  ``setMetadataBulk`` with ``jobID`` mapped to the real job id, ``addFileAncestors``), requests
  (ReqManager ``putRequest``).

DIRAC assigns its own ids, so ``load()`` returns a ``LoadedScenario`` that maps scenario ids to the
real ones. Task numbers are kept: tasks are created in order 1..n per transformation.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any

# Tables emptied by reset(), children before parents.
_TABLES = {
    "TransformationDB": [
        "TransformationFileTasks",
        "TaskInputs",
        "TransformationTasks",
        "TransformationFiles",
        "DataFiles",
        "TransformationLog",
        "AdditionalParameters",
        "TransformationMetaQueries",
        "Transformations",
    ],
    "ProductionDB": [
        "ProductionTransformationLinks",
        "ProductionTransformations",
        "ProductionSteps",
        "Productions",
    ],
    "JobDB": [
        "InputData",
        "OptimizerParameters",
        "AtticJobParameters",
        "JobCommands",
        "HeartBeatLoggingInfo",
        "Jobs",
        "JobJDLs",
    ],
    "JobLoggingDB": ["LoggingInfo"],
    "ReqDB": ["File", "Operation", "Request"],
    # The File Catalog's files (directories and metadata field definitions stay); the file
    # metadata tables FC_FileMeta_<field> are found at reset time.
    "FileCatalogDB": [
        "FC_FileAncestors",
        "FC_FileMeta",
        "FC_ReplicaInfo",
        "FC_Replicas",
        "FC_FileInfo",
        "FC_Files",
        "FC_DirectoryUsage",
    ],
}
# The storage element the loader's catalogue replicas name (the DFC records it, nothing reads it).
TEST_SE = "CTAO-TEST-SE"


@dataclass
class LoadedScenario:
    """Scenario ids to the ids DIRAC assigned."""

    transformations: dict[int, int] = field(default_factory=dict)
    jobs: dict[int, int] = field(default_factory=dict)
    productions: dict[int, int] = field(default_factory=dict)

    def tid(self, scenario_id: int) -> int:
        return self.transformations[scenario_id]

    def job(self, scenario_id: int) -> int:
        return self.jobs[scenario_id] if scenario_id else 0

    def parent(self, scenario_parent: int | None) -> int | None:
        if scenario_parent is None or scenario_parent == -1:
            return scenario_parent
        return self.transformations[scenario_parent]

    @property
    def scenario_transformation(self) -> dict[int, int]:
        return {real: sid for sid, real in self.transformations.items()}

    @property
    def scenario_job(self) -> dict[int, int]:
        return {real: sid for sid, real in self.jobs.items()}


class LoadError(RuntimeError):
    pass


def db_connect(database: str):
    """A MySQLdb connection to one DIRAC database, from the DIRAC_TEST_DB_* variables."""
    import MySQLdb

    return MySQLdb.connect(
        host=os.environ.get("DIRAC_TEST_DB_HOST", "127.0.0.1"),
        port=int(os.environ.get("DIRAC_TEST_DB_PORT", "13306")),
        user=os.environ.get("DIRAC_TEST_DB_USER", "Dirac"),
        passwd=os.environ.get("DIRAC_TEST_DB_PASSWORD", "dirac-test-password"),
        db=database,
        autocommit=True,
    )


def reset() -> None:
    """Empty every table the loader and the adapter touch, so each test starts clean.

    DELETE, not TRUNCATE: the auto-increment counters keep growing, so real ids differ from one
    test to the next and from scenario ids, and a mapping mistake cannot pass by luck.
    """
    for database, tables in _TABLES.items():
        conn = db_connect(database)
        try:
            cur = conn.cursor()
            cur.execute("SET FOREIGN_KEY_CHECKS = 0")
            if database == "FileCatalogDB":
                cur.execute("SHOW TABLES LIKE 'FC\\_FileMeta\\_%'")
                tables = [row[0] for row in cur.fetchall()] + tables
            for table in tables:
                cur.execute(f"DELETE FROM `{table}`")
            cur.execute("SET FOREIGN_KEY_CHECKS = 1")
        finally:
            conn.close()


def _ok(result: dict, what: str) -> Any:
    if not result.get("OK"):
        raise LoadError(f"{what}: {result.get('Message')}")
    return result.get("Value")


def _clients():
    import DIRAC

    if not getattr(_clients, "initialised", False):
        DIRAC.initialize()
        _clients.initialised = True
    from DIRAC.ProductionSystem.Client.ProductionClient import ProductionClient
    from DIRAC.TransformationSystem.Client.TransformationClient import TransformationClient

    return TransformationClient(), ProductionClient()


def load(scenario: dict[str, Any], *, clean: bool = True) -> LoadedScenario:
    """Create the scenario's state in the real services; returns the id mapping."""
    if clean:
        reset()
    tc, pc = _clients()
    ids = LoadedScenario()
    transformations = sorted(scenario.get("transformations", []), key=lambda t: t["id"])
    files = scenario.get("files", [])
    tasks = scenario.get("tasks", [])
    jobs = sorted(scenario.get("jobs", []), key=lambda j: j["id"])
    by_id = {t["id"]: t for t in transformations}

    # -- transformations (created New; the status is set at the end) --
    for t in transformations:
        real = _ok(
            tc.addTransformation(
                t["name"],
                t.get("description", t["name"]),
                "",
                t["type"],
                t.get("plugin", "Standard"),
                "Manual",
                "",
                groupSize=t["group_size"],
                addFiles=False,
            ),
            f"addTransformation {t['name']}",
        )
        ids.transformations[t["id"]] = int(real)

    # -- productions and parent links --
    members: dict[int, list[dict]] = defaultdict(list)
    for t in transformations:
        if t.get("production") is not None:
            members[t["production"]].append(t)
    for p in sorted(scenario.get("productions", []), key=lambda p: p["id"]):
        # Description as ProductionClient writes it: step name to {stepID, parentStep}; our step
        # names are the transformation names (the adapter's fallback accepts both spellings).
        description = {
            t["name"]: {
                "stepID": n,
                "parentStep": [by_id[t["parent"]]["name"]]
                if t.get("parent") not in (None, -1) and t["parent"] in by_id
                else [],
            }
            for n, t in enumerate(members.get(p["id"], []), start=1)
        }
        real = _ok(pc.addProduction(p["name"], json.dumps(description)), f"addProduction {p['name']}")
        ids.productions[p["id"]] = int(real)
        if members.get(p["id"]):
            _ok(
                pc.addTransformationsToProduction(
                    int(real), [ids.tid(t["id"]) for t in members[p["id"]]], []
                ),
                f"addTransformationsToProduction {p['name']}",
            )
    with_parent = [t for t in transformations if t.get("parent") not in (None, -1)]
    conn = db_connect("ProductionDB")
    try:
        cur = conn.cursor()
        for t in with_parent:
            cur.execute(
                "UPDATE ProductionTransformationLinks SET ParentTransformationID=%s WHERE TransformationID=%s",
                (ids.tid(t["parent"]), ids.tid(t["id"])),
            )
        for p in scenario.get("productions", []):
            if p.get("status"):
                cur.execute(
                    "UPDATE Productions SET Status=%s WHERE ProductionID=%s",
                    (p["status"], ids.productions[p["id"]]),
                )
    finally:
        conn.close()

    # -- jobs: JobJDLs gives the id, Jobs holds the state --
    conn = db_connect("JobDB")
    logging_rows: list[tuple] = []
    try:
        cur = conn.cursor()
        job_group = _job_groups(tasks, ids)
        for j in jobs:
            cur.execute(
                "INSERT INTO JobJDLs (JDL, JobRequirements, OriginalJDL) VALUES ('', '', '')"
            )
            real = int(cur.lastrowid)
            ids.jobs[j["id"]] = real
            group, name = job_group.get(j["id"], ("00000000", f"job_{j['id']}"))
            # last_update (optional, "YYYY-MM-DD HH:MM:SS" UTC): DIRAC's LastUpdateTime; else now.
            cur.execute(
                "INSERT INTO Jobs (JobID, JobType, JobGroup, Site, JobName, Owner, OwnerGroup, VO,"
                " SubmissionTime, LastUpdateTime, Status, MinorStatus, ApplicationStatus)"
                " VALUES (%s, 'MCSimulation', %s, %s, %s, 'ciuser', 'prod', 'fdtest',"
                " UTC_TIMESTAMP(), COALESCE(%s, UTC_TIMESTAMP()), %s, %s, %s)",
                (
                    real,
                    group,
                    j.get("site") or "ANY",
                    name,
                    _last_update(j),
                    j.get("status", "Received"),
                    j.get("minor_status") or "Unknown",
                    j.get("application_status") or "Unknown",
                ),
            )
            # The job's first JobLoggingDB record, as submission writes it: JobStateUpdate's
            # status updates (JobStatusUtility) refuse a job without one.
            cur.execute("SELECT LastUpdateTime FROM Jobs WHERE JobID=%s", (real,))
            (when,) = cur.fetchone()
            logging_rows.append(
                (real, j.get("status", "Received"), j.get("minor_status") or "Unknown",
                 j.get("application_status") or "Unknown", when,
                 when.replace(tzinfo=timezone.utc).timestamp() - _MAGIC_EPOC_NUMBER)
            )
    finally:
        conn.close()
    conn = db_connect("JobLoggingDB")
    try:
        cur = conn.cursor()
        for row in logging_rows:
            cur.execute(
                "INSERT INTO LoggingInfo (JobID, Status, MinorStatus, ApplicationStatus, StatusTime,"
                " StatusTimeOrder, StatusSource) VALUES (%s, %s, %s, %s, %s, %s, 'JobManager')",
                row,
            )
    finally:
        conn.close()

    # -- files and tasks, per transformation --
    files_by_t: dict[int, list[dict]] = defaultdict(list)
    for f in files:
        files_by_t[f["transformation"]].append(f)
    tasks_by_t: dict[int, dict[int, dict]] = defaultdict(dict)
    for k in tasks:
        tasks_by_t[k["transformation"]][k["task"]] = k
    conn = db_connect("TransformationDB")
    try:
        cur = conn.cursor()
        for sid in by_id:
            real = ids.tid(sid)
            tfiles = files_by_t.get(sid, [])
            if tfiles:
                _ok(
                    tc.addFilesToTransformation(real, [f["lfn"] for f in tfiles]),
                    f"addFilesToTransformation {sid}",
                )
            ttasks = tasks_by_t.get(sid, {})
            held: dict[int, list[str]] = defaultdict(list)
            for f in tfiles:
                if f.get("task") is not None:
                    held[f["task"]].append(f["lfn"])
            last = max([*ttasks, *held], default=0)
            fillers = []
            for n in range(1, last + 1):
                # DIRAC numbers tasks itself (MAX+1): create every number, drop the gaps after.
                got = _ok(tc.addTaskForTransformation(real, held.get(n, [])), f"addTaskForTransformation {sid}/{n}")
                if int(got) != n:
                    raise LoadError(f"transformation {sid}: DIRAC gave task {got}, expected {n}")
                if n not in ttasks:
                    fillers.append(n)
            for n, k in ttasks.items():
                cur.execute(
                    "UPDATE TransformationTasks SET ExternalStatus=%s, ExternalID=%s,"
                    " LastUpdateTime=COALESCE(%s, LastUpdateTime)"
                    " WHERE TransformationID=%s AND TaskID=%s",
                    (k.get("status", "Created"), str(ids.job(k.get("job") or 0)), _last_update(k), real, n),
                )
            if fillers:
                cur.execute(
                    "DELETE FROM TransformationTasks WHERE TransformationID=%s AND TaskID IN ({})".format(
                        ",".join(str(n) for n in fillers)
                    ),
                    (real,),
                )
            for f in tfiles:
                cur.execute(
                    "UPDATE TransformationFiles tf JOIN DataFiles d ON d.FileID = tf.FileID"
                    " SET tf.Status=%s, tf.ErrorCount=%s WHERE tf.TransformationID=%s AND d.LFN=%s",
                    (f.get("status", "Unused"), int(f.get("error_count") or 0), real, f["lfn"]),
                )
    finally:
        conn.close()

    # -- transformation statuses last (through the RPC, as an operator would) --
    for t in transformations:
        if t.get("status", "New") != "New":
            _ok(
                tc.setTransformationParameter(ids.tid(t["id"]), "Status", t["status"], force=True),
                f"set status of {t['id']}",
            )
    _load_job_data(jobs, tasks, files, ids)
    _load_catalog(scenario.get("catalog"), ids)
    _load_requests(scenario.get("requests"), ids)
    return ids


def _load_job_data(jobs: list[dict], tasks: list[dict], files: list[dict], ids: LoadedScenario) -> None:
    """JobDB InputData rows (given, else the files of the job's task, as submission of the task's
    JDL writes them) and the ProductionOutputData job parameter (through JobStateUpdate, into the
    job-parameters store JobMonitoring reads)."""
    task_of_job = {k["job"]: (k["transformation"], k["task"]) for k in tasks if k.get("job")}
    files_of_task: dict[tuple[int, int], list[str]] = defaultdict(list)
    for f in files:
        if f.get("task") is not None:
            files_of_task[(f["transformation"], f["task"])].append(f["lfn"])
    rows = []
    for j in jobs:
        inputs = j.get("input_data")
        if inputs is None:
            inputs = files_of_task.get(task_of_job.get(j["id"]), [])
        rows.extend((ids.job(j["id"]), lfn) for lfn in dict.fromkeys(inputs))
    if rows:
        conn = db_connect("JobDB")
        try:
            conn.cursor().executemany("INSERT INTO InputData (JobID, LFN) VALUES (%s, %s)", rows)
        finally:
            conn.close()
    outputs = [j for j in jobs if j.get("output_data") is not None]
    if outputs:
        from DIRAC.Core.Base.Client import Client

        jsu = Client(url="WorkloadManagement/JobStateUpdate")
        for j in outputs:
            _ok(
                jsu.setJobParameter(ids.job(j["id"]), "ProductionOutputData", ",".join(j["output_data"])),
                f"setJobParameter ProductionOutputData of job {j['id']}",
            )


def _catalog_client():
    from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient

    return FileCatalogClient("DataManagement/FileCatalog")


def _load_catalog(catalog: list[dict] | None, ids: LoadedScenario) -> None:
    """Register the scenario's catalogue in the DFC: each LFN with one replica, its user metadata
    (``jobID`` as CTADIRAC's putAndRegister sets it, mapped to the job's real id) and ancestors."""
    if not catalog:
        return
    import uuid

    fc = _catalog_client()
    fields = _ok(fc.getMetadataFields(), "getMetadataFields")["FileMetaFields"]
    metadata: dict[str, dict] = {}
    for c in catalog:
        meta = dict(c.get("metadata") or {})
        if "jobID" in meta:
            meta["jobID"] = _real_job_id(meta["jobID"], ids)
        for key, value in meta.items():
            if key not in fields:
                kind = "INT" if isinstance(value, int) else "FLOAT" if isinstance(value, float) else "VARCHAR(128)"
                # CTADIRAC's jobID is a string field (VARCHAR), as the contract has it.
                _ok(fc.addMetadataField(key, kind, "-f"), f"addMetadataField {key}")
                fields[key] = kind
        if meta:
            metadata[c["lfn"]] = meta
    lfns = [c["lfn"] for c in catalog]
    for start in range(0, len(lfns), 500):
        chunk = {
            lfn: {"PFN": "", "SE": TEST_SE, "Size": 1, "Checksum": "00000001", "GUID": str(uuid.uuid4())}
            for lfn in lfns[start : start + 500]
        }
        added = _ok(fc.addFile(chunk), "addFile")
        if added["Failed"]:
            lfn, why = next(iter(added["Failed"].items()))
            raise LoadError(f"catalog: addFile {lfn}: {why}")
    if metadata:
        _ok(fc.setMetadataBulk(metadata), "setMetadataBulk")
    ancestors = {c["lfn"]: {"Ancestors": c["ancestors"]} for c in catalog if c.get("ancestors")}
    if ancestors:
        added = _ok(fc.addFileAncestors(ancestors), "addFileAncestors")
        if added["Failed"]:
            lfn, why = next(iter(added["Failed"].items()))
            raise LoadError(f"catalog: ancestors of {lfn}: {why}")


def _real_job_id(value: Any, ids: LoadedScenario) -> str:
    """A scenario's jobID metadata (a scenario job id) as the real job's id, as a string."""
    try:
        sid = int(str(value).strip())
    except ValueError:
        return str(value)
    return str(ids.jobs.get(sid, sid))


# ReqDB's Request.Status column is an enum of these.
_REQUEST_STATUSES = {"Waiting", "Assigned", "Done", "Failed", "Canceled", "Scheduled"}


def _load_requests(requests: list[dict] | None, ids: LoadedScenario) -> None:
    """One RMS request per listed job, put through ReqManager (a failover request as a job's
    last module puts it: one RegisterFile operation), then given the scenario's status in SQL."""
    if not requests:
        return
    import uuid

    from DIRAC.RequestManagementSystem.Client.File import File
    from DIRAC.RequestManagementSystem.Client.Operation import Operation
    from DIRAC.RequestManagementSystem.Client.ReqClient import ReqClient
    from DIRAC.RequestManagementSystem.Client.Request import Request

    client = ReqClient()
    statuses = []
    for r in requests:
        if r["status"] not in _REQUEST_STATUSES:
            raise LoadError(f"requests: status {r['status']!r} is not one ReqDB keeps ({sorted(_REQUEST_STATUSES)})")
        real = ids.job(r["job"])
        request = Request()
        request.RequestName = f"failover_job_{real}"
        request.JobID = real
        operation = Operation()
        operation.Type = "RegisterFile"
        operation.TargetSE = TEST_SE
        f = File()
        f.LFN, f.PFN, f.Size, f.Checksum, f.ChecksumType = f"/failover/job/{real}", "none", 1, "00000001", "ADLER32"
        f.GUID = str(uuid.uuid4())
        operation.addFile(f)
        request.addOperation(operation)
        request_id = _ok(client.putRequest(request, useFailoverProxy=False), f"putRequest for job {r['job']}")
        statuses.append((r["status"], int(request_id)))
    conn = db_connect("ReqDB")
    try:
        conn.cursor().executemany("UPDATE Request SET Status=%s WHERE RequestID=%s", statuses)
    finally:
        conn.close()


def load_into_dirac(scenario: dict[str, Any], *, timeout: float = 30.0):
    """For tests/contract: load the scenario, return a ``World`` around a fresh ``DiracAdapter``."""
    from failover.backends.dirac import DiracAdapter, clear_parent_cache

    ids = load(scenario)
    clear_parent_cache()
    from tests.contract.conftest import World

    return World(DiracAdapter(timeout=timeout), dict(ids.transformations), dict(ids.jobs))


# JobLoggingDB's StatusTimeOrder is seconds since the epoch minus this (JobLoggingDB.py).
_MAGIC_EPOC_NUMBER = 1270000000


def _last_update(row: dict) -> str | None:
    """A scenario row's last_update as DIRAC's SQL takes it (naive UTC), or None for now."""
    value = row.get("last_update")
    if value is None:
        return None
    from failover.simulated.scenario import validate

    # The scenario's own parsing and normalisation ("YYYY-MM-DD HH:MM:SS", UTC).
    item = {"id": 1, "status": "Received", "last_update": value}
    return validate({"jobs": [item]}).jobs[0]["last_update"]


def _job_groups(tasks: list[dict], ids: LoadedScenario) -> dict[int, tuple[str, str]]:
    """JobGroup and JobName of each job, as WorkflowTasks sets them at submission."""
    out = {}
    for k in tasks:
        if k.get("job"):
            real = ids.tid(k["transformation"])
            out[k["job"]] = (f"{real:08d}", f"{real:08d}_{k['task']:08d}")
    return out


def main(argv: list[str] | None = None) -> int:
    """`python tests/dirac/load_scenario.py SCENARIO.json|yaml` loads it and prints the id mapping."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: load_scenario.py SCENARIO.(json|yaml)", file=sys.stderr)
        return 2
    with open(args[0]) as fh:
        text = fh.read()
    if args[0].endswith((".yaml", ".yml")):
        import yaml

        scenario = yaml.safe_load(text)
    else:
        scenario = json.loads(text)
    ids = load(scenario)
    print(json.dumps({"transformations": ids.transformations, "jobs": ids.jobs, "productions": ids.productions}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
