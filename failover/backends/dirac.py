"""The real-DIRAC adapter: the ``DiracBackend`` Protocol over DIRAC 9.1's own clients.

DIRAC is imported lazily, so the product imports (and its other tests run) without DIRAC
installed. Every read is one batched call (or a few pages of one); the CTADIRAC agent's per-task
calls are avoided. ``calls`` counts the real RPCs: each RPC a DIRAC client method sends is counted
under the name of the client method the adapter called, so ``setFileStatusForTransformation``
counts its LFN-chunked reads plus its write, and ``setTransformationParameter`` its two reads plus
the write.

Clients are not shared between threads (DIRAC's Client warns against it): each thread gets its
own set. The parent links are cached once per process, and across processes in the database
when the adapter is given a link store (``get_backend`` gives it ours): a production's links
never change.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from django.template.defaultfilters import pluralize

from failover.backends.base import CallCounter, dirac_cut, file_statuses
from failover.domain import FileCounts, FileInfo, JobInfo, TaskInfo, TransformationInfo
from failover.errors import BackendError, BackendTimeout
from failover.outcomes import count

# DIRAC's paging sizes, as its clients use them.
JOB_CHUNK = 10_000
# LFNs per FileCatalog call, as DIRAC's DataRecoveryAgent asks (exists) and removes (removeFile).
CATALOGUE_CHUNK = 200
# Jobs per FileCatalog metadata query and per ReqManager call (the agent reads requests by 1000).
METADATA_JOB_CHUNK = 1000
REQUEST_CHUNK = 1000
# Who DIRAC's job logging names for a status the adapter sets (the agent writes its own name).
JOB_STATUS_SOURCE = "FailoverDashboard"
CATALOGUE_SERVICE = "DataManagement/FileCatalog"

_TRANSFORMATION_COLUMNS = ["TransformationID", "TransformationName", "Type", "Status", "GroupSize"]
_FILE_COLUMNS = ["TransformationID", "LFN", "Status", "TaskID", "ErrorCount"]

# Messages of DIRAC's transport layer that mean "no answer" rather than "answered no".
_UNREACHABLE_MARKERS = (
    "timed out",
    "timeout",
    "connection refused",
    "can't connect",
    "cannot connect",
    "connection reset",
    "broken pipe",
    "no route to host",
    "network is unreachable",
    "name or service not known",
    "url for service",
    "stop reading",
    "server error while receiving",
    "could not connect",
)

_init_lock = threading.Lock()
_initialised = False

log = logging.getLogger("failover.dirac")


class _DiracToProductLog(logging.Handler):
    """DIRAC's log records, re-emitted one line each into the product's log (``failover.dirac``).

    DIRAC's gLogger writes to standard output, with tracebacks (an SSLError's, a refused
    connection's), ahead of a command's own output: ``failover cycle --json`` was no longer JSON.
    Here a record keeps its level and its first line; the traceback goes, its exception's
    one-line message stays. The product's logging sends it to stderr (or wherever LOGGING says).
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = " ".join(p for p in (record.getMessage(), str(getattr(record, "varmessage", ""))) if p)
            lines = text.strip().splitlines()
            line = lines[0].strip() if lines else ""
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                line = f"{line} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            log.log(record.levelno, "DIRAC %s: %s", getattr(record, "customname", record.name), line[:1000])
        except Exception:  # a log line must never break a call
            pass


_TO_PRODUCT_LOG = _DiracToProductLog()


def route_dirac_logging() -> None:
    """Detach DIRAC's own log backends (stdout by default) and send its records to ours.

    Called after DIRAC is imported, after ``DIRAC.initialize()`` (which attaches the backends of
    its configuration) and before every call, since DIRAC may attach backends again; cheap when
    nothing changed. Only records of WARNING and above pass, unless LOG_LEVEL is DEBUG: DIRAC's
    "Retry connection" notices are noise next to our own one line per failure.
    """
    dirac_logger = logging.getLogger("dirac")
    if dirac_logger.handlers == [_TO_PRODUCT_LOG]:
        return
    for handler in list(dirac_logger.handlers):
        if handler is not _TO_PRODUCT_LOG:
            dirac_logger.removeHandler(handler)
    _TO_PRODUCT_LOG.setLevel(logging.DEBUG if logging.getLogger().level <= logging.DEBUG else logging.WARNING)
    dirac_logger.addHandler(_TO_PRODUCT_LOG)
    dirac_logger.propagate = False


