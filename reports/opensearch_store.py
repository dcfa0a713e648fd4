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

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone as dt_timezone

from failover.recording import SnapshotMeta
from reports import outbox
from reports.aggregation import AggregateRow
from reports.opensearch_config import ROWS, SNAPSHOTS, OpenSearchConfig, describe, get_client, opensearch_errors
from reports.opensearch_documents import from_us, job_group
from reports.storage import AggregateStoreError, StoredAggregates

log = logging.getLogger(__name__)

PAGE = 1000


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
