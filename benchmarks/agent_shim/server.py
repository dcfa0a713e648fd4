"""The simulated DIRAC services the agent talks to, answering from the simulator's SQLite file.

Runs in the agent's virtual environment: standard library only (plus DIRAC's JSON encoder for the
one RPC whose answer DIRAC sends JSON-encoded). The tables are the product simulator's own
(failover/simulated/models.py), read and written in place on a copy of the benchmark state, so
both contenders start from the very same rows and leave comparable rows behind.

Each method below answers one RPC the way DIRAC's service does as seen by a client over dips://
(tuples and integer keys kept), restated from DIRAC 9.1's documented service interfaces (the
TransformationManager, JobMonitoring and ProductionManager handlers); it is our own code, not DIRAC's.
Only the RPCs the agent's cycle makes are served; any
other name fails like DIRAC's "Unknown method".
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence

TRANSFORMATIONS = "simdirac_simtransformation"
FILES = "simdirac_simfile"
TASKS = "simdirac_simtask"
JOBS = "simdirac_simjob"

# Job attribute names as DIRAC spells them, to our columns.
JOB_COLUMNS = {"Status": "status", "MinorStatus": "minor_status", "ApplicationStatus": "application_status",
               "Site": "site"}
TRANSFORMATION_COLUMNS = {"TransformationID": "id", "TransformationName": "name", "Type": "type",
                          "Status": "status", "GroupSize": "group_size"}
# The simulator has no creation times; every row gets this one.
EPOCH = dt.datetime(2026, 1, 1, 0, 0, 0)
# The simulator keeps no workflow body. A real Body is tens of kB of XML that the agent fetches
# with every selection page and every Transformation object; we send a stand-in, and since no
# answer is serialised here, its size would not cost time anyway (this favours the agent).
BODY = "<Workflow><!-- benchmark stand-in for the job workflow --></Workflow>"
SQL_CHUNK = 900


def ok(value=None) -> dict:
    return {"OK": True, "Value": value}


def error(message: str) -> dict:
    return {"OK": False, "Message": message, "Errno": 0}


def _chunks(items: Sequence, size: int = SQL_CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, list | tuple | set):
        return list(value)
    return [value]


class SimDiracServer:
    """One process-wide server: a single SQLite connection behind a lock, like one DB host.

    The injected latency is paid by the caller (the transport) outside this lock, so the agent's
    threads wait for the network in parallel, as they would against real services.
    """

    def __init__(self, path: str, *, only: Iterable[int] | None = None):
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.lock = threading.RLock()
        # A subset of transformations that getTransformations selects (the agent's cycle is then
        # limited to them); reads by id still see every row, as parents may lie outside.
        self.only = sorted(set(only)) if only is not None else None
        self.writes = {"tasks_set": 0, "files_set": 0, "transformation_status_set": 0}
        # Seconds spent answering (under the lock, so never overlapping), latency excluded.
        self.busy = 0.0

    # -- dispatch -----------------------------------------------------------------------------
    def call(self, service: str, method: str, args: tuple) -> dict:
        handler = getattr(self, f"{_service_prefix(service)}__{method}", None)
        if handler is None:
            return error(f"Unknown method {method} of {service}")
        with self.lock:
            t0 = time.perf_counter()
            try:
                return handler(*args)
            except sqlite3.Error as exc:  # an answer, not a crash, as a DIRAC service gives
                return error(f"simulated DB error: {exc}")
            finally:
                self.busy += time.perf_counter() - t0

    def _rows(self, sql: str, params: Sequence = ()) -> list[tuple]:
        return self.db.execute(sql, params).fetchall()

    # -- Transformation/TransformationManager -------------------------------------------------
    def _transformation_dict(self, row: tuple) -> dict:
        tid, name, ttype, status, group_size = row
        return {
            "TransformationID": tid,
            "TransformationName": name,
            "Description": "",
            "LongDescription": "",
            "CreationDate": EPOCH,
            "LastUpdate": EPOCH,
            "Author": "benchmark",
            "AuthorGroup": "ctao_prod",
            "Type": ttype,
            "Plugin": "Standard",
            "AgentType": "Automatic",
            "Status": status,
            "FileMask": "",
            "TransformationGroup": "General",
            "TransformationFamily": "0",
            "GroupSize": float(group_size),
            "InheritedFrom": 0,
            "Body": BODY,
            "MaxNumberOfTasks": 0,
            "EventsPerTask": 0,
        }

    def _select_transformations(self, cond: dict, *, for_selection: bool) -> list[tuple]:
        where, params = [], []
        for key, column in TRANSFORMATION_COLUMNS.items():
            if key in cond:
                values = _as_list(cond[key])
                where.append(f"{column} IN ({','.join('?' * len(values))})")
                params.extend(values)
        sql = f"SELECT id, name, type, status, group_size FROM {TRANSFORMATIONS}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._rows(sql + " ORDER BY id", params)
        if for_selection and self.only is not None:
            keep = set(self.only)
            rows = [r for r in rows if r[0] in keep]
        return rows

    def TM__getTransformations(self, condDict=None, older=None, newer=None, timeStamp=None, orderAttribute=None,
                               limit=None, extraParams=False, offset=None, columns=None):
        rows = self._select_transformations(condDict or {}, for_selection="TransformationID" not in (condDict or {}))
        start = offset or 0
        rows = rows[start : start + limit] if limit else rows[start:]
        out = [self._transformation_dict(r) for r in rows]
        if columns:
            out = [{k: d[k] for k in columns if k in d} for d in out]
        return ok(out)

    def _one_transformation(self, trans) -> tuple | None:
        column = "id" if isinstance(trans, int) or str(trans).isdigit() else "name"
        rows = self._rows(f"SELECT id, name, type, status, group_size FROM {TRANSFORMATIONS} WHERE {column} = ?",
                          (int(trans) if column == "id" else trans,))
        return rows[0] if rows else None

    def TM__getTransformation(self, transName, extraParams=False):
        row = self._one_transformation(transName)
        if row is None:
            return error("Transformation does not exist")
        return ok(self._transformation_dict(row))

    def TM__getTransformationParameters(self, transName, parameters):
        row = self._one_transformation(transName)
        if row is None:
            return error("Transformation does not exist")
        d = self._transformation_dict(row)
        if isinstance(parameters, str):
            return ok(d[parameters]) if parameters in d else error(f"Parameter {parameters} not defined")
        return ok({p: d[p] for p in parameters if p in d})

    def _set_status(self, trans, status: str) -> dict:
        row = self._one_transformation(trans)
        if row is None:
            return error("Transformation does not exist")
        self.db.execute(f"UPDATE {TRANSFORMATIONS} SET status = ? WHERE id = ?", (status, row[0]))
        self.writes["transformation_status_set"] += 1
        return ok()

    def TM__setTransformationParameter(self, transName, paramName, paramValue):
        if paramName != "Status":
            return ok()  # the agent sets nothing else; other parameters are not simulated
        return self._set_status(transName, paramValue)

    def TM__completeTransformation(self, transName):
        return self._set_status(transName, "Completed")

    def TM__getTransformationStats(self, transName):
        row = self._one_transformation(transName)
        if row is None:
            return error("Transformation does not exist")
        stats = {
            status: n
            for status, n in self._rows(
                f"SELECT status, COUNT(*) FROM {FILES} WHERE transformation = ? GROUP BY status", (row[0],)
            )
            if "-" not in status
        }
        stats["Total"] = sum(stats.values())
        return ok(stats)

    def TM__getTransformationTasks(self, condDict=None, older=None, newer=None, timeStamp=None, orderAttribute=None,
                                   limit=None, inputVector=False, offset=None):
        cond = condDict or {}
        where, params = [], []
        if "TransformationID" in cond:
            ids = _as_list(cond["TransformationID"])
            where.append(f"transformation IN ({','.join('?' * len(ids))})")
            params.extend(ids)
        if "ExternalStatus" in cond:
            statuses = _as_list(cond["ExternalStatus"])
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            params.extend(statuses)
        sql = f"SELECT transformation, task, job, status FROM {TASKS}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY transformation, task"
        if limit:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset or 0)}"
        return ok(
            [
                {
                    "TaskID": task,
                    "TransformationID": tid,
                    "ExternalStatus": status,
                    "ExternalID": str(job),
                    "TargetSE": "Unknown",
                    "CreationTime": EPOCH,
                    "LastUpdateTime": EPOCH,
                }
                for tid, task, job, status in self._rows(sql, params)
            ]
        )

    def TM__setTaskStatus(self, transName, taskID, status):
        row = self._one_transformation(transName)
        if row is None:
            return error("Transformation does not exist")
        ids = _as_list(taskID)
        for chunk in _chunks(ids):
            cur = self.db.execute(
                f"UPDATE {TASKS} SET status = ? WHERE transformation = ? AND task IN ({','.join('?' * len(chunk))})",
                (status, row[0], *chunk),
            )
            self.writes["tasks_set"] += cur.rowcount
        return ok()

    def TM__getTransformationFiles(self, condDict=None, older=None, newer=None, timeStamp=None, orderAttribute=None,
                                   limit=None, offset=None, columns=None):
        # DIRAC's service answers this one JSON-encoded (its DEncode is too slow for millions of
        # files); the client decodes it with DIRAC's own jdecode.
        from DIRAC.Core.Utilities.JEncode import encode

        cond = condDict or {}
        where, params = [], []
        for key, column in (("TransformationID", "transformation"), ("Status", "status"), ("TaskID", "task"),
                            ("LFN", "lfn"), ("FileID", "id")):
            if key in cond:
                values = _as_list(cond[key])
                if not values:
                    return ok(encode(ok([])))
                where.append(f"{column} IN ({','.join('?' * len(values))})")
                params.extend(values)
        sql = f"SELECT id, transformation, lfn, status, task, error_count FROM {FILES}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        if limit:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset or 0)}"
        files = [
            {
                "LFN": lfn,
                "TransformationID": tid,
                "FileID": fid,
                "Status": status,
                "TaskID": task,
                "TargetSE": "Unknown",
                "UsedSE": "Unknown",
                "ErrorCount": errors,
                "LastUpdate": EPOCH,
                "InsertedTime": EPOCH,
            }
            for fid, tid, lfn, status, task, errors in self._rows(sql, params)
        ]
        if columns:
            files = [{k: f[k] for k in columns if k in f} for f in files]
        return ok(encode(ok(files)))

    def TM__setFileStatusForTransformation(self, transName, dictOfNewFilesStatus):
        row = self._one_transformation(transName)
        if row is None:
            return error("Transformation does not exist")
        changed = 0
        for file_id, (status, in_error) in dictOfNewFilesStatus.items():
            cur = self.db.execute(
                f"UPDATE {FILES} SET status = ?, error_count = error_count + ? WHERE transformation = ? AND id = ?",
                (status, 1 if in_error else 0, row[0], int(file_id)),
            )
            changed += cur.rowcount
        self.writes["files_set"] += changed
        return ok({})

    def TM__get_tasks_by_file_status(self, trans_id, file_status, task_status=None):
        # CTADIRAC's extension answers raw SQL rows: one 1-tuple per TaskID (tuples over dips).
        sql = (f"SELECT t.task FROM {TASKS} t WHERE t.transformation = ? AND t.task IN "
               f"(SELECT f.task FROM {FILES} f WHERE f.transformation = ? AND f.status = ? GROUP BY f.task)")
        params: list = [trans_id, trans_id, file_status]
        if task_status:
            sql += f" AND t.status IN ({','.join('?' * len(task_status))})"
            params.extend(task_status)
        return ok(tuple(tuple(r) for r in self._rows(sql, params)))

    # -- Production/ProductionManager (CTADIRAC's extension) ----------------------------------
    def PM__get_parent_transformation(self, trans_id):
        rows = self._rows(f"SELECT parent FROM {TRANSFORMATIONS} WHERE id = ?", (trans_id,))
        if not rows or rows[0][0] is None:
            return ok(())  # no link row: not created by the Production System
        return ok(((rows[0][0],),))

    # -- WorkloadManagement/JobMonitoring -----------------------------------------------------
    def JM__getJobsParameters(self, jobIDs, attrList):
        # Gone from DIRAC 9.1 (reference 5.1); answered as older releases did, which is what the
        # agent was written against: {jobID: {attribute: value}}, unknown jobs absent.
        columns = [JOB_COLUMNS[a] for a in attrList if a in JOB_COLUMNS]
        names = [a for a in attrList if a in JOB_COLUMNS]
        ids = [int(j) for j in _as_list(jobIDs)]
        out: dict[int, dict] = {}
        for chunk in _chunks(ids):
            for row in self._rows(
                f"SELECT id, {', '.join(columns)} FROM {JOBS} WHERE id IN ({','.join('?' * len(chunk))})", chunk
            ):
                out[row[0]] = dict(zip(names, row[1:]))
        return ok(out)

    def JM__getJobsStates(self, jobIDs):
        ids = [int(j) for j in _as_list(jobIDs)]
        out: dict[int, dict] = {}
        for chunk in _chunks(ids):
            for jid, s, m, a in self._rows(
                f"SELECT id, status, minor_status, application_status FROM {JOBS} "
                f"WHERE id IN ({','.join('?' * len(chunk))})", chunk
            ):
                out[jid] = {"Status": s, "MinorStatus": m, "ApplicationStatus": a}
        return ok(out)

    # -- Framework/Notification ---------------------------------------------------------------
    def NS__sendMail(self, address, subject, body, fromAddress=None):
        return ok("mail accepted by the simulated Notification service")

    # -- what the state looks like (for the benchmark's cross-check) ------------------------
    def summary(self) -> dict:
        with self.lock:
            return state_summary(self.db)


def _service_prefix(service: str) -> str:
    return {
        "Transformation/TransformationManager": "TM",
        "Production/ProductionManager": "PM",
        "WorkloadManagement/JobMonitoring": "JM",
        "Framework/Notification": "NS",
    }.get(service, "unknown")


def state_summary(db: sqlite3.Connection, only: Iterable[int] | None = None) -> dict:
    """Counts that show what a cycle changed; the contenders' states are compared with these.

    ``only``: count only these transformations (when the agent ran on a subset).
    """
    ids = sorted(set(only)) if only is not None else None
    flt = f" IN ({','.join(str(int(i)) for i in ids)})" if ids is not None else None
    t_where = f" WHERE id{flt}" if flt else ""
    f_where = f" WHERE transformation{flt}" if flt else ""
    k_where = f" AND t.transformation{flt}" if flt else ""
    q = db.execute
    return {
        "transformations_by_status": dict(
            q(f"SELECT status, COUNT(*) FROM {TRANSFORMATIONS}{t_where} GROUP BY status")
        ),
        "files_by_status": dict(q(f"SELECT status, COUNT(*) FROM {FILES}{f_where} GROUP BY status")),
        "files_error_count_sum": q(f"SELECT COALESCE(SUM(error_count), 0) FROM {FILES}{f_where}").fetchone()[0],
        "tasks_behind_their_job": q(
            f"SELECT COUNT(*) FROM {TASKS} t JOIN {JOBS} j ON j.id = t.job WHERE t.status != j.status{k_where}"
        ).fetchone()[0],
    }