def initialise_dirac(**kwargs: Any) -> None:
    """``DIRAC.initialize()`` once per process; raises ``BackendError`` if DIRAC cannot start."""
    global _initialised
    if _initialised:
        return
    with _init_lock:
        if _initialised:
            return
        try:
            import DIRAC
        except ImportError as exc:
            raise BackendError(
                "DIRAC is not installed in this Python (install the 'dirac' extra)",
                call="initialize",
                retriable=False,
            ) from exc
        route_dirac_logging()
        kwargs.setdefault("require_auth", False)
        if not kwargs.get("host_credentials"):
            # Without a proxy DIRAC fails later with "URL for service ... not found", which
            # sends people looking in the wrong place: say what is missing.
            path = proxy_path()
            if not os.path.isfile(path):
                raise BackendError(
                    f"no proxy at {path}: create one with dirac-proxy-init -g <group with "
                    "ProductionManagement> or set X509_USER_PROXY",
                    call="initialize",
                    retriable=False,
                )
        try:
            DIRAC.initialize(**kwargs)
        except Exception as exc:  # DIRACInitError and whatever the CS sync raises
            raise _classify(str(exc) or type(exc).__name__, "initialize") from exc
        finally:
            route_dirac_logging()
        _initialised = True


def proxy_path() -> str:
    """Where DIRAC looks for the X.509 proxy: GRID_PROXY_FILE, X509_USER_PROXY, or the default."""
    for var in ("GRID_PROXY_FILE", "X509_USER_PROXY"):
        if os.environ.get(var):
            return os.environ[var]
    return os.path.join(tempfile.gettempdir(), f"x509up_u{os.getuid()}")


def _classify(message: str, call: str) -> BackendError:
    lowered = message.lower()
    if any(marker in lowered for marker in _UNREACHABLE_MARKERS):
        return BackendTimeout(message, call=call)
    return BackendError(message, call=call)


