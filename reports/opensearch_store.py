"""The OpenSearch aggregate store: each cycle's job-status aggregates as WMSHistory-shaped documents.

Three index families, each with daily indices (UTC dates, as DIRAC names its own) behind an alias
that every read goes through, and an index template with explicit mappings:

- ``<prefix>-wmshistory-YYYY-MM-DD``: one document per (Status, MinorStatus, ApplicationStatus,
  Site) of a transformation in a cycle. DIRAC's WMSHistory field names (reference 8: ``timestamp``
  in epoch milliseconds, JobGroup as the zero-padded transformation id, Jobs) so the same queries
  and dashboards read an installation's ``wmshistory_index-*``; plus our own fields.
- ``<prefix>-snapshots-YYYY-MM-DD``: one manifest per (cycle, transformation). It makes a snapshot
  without jobs visible to ``latest()``, and names the write whose rows count (a retried task may
  write the same snapshot twice; rows of the superseded write are ignored, then deleted).
- ``<prefix>-actions-YYYY-MM-DD``: one document per finished action-log entry.

Writes go to the database outbox first (``reports.outbox``) and are sent from there, so a cycle
never waits for or fails on OpenSearch; reads query OpenSearch and raise ``AggregateStoreError``
when it cannot answer.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from urllib.parse import urlsplit, urlunsplit

from failover.errors import ConfigurationError
from reports.aggregation import AggregateRow
from reports.stores import AggregateStoreError, SnapshotMeta, StoredAggregates

log = logging.getLogger(__name__)

ROWS = "wmshistory"
SNAPSHOTS = "snapshots"
ACTIONS = "actions"
FAMILIES = (ROWS, SNAPSHOTS, ACTIONS)
PAGE = 1000
_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")


# -- configuration and client -------------------------------------------------------------------
@dataclass(frozen=True)
class OpenSearchConfig:
    url: str
    user: str = ""
    password: str = ""
    ca_certs: str = ""
    prefix: str = "failover"
    timeout: float = 10.0
    retries: int = 3
    wmshistory_source: str = ""
    send_on_commit: bool = True

    @classmethod
    def from_settings(cls) -> OpenSearchConfig:
        from django.conf import settings

        config = cls(
            url=settings.OPENSEARCH_URL.rstrip("/"),
            user=getattr(settings, "OPENSEARCH_USER", ""),
            password=getattr(settings, "OPENSEARCH_PASSWORD", ""),
            ca_certs=getattr(settings, "OPENSEARCH_CA_CERTS", ""),
            prefix=getattr(settings, "OPENSEARCH_INDEX_PREFIX", "failover"),
            timeout=getattr(settings, "OPENSEARCH_TIMEOUT", 10.0),
            retries=getattr(settings, "OPENSEARCH_RETRIES", 3),
            wmshistory_source=getattr(settings, "OPENSEARCH_WMSHISTORY_SOURCE", ""),
            send_on_commit=getattr(settings, "OPENSEARCH_SEND_ON_COMMIT", True),
        )
        config.validate()
        return config

    def validate(self) -> None:
        if not self.url:
            raise ConfigurationError("OpenSearch is not configured: set OPENSEARCH_URL")
        if urlsplit(self.url).scheme not in ("http", "https"):
            raise ConfigurationError(f"OPENSEARCH_URL={self.safe_url!r} must start with http:// or https://")
        if not _PREFIX_RE.match(self.prefix):
            raise ConfigurationError(
                f"OPENSEARCH_INDEX_PREFIX={self.prefix!r} is not a valid index name start "
                "(lowercase letters, digits, '-', '_', '.')"
            )

    @property
    def safe_url(self) -> str:
        """The URL without any user:password in it, for messages."""
        parts = urlsplit(self.url)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def alias(self, family: str) -> str:
        return f"{self.prefix}-{family}"

    def index(self, family: str, when: datetime | int) -> str:
        """The daily index of a document: by its timestamp's UTC date (epoch ms or a datetime)."""
        if isinstance(when, int):
            when = datetime.fromtimestamp(when / 1000, tz=dt_timezone.utc)
        day = when.astimezone(dt_timezone.utc).strftime("%Y-%m-%d")
        return f"{self.prefix}-{family}-{day}"