class _ParentCache:
    """Transformation id to (production, parent); one per process, entries never change."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.links: dict[int, tuple[int | None, int | None]] = {}
        # None: not probed yet; False: the server has no CTADIRAC get_parent_transformation.
        self.ctadirac: bool | None = None

    def clear(self) -> None:
        with self.lock:
            self.links.clear()
            self.ctadirac = None


_PARENTS = _ParentCache()


def clear_parent_cache() -> None:
    """Forget the cached links (tests that empty the DIRAC databases call this)."""
    _PARENTS.clear()


class _CountingRPC:
    """Wraps one DIRAC RPC client: every remote call is counted under the current method name."""

    def __init__(self, rpc: Any, adapter: DiracAdapter) -> None:
        self._rpc = rpc
        self._adapter = adapter

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._rpc, name)
        if not callable(target) or name.startswith("_"):
            return target

        def counted(*args: Any, **kwargs: Any) -> Any:
            self._adapter.calls.add(self._adapter._current_method() or name)
            return target(*args, **kwargs)

        return counted


class DiracAdapter:
    """``DiracBackend`` over DIRAC's TransformationClient, ProductionClient, JobMonitoringClient,
    JobStateUpdateClient, FileCatalogClient and ReqClient."""

    name = "dirac"

    def __init__(
        self,
        *,
        timeout: float | None = None,
        use_ctadirac: bool | None = None,
        job_chunk: int = JOB_CHUNK,
        urls: Mapping[str, str] | None = None,
        link_store: Any = None,
        catalogue: bool | None = None,
    ) -> None:
        """``timeout``: seconds per RPC (DIRAC's default is 600). ``use_ctadirac``: None probes the
        server for CTADIRAC's get_parent_transformation, False always rebuilds links from the
        productions' descriptions. ``urls``: service URL overrides by "System/Service" name.
        ``link_store``: keeps parent links across processes (failover/backends/links.py).
        ``catalogue``: None asks the Configuration Service whether a DataManagement/FileCatalog
        URL is configured; False: treat the installation as having no catalogue."""
        self.catalogue = catalogue
        self.calls = CallCounter()
        self.timeout = timeout
        self.use_ctadirac = use_ctadirac
        self.job_chunk = job_chunk
        self.urls = dict(urls or {})
        self.link_store = link_store
        self._local = threading.local()

    # -- plumbing -------------------------------------------------------------------------------
    def _current_method(self) -> str | None:
        return getattr(self._local, "method", None)

    def _client(self, kind: str) -> Any:
        clients = getattr(self._local, "clients", None)
        if clients is None:
            clients = self._local.clients = {}
        if kind not in clients:
            initialise_dirac()
            clients[kind] = self._make_client(kind)
        return clients[kind]

    def _make_client(self, kind: str) -> Any:
        if kind == "transformation":
            from DIRAC.TransformationSystem.Client.TransformationClient import TransformationClient as cls

            service = "Transformation/TransformationManager"
        elif kind == "production":
            from DIRAC.ProductionSystem.Client.ProductionClient import ProductionClient as cls

            service = "Production/ProductionManager"
        elif kind == "jobs":
            from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import JobMonitoringClient as cls

            service = "WorkloadManagement/JobMonitoring"
        elif kind == "jobstate":
            from DIRAC.WorkloadManagementSystem.Client.JobStateUpdateClient import JobStateUpdateClient as cls

            service = "WorkloadManagement/JobStateUpdate"
        elif kind == "catalogue":
            from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient as cls

            service = CATALOGUE_SERVICE
        elif kind == "requests":
            from DIRAC.RequestManagementSystem.Client.ReqClient import ReqClient as cls

            service = "RequestManagement/ReqManager"
        else:  # pragma: no cover
            raise ValueError(kind)
        client = cls()
        if service in self.urls:
            # Not every client honours a url= keyword (JobMonitoringClient sets its own).
            client.setServer(self.urls[service])
        if self.timeout is not None:
            # The constructor's timeout keyword is not used by the explicit client methods.
            client.timeout = self.timeout
        original = client._getRPC

        def counting_get_rpc(*args: Any, **kw: Any) -> Any:
            return _CountingRPC(original(*args, **kw), self)

        client._getRPC = counting_get_rpc
        return client

    def _call(self, kind: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Run one DIRAC client method; its ``Value``, or ``BackendError``/``BackendTimeout``."""
        client = self._client(kind)
        route_dirac_logging()
        previous = self._current_method()
        self._local.method = method
        try:
            result = getattr(client, method)(*args, **kwargs)
        except BackendError:
            raise
        except Exception as exc:  # a DIRAC client bug or a transport exception
            raise _classify(f"{type(exc).__name__}: {exc}", method) from exc
        finally:
            self._local.method = previous
        if not isinstance(result, dict) or "OK" not in result:
            raise BackendError(f"unexpected answer {result!r:.200}", call=method)
        if not result["OK"]:
            raise _classify(str(result.get("Message", "")), method)
        return result.get("Value")

    # -- reads ----------------------------------------------------------------------------------
    def transformations(
        self,
        *,
        statuses: Sequence[str] | None = None,
        types: Sequence[str] | None = None,
        ids: Iterable[int] | None = None,
    ) -> list[TransformationInfo]:
        cond: dict[str, Any] = {}
        if ids is not None:
            id_list = sorted({int(i) for i in ids})
            if not id_list:
                return []
            cond["TransformationID"] = id_list
        if statuses is not None:
            if not statuses:
                return []
            cond["Status"] = list(statuses)
        if types is not None:
            if not types:
                return []
            cond["Type"] = list(types)
        rows = self._call("transformation", "getTransformations", cond, columns=_TRANSFORMATION_COLUMNS)
        rows = [dict(r) for r in rows or []]
        links = self._links({int(r["TransformationID"]): str(r["Status"]) for r in rows})
        out = []
        for r in rows:
            tid = int(r["TransformationID"])
            production, parent = links.get(tid, (None, None))
            out.append(
                TransformationInfo(
                    id=tid,
                    name=str(r["TransformationName"]),
                    type=str(r["Type"]),
                    status=str(r["Status"]),
                    group_size=float(r["GroupSize"]),
                    production=production,
                    parent=parent,
                )
            )
        out.sort(key=lambda t: t.id)
        return out

    def _links(self, statuses: dict[int, str]) -> dict[int, tuple[int | None, int | None]]:
        """(production, parent) of each transformation: from the process's cache, else the
        database's (another process read them), else the ProductionSystem."""
        with _PARENTS.lock:
            missing = [t for t in statuses if t not in _PARENTS.links]
        if missing and self.link_store is not None:
            stored = self.link_store.get(missing)
            with _PARENTS.lock:
                _PARENTS.links.update(stored)
            missing = [t for t in missing if t not in stored]
        if missing:
            found = self._fetch_links(missing)
            final: dict[int, tuple[int | None, int | None]] = {}
            for tid, link in found.items():
                final[tid] = link
            for tid in missing:
                if tid not in found and statuses[tid] != "New":
                    # Only a New transformation can still be added to a production
                    # (ProductionDB refuses the others), so "none" is final for the rest.
                    final[tid] = (None, None)
            with _PARENTS.lock:
                _PARENTS.links.update(final)
            if self.link_store is not None:
                self.link_store.put(final)
        with _PARENTS.lock:
            return {t: _PARENTS.links.get(t, (None, None)) for t in statuses}

    def production_info(self, ids: Iterable[int]) -> dict[int, dict]:
        """Name and status of each production (ProductionClient.getProductions with a condition
        on ProductionID: one call). Not part of the Protocol: the productions list uses it."""
        wanted = [int(i) for i in ids]
        if not wanted:
            return {}
        rows = self._call("production", "getProductions", {"ProductionID": wanted}) or []
        return {int(p["ProductionID"]): {"name": p.get("ProductionName") or "", "status": p.get("Status") or ""}
                for p in rows}

    def _fetch_links(self, wanted: list[int]) -> dict[int, tuple[int | None, int | None]]:
        """The links of ``wanted``, and of their parents in the same productions: a parent the
        policy does not select is read next (the engine reads parents' states), and would pay
        getProductions and a getProductionTransformations per production again."""
        productions = self._call("production", "getProductions", {})
        production_of: dict[int, int] = {}
        descriptions: dict[int, str] = {}
        for p in productions or []:
            pid = int(p["ProductionID"])
            descriptions[pid] = p.get("Description") or ""
            for row in self._call("production", "getProductionTransformations", pid) or []:
                production_of[int(dict(row)["TransformationID"])] = pid
        if self.link_store is not None:
            self.link_store.keep_productions(descriptions)
        todo = [tid for tid in wanted if tid in production_of]
        out: dict[int, tuple[int | None, int | None]] = {}
        while todo:
            members = {tid: production_of[tid] for tid in todo}
            parents = self._parents_ctadirac(list(members))
            if parents is None:
                # Vanilla DIRAC: a step's parent is found by name among all the steps of its
                # production, so take every member of the productions concerned at once.
                involved = set(members.values())
                members = {tid: pid for tid, pid in production_of.items() if pid in involved}
                parents = self._parents_from_descriptions(members, descriptions)
            for tid, pid in members.items():
                out[tid] = (pid, parents.get(tid))
            with _PARENTS.lock:
                known = set(_PARENTS.links)
            todo = sorted({
                p for p in parents.values()
                if p is not None and p > 0 and p in production_of and p not in out and p not in known
            })
        return out

    def _parents_ctadirac(self, tids: list[int]) -> dict[int, int | None] | None:
        if self.use_ctadirac is False or _PARENTS.ctadirac is False:
            return None
        out: dict[int, int | None] = {}
        for tid in tids:
            try:
                rows = self._call("production", "get_parent_transformation", tid)
            except BackendError as exc:
                if "unknown method" in exc.dirac_message.lower() and self.use_ctadirac is None:
                    _PARENTS.ctadirac = False
                    return None
                raise
            _PARENTS.ctadirac = True
            rows = [list(r) for r in rows or []]
            # Several parent rows are possible; CTADIRAC's agent takes the first one returned.
            out[tid] = int(rows[0][0]) if rows else None
        return out

    def _parents_from_descriptions(
        self, production_of: dict[int, int], descriptions: dict[int, str]
    ) -> dict[int, int | None]:
        """Vanilla DIRAC: the production Description names each step's parent steps, and a
        step's transformation is named "<production %08d>_<step name>"."""
        import json

        names = {
            int(r["TransformationID"]): str(r["TransformationName"])
            for r in self._call(
                "transformation",
                "getTransformations",
                {"TransformationID": sorted(production_of)},
                columns=["TransformationID", "TransformationName"],
            )
            or []
        }
        out: dict[int, int | None] = {}
        for pid in set(production_of.values()):
            try:
                steps = json.loads(descriptions.get(pid) or "{}")
            except ValueError:
                steps = {}
            members = [t for t, p in production_of.items() if p == pid]
            step_tid: dict[str, int] = {}
            for step in steps:
                for tid in members:
                    if names.get(tid) in (f"{pid:08d}_{step}", step):
                        step_tid[step] = tid
            for step, tid in step_tid.items():
                parents = (steps[step] or {}).get("parentStep") or []
                parent_ids = [step_tid[p] for p in parents if p in step_tid]
                out[tid] = parent_ids[0] if parent_ids else -1
            for tid in members:
                # A member whose step cannot be found: in the production, parent unknown.
                out.setdefault(tid, -1)
        return out

    def file_counts(self, ids: Iterable[int]) -> dict[int, FileCounts]:
        id_list = sorted({int(i) for i in ids})
        if not id_list:
            return {}
        rows = self._call(
            "transformation",
            "getCounters",
            "TransformationFiles",
            ["TransformationID", "Status"],
            {"TransformationID": id_list},
        )
        counts: dict[int, dict[str, int]] = {tid: {} for tid in id_list}
        for attrs, n in (list(r) for r in rows or []):
            tid = int(attrs["TransformationID"])
            counts.setdefault(tid, {})[str(attrs["Status"])] = int(n)
        return {tid: FileCounts(by_status=c) for tid, c in counts.items()}

    def tasks(self, ids: Iterable[int]) -> list[TaskInfo]:
        id_list = sorted({int(i) for i in ids})
        if not id_list:
            return []
        rows = self._call("transformation", "getTransformationTasks", {"TransformationID": id_list})
        return _task_infos(rows)

    def tasks_changed_since(self, ids: Iterable[int], since: datetime) -> list[TaskInfo]:
        cut = _dirac_time(since)
        id_list = sorted({int(i) for i in ids})
        if not id_list:
            return []
        # LastUpdateTime >= newer (TransformationDB.getTransformationTasks through buildCondition).
        rows = self._call(
            "transformation",
            "getTransformationTasks",
            {"TransformationID": id_list},
            older=None,
            newer=cut,
            timeStamp="LastUpdateTime",
        )
        return _task_infos(rows)

    def jobs_changed_since(self, ids: Iterable[int], since: datetime) -> dict[int, JobInfo]:
        cut = _dirac_time(since)
        groups = sorted({f"{int(i):08d}" for i in ids})
        if not groups:
            return {}
        # JobDB.selectJobs: LastUpdateTime >= cutDate; job ids come back as strings.
        changed = self._call("jobs", "getJobs", {"JobGroup": groups}, cut)
        return self.jobs(int(j) for j in changed or [])

    def files(
        self,
        ids: Iterable[int],
        *,
        statuses: Sequence[str] | None = None,
        lfns: Iterable[str] | None = None,
    ) -> list[FileInfo]:
        id_list = sorted({int(i) for i in ids})
        if not id_list:
            return []
        cond: dict[str, Any] = {"TransformationID": id_list}
        if statuses is not None:
            if not statuses:
                return []
            cond["Status"] = list(statuses)
        if lfns is not None:
            lfn_list = sorted(set(lfns))
            if not lfn_list:
                return []
            # The client then asks in chunks of 1000 LFNs: one RPC per chunk.
            cond["LFN"] = lfn_list
        rows = self._call("transformation", "getTransformationFiles", cond, columns=_FILE_COLUMNS)
        out = [
            FileInfo(
                transformation=int(r["TransformationID"]),
                lfn=str(r["LFN"]),
                status=str(r["Status"]),
                task=int(r["TaskID"]) if r.get("TaskID") not in (None, "", 0, "0") else None,
                error_count=int(r.get("ErrorCount") or 0),
            )
            for r in (dict(r) for r in rows or [])
        ]
        out.sort(key=lambda f: (f.transformation, f.lfn))
        return out

    def jobs(self, job_ids: Iterable[int]) -> dict[int, JobInfo]:
        ids = sorted({int(j) for j in job_ids if int(j) > 0})
        out: dict[int, JobInfo] = {}
        for start in range(0, len(ids), self.job_chunk):
            chunk = ids[start : start + self.job_chunk]
            states = _int_keys(self._call("jobs", "getJobsStates", chunk))
            sites = _int_keys(self._call("jobs", "getJobsSites", chunk))
            for jid, state in states.items():
                out[jid] = JobInfo(
                    id=jid,
                    status=str(state.get("Status", "")),
                    minor_status=str(state.get("MinorStatus", "") or ""),
                    application_status=str(state.get("ApplicationStatus", "") or ""),
                    site=str((sites.get(jid) or {}).get("Site", "") or ""),
                )
        return out

    # -- recovery reads -------------------------------------------------------------------------
    def job_input_data(self, job_ids: Iterable[int]) -> dict[int, list[str]]:
        ids = sorted({int(j) for j in job_ids})
        out: dict[int, list[str]] = {j: [] for j in ids}
        for chunk in _chunked(ids, self.job_chunk):
            # A list gives {job: [LFN, ...]} for every asked job (JobDB.getInputData strips "LFN:").
            value = self._call("jobs", "getInputData", chunk)
            if not isinstance(value, dict):
                raise BackendError(f"getInputData answered {value!r:.120} for a list of jobs", call="getInputData")
            for jid, lfns in value.items():
                out[int(jid)] = [str(lfn) for lfn in lfns or []]
        return out

    def job_output_data(self, job_ids: Iterable[int]) -> dict[int, list[str]]:
        ids = sorted({int(j) for j in job_ids})
        out: dict[int, list[str]] = {}
        for chunk in _chunked(ids, self.job_chunk):
            value = _int_keys(self._call("jobs", "getJobParameters", chunk, "ProductionOutputData"))
            for jid, params in value.items():
                if "ProductionOutputData" in params:
                    # A comma-separated string, split and stripped as DIRAC's fromChar does.
                    text = str(params["ProductionOutputData"] or "")
                    out[jid] = [p.strip() for p in text.split(",") if p.strip()]
        return dict(sorted(out.items()))

    def catalogue_available(self) -> bool:
        if self.catalogue is None:
            if CATALOGUE_SERVICE in self.urls:
                self.catalogue = True
            else:
                initialise_dirac()
                try:
                    from DIRAC.ConfigurationSystem.Client.PathFinder import getServiceURL

                    self.catalogue = bool(getServiceURL(CATALOGUE_SERVICE))
                except Exception:  # no URL configured raises in some DIRAC releases
                    self.catalogue = False
        return bool(self.catalogue)

    def _require_catalogue(self, method: str) -> None:
        if not self.catalogue_available():
            raise BackendError(
                f"no file catalogue: the Configuration Service has no URL for {CATALOGUE_SERVICE}",
                call=method,
                retriable=False,
            )

    def _bulk(self, kind: str, method: str, *args: Any) -> dict:
        """A DIRAC bulk answer ``{"Successful": ..., "Failed": ...}``, checked for its shape."""
        value = self._call(kind, method, *args)
        if not isinstance(value, dict) or "Successful" not in value:
            raise BackendError(f"unexpected answer {value!r:.200}", call=method)
        return value

    def catalogue_exists(self, lfns: Iterable[str]) -> dict[str, bool]:
        wanted = list(dict.fromkeys(str(lfn) for lfn in lfns))
        if not wanted:
            return {}
        self._require_catalogue("exists")
        out: dict[str, bool] = {}
        for chunk in _chunked(wanted, CATALOGUE_CHUNK):
            value = self._bulk("catalogue", "exists", chunk)
            if value.get("Failed"):
                lfn, why = next(iter(dict(value["Failed"]).items()))
                raise BackendError(
                    f"the catalogue could not tell whether {count(len(value['Failed']), 'LFN')} "
                    f"{pluralize(len(value['Failed']), 'exists,exist')}, e.g. {lfn}: {why}",
                    call="exists",
                )
            found = dict(value["Successful"])
            # The DFC answers the LFN itself (or a directory's path) for what exists, False otherwise.
            out.update((lfn, bool(found.get(lfn))) for lfn in chunk)
        return out

    def catalogue_files_by_job(self, job_ids: Iterable[int]) -> dict[int, list[str]]:
        ids = sorted({int(j) for j in job_ids})
        if not ids:
            return {}
        self._require_catalogue("findFilesByMetadataDetailed")
        out: dict[int, list[str]] = {}
        for chunk in _chunked(ids, METADATA_JOB_CHUNK):
            # A list value is an SQL IN on the file metadata; jobID is text (CTADIRAC's field).
            value = self._call(
                "catalogue", "findFilesByMetadataDetailed", {"jobID": [str(j) for j in chunk]}, "/"
            )
            wanted = set(chunk)
            for lfn, details in dict(value or {}).items():
                job = _job_id((dict(details or {}).get("Metadata") or {}).get("jobID"))
                if job in wanted:
                    out.setdefault(job, []).append(str(lfn))
        return {j: sorted(lfns) for j, lfns in sorted(out.items())}

    def job_requests(self, job_ids: Iterable[int]) -> dict[int, str]:
        ids = sorted({int(j) for j in job_ids})
        out: dict[int, str] = {}
        for chunk in _chunked(ids, REQUEST_CHUNK):
            found = self._bulk("requests", "getRequestIDsForJobs", chunk)
            request_of = {int(job): int(rid) for job, rid in dict(found["Successful"]).items()}
            if not request_of:
                continue
            statuses = {int(k): str(v) for k, v in dict(
                self._call("requests", "getBulkRequestStatus", sorted(set(request_of.values()))) or {}
            ).items()}
            for job, rid in request_of.items():
                if rid in statuses:  # a request deleted between the two calls is gone
                    out[job] = statuses[rid]
        return dict(sorted(out.items()))

    # -- writes ---------------------------------------------------------------------------------
    def set_task_status(self, transformation: int, task_ids: Sequence[int], status: str) -> None:
        tasks = sorted({int(t) for t in task_ids})
        if not tasks:
            return
        self._call("transformation", "setTaskStatus", int(transformation), tasks, status)

    def set_file_status(
        self,
        transformation: int,
        statuses: Mapping[str, str] | Sequence[str],
        status: str | None = None,
        *,
        force: bool = False,
    ) -> Mapping[str, str]:
        wanted = file_statuses(statuses, status)
        if not wanted:
            return {}
        written = self._call(
            "transformation",
            "setFileStatusForTransformation",
            int(transformation),
            wanted,
            force=bool(force),
        )
        return {str(lfn): str(s) for lfn, s in dict(written or {}).items()}

    def set_job_status(
        self, job_ids: Iterable[int], status: str, *, minor_status: str, force: bool = True
    ) -> None:
        failed: dict[int, str] = {}
        for jid in dict.fromkeys(int(j) for j in job_ids):
            try:
                # No bulk form: one setJobStatus per job (the server ignores force without
                # JobAdministrator, and then applies the job state machine).
                self._call("jobstate", "setJobStatus", jid, status, minor_status, JOB_STATUS_SOURCE, None, bool(force))
            except BackendTimeout:
                raise
            except BackendError as exc:
                failed[jid] = exc.dirac_message
        if failed:
            jid, why = next(iter(failed.items()))
            raise BackendError(
                f"{count(len(failed), 'job')} not set {status} ({', '.join(str(j) for j in failed)}), "
                f"e.g. {jid}: {why}",
                call="setJobStatus",
                retriable=False,
            )

    def remove_catalogue_files(self, lfns: Iterable[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(str(lfn) for lfn in lfns))
        if not wanted:
            return {}
        self._require_catalogue("removeFile")
        out: dict[str, str] = {}
        for chunk in _chunked(wanted, CATALOGUE_CHUNK):
            try:
                value = self._bulk("catalogue", "removeFile", chunk)
            except BackendError as exc:
                # The DFC counts an absent LFN among present ones as removed, but answers a call
                # whose LFNs are all absent with this error: a retried removal is not a failure.
                if isinstance(exc, BackendTimeout) or "no such file or directory" not in exc.dirac_message.lower():
                    raise
                still = self.catalogue_exists(chunk)
                out.update((lfn, exc.dirac_message if still[lfn] else "") for lfn in chunk)
                continue
            failed = {str(k): str(v) for k, v in dict(value.get("Failed") or {}).items()}
            out.update((lfn, failed.get(lfn, "")) for lfn in chunk)
        return out

    def set_transformation_status(self, transformation: int, status: str, *, expected: str) -> None:
        try:
            self._call(
                "transformation",
                "setTransformationParameter",
                int(transformation),
                "Status",
                status,
                currentStatus=expected,
            )
        except BackendError as exc:
            prefix = "Status changed in the DB: "
            if exc.dirac_message.startswith(prefix):
                actual = exc.dirac_message[len(prefix) :]
                raise BackendError(
                    f"transformation {transformation} is {actual}, not {expected}: status not changed",
                    call="setTransformationParameter",
                    retriable=False,
                ) from exc
            raise


def _task_infos(rows: Any) -> list[TaskInfo]:
    out = [
        TaskInfo(
            transformation=int(r["TransformationID"]),
            task=int(r["TaskID"]),
            job=_job_id(r.get("ExternalID")),
            status=str(r["ExternalStatus"]),
        )
        for r in (dict(r) for r in rows or [])
    ]
    out.sort(key=lambda t: (t.transformation, t.task))
    return out


def _chunked(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _dirac_time(since: datetime) -> str:
    """The cut as DIRAC's SQL compares it: "YYYY-MM-DD HH:MM:SS", naive UTC, whole seconds.

    A string crosses both transports (dips, https) unchanged."""
    return dirac_cut(since).strftime("%Y-%m-%d %H:%M:%S")


def _int_keys(value: Any) -> dict[int, dict]:
    """Job-ID keys as int whatever the transport (dips keeps ints, https gives strings)."""
    return {int(k): dict(v or {}) for k, v in dict(value or {}).items()}


def _job_id(external: Any) -> int:
    try:
        return int(str(external).strip() or 0)
    except ValueError:
        return 0


__all__ = ["DiracAdapter", "clear_parent_cache", "initialise_dirac"]