@functools.lru_cache(maxsize=32)
def get_client(config: OpenSearchConfig, retries: int | None = None):
    """One client per configuration (it keeps a connection pool). ``retries=0`` for the cycle's path."""
    from opensearchpy import OpenSearch

    kwargs = {
        "hosts": [config.url],
        "timeout": config.timeout,
        "max_retries": config.retries if retries is None else retries,
        "retry_on_timeout": True,
    }
    if config.user:
        kwargs["http_auth"] = (config.user, config.password)
    if config.url.startswith("https"):
        kwargs.update(use_ssl=True, verify_certs=True)
        if config.ca_certs:
            kwargs["ca_certs"] = config.ca_certs
    return OpenSearch(**kwargs)


def describe(exc: Exception, config: OpenSearchConfig) -> str:
    """One line on why OpenSearch did not answer, without a traceback or credentials."""
    from opensearchpy import ConnectionTimeout, TransportError
    from opensearchpy import ConnectionError as OSConnectionError

    if isinstance(exc, ConnectionTimeout):
        return f"no answer from OpenSearch at {config.safe_url} within {config.timeout:g} s"
    if isinstance(exc, OSConnectionError):
        found = re.search(r"\[Errno -?\d+\] [^)\]'\"]+", str(exc))
        why = found.group(0).strip() if found else exc.__class__.__name__
        return f"cannot connect to OpenSearch at {config.safe_url} ({why})"
    if isinstance(exc, TransportError):
        reason = exc.error
        info = exc.info if isinstance(exc.info, dict) else {}
        detail = info.get("error", {}).get("reason") if isinstance(info.get("error"), dict) else ""
        return f"OpenSearch at {config.safe_url} answered HTTP {exc.status_code}: {reason}" + (
            f" ({detail})" if detail else ""
        )
    return f"OpenSearch at {config.safe_url}: {exc.__class__.__name__}: {exc}"


def opensearch_errors() -> tuple[type[Exception], ...]:
    from opensearchpy.exceptions import ImproperlyConfigured, OpenSearchException

    from urllib3.exceptions import HTTPError

    return (OpenSearchException, ImproperlyConfigured, HTTPError, OSError)


# -- index templates ----------------------------------------------------------------------------
KEYWORD = {"type": "keyword"}
INTEGER = {"type": "integer"}
LONG = {"type": "long"}
EPOCH_MS = {"type": "date", "format": "epoch_millis"}
TEMPLATE_VERSION = 1

# DIRAC's WMSHistory key fields are keywords and Jobs a count (reference 8).
WMSHISTORY_FIELDS = {
    "timestamp": EPOCH_MS,
    "Status": KEYWORD,
    "MinorStatus": KEYWORD,
    "ApplicationStatus": KEYWORD,
    "Site": KEYWORD,
    "JobGroup": KEYWORD,
    "Jobs": INTEGER,
}

MAPPINGS = {
    ROWS: {
        **WMSHISTORY_FIELDS,
        "CycleID": LONG,
        "TransformationID": INTEGER,
        "ProductionID": INTEGER,
        "TransformationType": KEYWORD,
        # The lowest job id of the combination, then its place in the cycle's list: the report's row order.
        "FirstJob": LONG,
        "RowIndex": INTEGER,
        # Which write of the snapshot this row belongs to (see the module's docstring).
        "WriteSeq": LONG,
    },
    SNAPSHOTS: {
        "timestamp": EPOCH_MS,
        # The cycle's start to the microsecond, as the SQL store keeps it (``timestamp`` has ms).
        "TimestampMicros": LONG,
        "CycleID": LONG,
        "TransformationID": INTEGER,
        "JobGroup": KEYWORD,
        "ProductionID": INTEGER,
        "TransformationType": KEYWORD,
        "Rows": INTEGER,
        "Jobs": INTEGER,
        "WriteSeq": LONG,
    },
    ACTIONS: {
        "timestamp": EPOCH_MS,
        "ActionID": LONG,
        "CycleID": LONG,
        "TransformationID": INTEGER,
        "JobGroup": KEYWORD,
        "Kind": KEYWORD,
        "State": KEYWORD,
        "Actor": KEYWORD,
        "User": KEYWORD,
        "Reason": {"type": "text"},
        "Outcome": {"type": "text"},
        "Error": {"type": "text"},
        "Created": EPOCH_MS,
        "Finished": EPOCH_MS,
        "Tasks": INTEGER,
        "Files": INTEGER,
        "Moved": INTEGER,
        # Task ids and LFNs as keys would grow the mapping without bound: kept, not indexed.
        "Details": {"type": "object", "enabled": False},
    },
}


def templates(config: OpenSearchConfig) -> dict[str, dict]:
    return {
        config.alias(family): {
            "index_patterns": [config.alias(family) + "-*"],
            "priority": 100,
            "version": TEMPLATE_VERSION,
            "_meta": {"managed_by": "failover-dashboard"},
            "template": {
                "settings": {"number_of_shards": 1},
                # Unknown fields stay in _source but are not indexed: no mapping surprises.
                "mappings": {"dynamic": False, "properties": MAPPINGS[family]},
                "aliases": {config.alias(family): {}},
            },
        }
        for family in FAMILIES
    }


_templates_installed: set[tuple[str, str]] = set()


def ensure_templates(client, config: OpenSearchConfig, *, force: bool = False) -> list[str]:
    """Install (or update) the index templates; idempotent, done once per process unless forced."""
    key = (config.url, config.prefix)
    if key in _templates_installed and not force:
        return []
    names = []
    for name, body in templates(config).items():
        client.indices.put_index_template(name=name, body=body)
        names.append(name)
    _templates_installed.add(key)
    return names


# -- documents ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Document:
    index: str
    id: str
    body: dict


def epoch_ms(when: datetime) -> int:
    return epoch_us(when) // 1000


def epoch_us(when: datetime) -> int:
    if when.tzinfo is None:  # USE_TZ is on; a naive value can only mean UTC
        when = when.replace(tzinfo=dt_timezone.utc)
    delta = when - datetime(1970, 1, 1, tzinfo=dt_timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    from datetime import timedelta

    return datetime(1970, 1, 1, tzinfo=dt_timezone.utc) + timedelta(microseconds=value)


def job_group(transformation_id: int) -> str:
    """DIRAC's JobGroup of a transformation's jobs: the id padded to eight digits."""
    return f"{transformation_id:08d}"


def row_key(row: AggregateRow) -> str:
    key = "\x1f".join((row.status, row.minor_status, row.application_status, row.site))
    return hashlib.sha1(key.encode()).hexdigest()


def snapshot_documents(
    config: OpenSearchConfig,
    cycle_id: int,
    timestamp: datetime,
    meta: SnapshotMeta,
    rows: Sequence[AggregateRow],
    write_seq: int,
) -> tuple[Document, list[Document]]:
    """The manifest and the row documents of one transformation in one cycle. Ids are deterministic."""
    tid = meta.transformation_id
    ms = epoch_ms(timestamp)
    common = {
        "timestamp": ms,
        "JobGroup": job_group(tid),
        "CycleID": cycle_id,
        "TransformationID": tid,
        "ProductionID": meta.production_id,
        "TransformationType": meta.transformation_type,
        "WriteSeq": write_seq,
    }
    row_index = config.index(ROWS, ms)
    docs = [
        Document(
            row_index,
            "-".join((str(cycle_id), str(tid), row_key(r))),
            {
                **common,
                "Status": r.status,
                "MinorStatus": r.minor_status,
                "ApplicationStatus": r.application_status,
                "Site": r.site,
                "Jobs": r.count,
                "FirstJob": r.first_job,
                "RowIndex": n,
            },
        )
        for n, r in enumerate(rows)
    ]
    manifest = Document(
        config.index(SNAPSHOTS, ms),
        f"{cycle_id}-{tid}",
        {**common, "TimestampMicros": epoch_us(timestamp), "Rows": len(docs), "Jobs": sum(r.count for r in rows)},
    )
    return manifest, docs


def action_document(config: OpenSearchConfig, action) -> Document:
    details = action.details or {}
    tasks = details.get("tasks") or {}
    if action.kind == "reassign":
        n_tasks, files = len(tasks), sum(len(v) for v in tasks.values() if isinstance(v, list))
    else:
        n_tasks, files = sum(len(v) for v in tasks.values() if isinstance(v, list)), 0
    created_ms = epoch_ms(action.created)
    finished_ms = epoch_ms(action.finished) if action.finished else None
    user = getattr(action, "user", None)
    return Document(
        # By creation date: the document stays in one index whatever happens to the entry later.
        config.index(ACTIONS, created_ms),
        str(action.pk),
        {
            "timestamp": finished_ms or created_ms,
            "ActionID": action.pk,
            "CycleID": action.cycle_id,
            "TransformationID": action.transformation_id,
            "JobGroup": job_group(action.transformation_id),
            "Kind": action.kind,
            "State": action.state,
            "Actor": action.actor,
            "User": user.get_username() if user is not None else None,
            "Reason": action.reason,
            "Outcome": action.outcome,
            "Error": action.error,
            "Created": created_ms,
            "Finished": finished_ms,
            "Tasks": n_tasks,
            "Files": files,
            "Moved": len(details.get("moved") or []),
            "Details": details,
        },
    )


# -- the store ----------------------------------------------------------------------------------
class OpenSearchAggregateStore:
    """The AggregateStore Protocol over OpenSearch (see the module's docstring)."""

    name = "opensearch"

    def __init__(self, config: OpenSearchConfig):
        self.config = config

    @classmethod
    def from_settings(cls) -> OpenSearchAggregateStore:
        return cls(OpenSearchConfig.from_settings())

    @property
    def client(self):
        return get_client(self.config)

    # -- writing: to the outbox, in the caller's transaction ------------------------------------
    def write(self, cycle_id: int, timestamp: datetime, meta: SnapshotMeta, rows: Sequence[AggregateRow]) -> None:
        from reports import outbox

        outbox.enqueue_snapshot(self.config, cycle_id, timestamp, meta, list(rows))

    # -- reading ---------------------------------------------------------------------------------
    def latest(self, transformation_id: int) -> StoredAggregates | None:
        if self.config.wmshistory_source:
            return WmsHistorySource(self).latest(transformation_id)
        with self.reading():
            hits = self._search(
                self.config.alias(SNAPSHOTS),
                {
                    "size": 1,
                    "query": _filter(TransformationID=transformation_id),
                    "sort": [{"TimestampMicros": "desc"}, {"CycleID": "desc"}],
                },
            )["hits"]["hits"]
            return self._load(hits[0]["_source"]) if hits else None

    def at_cycle(self, transformation_id: int, cycle_id: int) -> StoredAggregates | None:
        with self.reading():
            hits = self._search(
                self.config.alias(SNAPSHOTS),
                {"size": 1, "query": _filter(TransformationID=transformation_id, CycleID=cycle_id)},
            )["hits"]["hits"]
            return self._load(hits[0]["_source"]) if hits else None

    def series(self, transformation_id: int, limit: int = 500) -> list[StoredAggregates]:
        if self.config.wmshistory_source:
            return WmsHistorySource(self).series(transformation_id, limit)
        with self.reading():
            manifests = [
                hit["_source"]
                for hit in self._search_all(
                    self.config.alias(SNAPSHOTS),
                    _filter(TransformationID=transformation_id),
                    [{"TimestampMicros": "desc"}, {"CycleID": "desc"}],
                    limit=limit,
                )
            ][::-1]
            if not manifests:
                return []
            by_cycle: dict[int, list[dict]] = {m["CycleID"]: [] for m in manifests}
            wanted = {m["CycleID"]: m["WriteSeq"] for m in manifests}
            query = _filter(TransformationID=transformation_id)
            query["bool"]["filter"].append({"terms": {"CycleID": sorted(wanted)}})
            for hit in self._search_all(
                self.config.alias(ROWS), query, [{"CycleID": "asc"}, {"WriteSeq": "asc"}, {"RowIndex": "asc"}]
            ):
                doc = hit["_source"]
                if wanted.get(doc["CycleID"]) == doc["WriteSeq"]:
                    by_cycle[doc["CycleID"]].append(doc)
            return [self._stored(m, by_cycle[m["CycleID"]]) for m in manifests]

    def _load(self, manifest: dict) -> StoredAggregates:
        docs = [
            hit["_source"]
            for hit in self._search_all(
                self.config.alias(ROWS),
                _filter(
                    TransformationID=manifest["TransformationID"],
                    CycleID=manifest["CycleID"],
                    WriteSeq=manifest["WriteSeq"],
                ),
                [{"RowIndex": "asc"}],
            )
        ]
        return self._stored(manifest, docs)

    @staticmethod
    def _stored(manifest: dict, docs: list[dict]) -> StoredAggregates:
        docs = sorted(docs, key=lambda d: (d.get("FirstJob") or 0, d.get("RowIndex") or 0))
        return StoredAggregates(
            manifest["CycleID"],
            from_us(manifest["TimestampMicros"]),
            manifest["TransformationID"],
            [
                AggregateRow(
                    d["Status"], d["MinorStatus"], d["ApplicationStatus"], d["Site"], d["Jobs"], d.get("FirstJob") or 0
                )
                for d in docs
            ],
        )

    # -- plumbing --------------------------------------------------------------------------------
    @contextmanager
    def reading(self) -> Iterator[None]:
        try:
            yield
        except opensearch_errors() as exc:
            why = describe(exc, self.config)
            raise AggregateStoreError(f"the stored aggregates cannot be read: {why}") from None

    def _search(self, index: str, body: dict) -> dict:
        # A missing alias (nothing written yet) reads as empty, not as an error.
        return self.client.search(index=index, body=body, ignore_unavailable=True, allow_no_indices=True)

    def _search_all(self, index: str, query: dict, sort: list, *, limit: int | None = None) -> Iterator[dict]:
        """Every hit, in pages, with search_after on a sort that is unique per document."""
        after = None
        seen = 0
        while limit is None or seen < limit:
            size = PAGE if limit is None else min(PAGE, limit - seen)
            body = {"size": size, "query": query, "sort": sort}
            if after is not None:
                body["search_after"] = after
            hits = self._search(index, body)["hits"]["hits"]
            yield from hits
            seen += len(hits)
            if len(hits) < size:
                return
            after = hits[-1]["sort"]


def _filter(**terms) -> dict:
    return {"bool": {"filter": [{"term": {field: value}} for field, value in terms.items()]}}


class WmsHistorySource:
    """Read-only: latest() and series() from DIRAC's own WMSHistory documents.

    DIRAC's StatesAccountingAgent writes one document per (Status, Site, User, UserGroup, JobGroup,
    JobSplitType, ApplicationStatus, MinorStatus) with one timestamp per run; a snapshot here is all
    documents of one timestamp, summed over the dimensions the report does not show. DIRAC's
    documents belong to no cycle (``cycle_id`` 0) and carry no job ids (``first_job`` 0).
    """

    KEYS = ("Status", "MinorStatus", "ApplicationStatus", "Site")

    def __init__(self, store: OpenSearchAggregateStore):
        self.store = store
        self.pattern = store.config.wmshistory_source

    def latest(self, transformation_id: int) -> StoredAggregates | None:
        with self.store.reading():
            query = _filter(JobGroup=job_group(transformation_id))
            result = self.store._search(
                self.pattern, {"size": 0, "query": query, "aggs": {"last": {"max": {"field": "timestamp"}}}}
            )
            last = (result.get("aggregations") or {}).get("last", {}).get("value")
            if last is None:
                return None
            snapshots = self._rows(transformation_id, int(last), int(last))
            return self._stored(transformation_id, int(last), snapshots.get(int(last), []))

    def series(self, transformation_id: int, limit: int = 500) -> list[StoredAggregates]:
        with self.store.reading():
            query = _filter(JobGroup=job_group(transformation_id))
            newest_first = [{"timestamp": {"terms": {"field": "timestamp", "order": "desc"}}}]
            stamps = [bucket["key"]["timestamp"] for bucket in self._composite(query, newest_first, limit=limit)]
            if not stamps:
                return []
            stamps = sorted(int(s) for s in stamps)
            rows = self._rows(transformation_id, stamps[0], stamps[-1])
            return [self._stored(transformation_id, ts, rows.get(ts, [])) for ts in stamps]

    def _rows(self, transformation_id: int, first: int, last: int) -> dict[int, list[AggregateRow]]:
        query = _filter(JobGroup=job_group(transformation_id))
        query["bool"]["filter"].append({"range": {"timestamp": {"gte": first, "lte": last, "format": "epoch_millis"}}})
        sources = [{"timestamp": {"terms": {"field": "timestamp"}}}] + [{k: {"terms": {"field": k}}} for k in self.KEYS]
        out: dict[int, list[AggregateRow]] = {}
        for bucket in self._composite(query, sources, aggs={"jobs": {"sum": {"field": "Jobs"}}}):
            key = bucket["key"]
            out.setdefault(int(key["timestamp"]), []).append(
                AggregateRow(*(key[k] for k in self.KEYS), count=int(bucket["jobs"]["value"]))
            )
        return out

    def _composite(self, query: dict, sources: list, *, aggs: dict | None = None, limit: int | None = None):
        after = None
        seen = 0
        while limit is None or seen < limit:
            size = PAGE if limit is None else min(PAGE, limit - seen)
            composite = {"size": size, "sources": sources}
            if after:
                composite["after"] = after
            agg = {"composite": composite}
            if aggs:
                agg["aggs"] = aggs
            result = self.store._search(self.pattern, {"size": 0, "query": query, "aggs": {"c": agg}})
            part = (result.get("aggregations") or {}).get("c", {})
            buckets = part.get("buckets", [])
            yield from buckets
            seen += len(buckets)
            after = part.get("after_key")
            if not after or len(buckets) < size:
                return

    @staticmethod
    def _stored(transformation_id: int, ts: int, rows: list[AggregateRow]) -> StoredAggregates:
        rows = sorted(rows, key=lambda r: (r.status, r.minor_status, r.application_status, r.site))
        return StoredAggregates(0, datetime.fromtimestamp(ts / 1000, tz=dt_timezone.utc), transformation_id, rows)
