"""The database outbox: documents for OpenSearch, written with the data they describe, sent later.

``enqueue_*`` add rows in the caller's transaction; after it commits, the rows just written are
sent at once (``send_soon``) unless OpenSearch failed within the last ``BREAKER_SECONDS``, so a cycle
never waits long on a dead OpenSearch. Whatever was not sent then is sent by ``drain`` (the
``reports.drain_outbox`` task and ``manage.py opensearch flush-outbox``).

Nothing is lost: a row is deleted only after OpenSearch accepted its document. Nothing is doubled:
document ids are deterministic, so a document sent twice (a drainer that died after sending,
two drainers racing) overwrites itself; ``version`` goes as an external version (``external_gte``),
so an older write of a document never overwrites a newer one.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.db import transaction
from django.db.models import Count, Min, Q
from django.template.defaultfilters import pluralize
from django.utils import timezone

from failover.models import ActionLog
from failover.outcomes import count
from failover.recording import SnapshotMeta
from reports.aggregation import AggregateRow
from reports.models import Outbox
from reports.opensearch_config import (
    ACTIONS,
    ROWS,
    OpenSearchConfig,
    describe,
    ensure_templates,
    get_client,
    opensearch_errors,
)
from reports.opensearch_documents import action_document, snapshot_documents

log = logging.getLogger(__name__)

BATCH_SIZE = 500
# A drainer's claim on rows lasts this long; if it dies, another drainer sends them after.
LEASE_SECONDS = 300
# After OpenSearch failed to answer, the cycle's own sends pause this long (the drain still tries).
BREAKER_SECONDS = 60
# A document OpenSearch refused waits before the next try: 10 s, 20 s, ... up to an hour.
MAX_BACKOFF_SECONDS = 3600
SEND_ORDER = {Outbox.Kind.ROW: 0, Outbox.Kind.ACTION: 1, Outbox.Kind.SNAPSHOT: 2}
FINAL_ACTION_STATES = ("done", "failed", "interrupted", "rejected", "stale", "superseded")


# -- versions -----------------------------------------------------------------------------------
_version_lock = threading.Lock()
_last_version = 0


def new_version() -> int:
    """Microseconds since the epoch, strictly increasing in this process.

    Two writes of one document come from two attempts at one transformation, which hold its lock
    one after the other, seconds or minutes apart; clocks agree far better than that.
    """
    global _last_version
    with _version_lock:
        _last_version = max(_last_version + 1, time.time_ns() // 1000)
        return _last_version


# -- enqueueing (in the caller's transaction) ---------------------------------------------------
def enqueue_snapshot(
    config: OpenSearchConfig, cycle_id: int, timestamp: datetime, meta: SnapshotMeta, rows: Sequence[AggregateRow]
) -> list[int]:
    version = new_version()
    manifest, docs = snapshot_documents(config, cycle_id, timestamp, meta, rows, version)
    key = f"{cycle_id}-{meta.transformation_id}"
    with transaction.atomic():
        # A second write of the same snapshot (a retried task) replaces the first one's waiting rows;
        # its documents that already went out are deleted after the manifest is sent (prune).
        replaced, _ = Outbox.objects.filter(snapshot=key).delete()
        objs = [
            Outbox(kind=Outbox.Kind.ROW, index=d.index, doc_id=d.id, version=version, document=d.body, snapshot=key)
            for d in docs
        ]
        objs.append(
            Outbox(
                kind=Outbox.Kind.SNAPSHOT,
                index=manifest.index,
                doc_id=manifest.id,
                version=version,
                document=manifest.body,
                snapshot=key,
                prune=bool(replaced),
            )
        )
        Outbox.objects.bulk_create(objs)
        pks = list(Outbox.objects.filter(snapshot=key).values_list("pk", flat=True))
    _send_after_commit(config, pks)
    return pks


def enqueue_actions(config: OpenSearchConfig, actions: Iterable) -> list[int]:
    """Action-log entries in a final state; a waiting document of the same entry is replaced."""
    docs = [action_document(config, a) for a in actions if a.state in FINAL_ACTION_STATES]
    if not docs:
        return []
    with transaction.atomic():
        Outbox.objects.filter(kind=Outbox.Kind.ACTION, doc_id__in=[d.id for d in docs]).delete()
        version = new_version()
        Outbox.objects.bulk_create(
            Outbox(kind=Outbox.Kind.ACTION, index=d.index, doc_id=d.id, version=version, document=d.body)
            for d in docs
        )
        pks = list(
            Outbox.objects.filter(kind=Outbox.Kind.ACTION, doc_id__in=[d.id for d in docs]).values_list("pk", flat=True)
        )
    _send_after_commit(config, pks)
    return pks


# -- the breaker: the cycle's path does not wait on an OpenSearch that just failed --------------
_down_until: dict[str, float] = {}


def breaker_open(config: OpenSearchConfig) -> bool:
    return _down_until.get(config.url, 0.0) > time.monotonic()


def _trip(config: OpenSearchConfig) -> None:
    _down_until[config.url] = time.monotonic() + BREAKER_SECONDS


def _reset(config: OpenSearchConfig) -> None:
    _down_until.pop(config.url, None)


def _send_after_commit(config: OpenSearchConfig, pks: Sequence[int]) -> None:
    if config.send_on_commit:
        transaction.on_commit(partial(send_soon, config, pks), robust=True)


def send_soon(config: OpenSearchConfig, pks: Sequence[int]) -> None:
    """After the commit: try to send these rows now, once, briefly. Never raises."""
    if breaker_open(config):
        return
    try:
        drain(config, pks=pks, inline=True)
    except Exception:  # the outbox keeps the rows; the drain sends them later
        log.exception("sending to OpenSearch failed; the documents wait in the outbox")


# -- draining -----------------------------------------------------------------------------------
@dataclass
class DrainResult:
    sent: int = 0
    superseded: int = 0  # a newer version of the document was already there
    refused: int = 0  # OpenSearch refused the document; it waits and is tried again
    pruned: int = 0  # documents of superseded writes deleted from OpenSearch
    batches: int = 0
    error: str = ""  # OpenSearch could not be reached: the batch waits
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{count(self.sent, 'document')} sent, {self.superseded} already newer, {self.refused} refused"
        if self.pruned:
            text += f", {self.pruned} stale documents deleted"
        if self.error:
            text += f"; stopped: {self.error}"
        return text


def drain(
    config: OpenSearchConfig | None = None,
    *,
    pks: Sequence[int] | None = None,
    batch_size: int = BATCH_SIZE,
    max_batches: int | None = None,
    force: bool = False,
    inline: bool = False,
) -> DrainResult:
    """Send waiting documents in batches, oldest first; delete each row once its document is in.

    ``force`` also takes documents waiting after a refusal; ``inline`` (the cycle's own send) makes
    one attempt without retries and trips the breaker when OpenSearch does not answer.
    """
    config = config or OpenSearchConfig.from_settings()
    client = get_client(config, retries=0 if inline else None)
    result = DrainResult()
    token = uuid.uuid4().hex
    after = 0  # each row once per drain, oldest first, so a refused document cannot loop
    while max_batches is None or result.batches < max_batches:
        rows = _claim(token, batch_size, force=force, pks=pks, after=after)
        if not rows:
            break
        after = rows[-1].pk
        result.batches += 1
        try:
            ensure_templates(client, config)
            done, refused, stats = _send(client, config, rows, retries=0 if inline else config.retries)
        except opensearch_errors() as exc:
            result.error = describe(exc, config)
            _release(rows, result.error)
            _trip(config)
            log.warning("OpenSearch unavailable, %s %s in the outbox: %s", count(len(rows), "document"),
                        pluralize(len(rows), "waits,wait"), result.error)
            break
        _reset(config)
        Outbox.objects.filter(pk__in=done).delete()
        _refuse(refused)
        result.sent += stats["sent"]
        result.superseded += stats["superseded"]
        result.pruned += stats["pruned"]
        result.refused += len(refused)
        result.errors.extend(sorted(set(refused.values()))[:5])
    return result


def _claim(
    token: str, batch_size: int, *, force: bool, pks: Sequence[int] | None, after: int
) -> list[Outbox]:
    """Claim up to ``batch_size`` rows with a conditional UPDATE: two drainers never share a row."""
    now = timezone.now()
    free = Q(available_at__lte=now)
    if force:
        free |= Q(claimed_by="")
    candidates = Outbox.objects.filter(free, pk__gt=after)
    if pks is not None:
        candidates = candidates.filter(pk__in=pks)
    ids = list(candidates.order_by("pk").values_list("pk", flat=True)[:batch_size])
    if not ids:
        return []
    Outbox.objects.filter(free, pk__in=ids).update(
        claimed_by=token, available_at=now + timedelta(seconds=LEASE_SECONDS)
    )
    return list(Outbox.objects.filter(pk__in=ids, claimed_by=token).order_by("pk"))


def _release(rows: Sequence[Outbox], error: str) -> None:
    # OpenSearch did not answer: not the documents' fault, so no backoff; the next drain tries again.
    Outbox.objects.filter(pk__in=[r.pk for r in rows]).update(
        claimed_by="", available_at=timezone.now(), last_error=error[:2000]
    )


def _refuse(refused: dict[int, str]) -> None:
    now = timezone.now()
    for row in Outbox.objects.filter(pk__in=list(refused)):
        row.attempts += 1
        row.last_error = refused[row.pk][:2000]
        row.claimed_by = ""
        row.available_at = now + timedelta(seconds=min(10 * 2 ** (row.attempts - 1), MAX_BACKOFF_SECONDS))
        row.save(update_fields=["attempts", "last_error", "claimed_by", "available_at"])
        log.warning("OpenSearch refused %s/%s (try %d): %s", row.index, row.doc_id, row.attempts, row.last_error)


def _send(client, config: OpenSearchConfig, rows: Sequence[Outbox], *, retries: int):
    """Bulk-index the rows; returns (pks done, {pk: why refused}, counts)."""
    from opensearchpy.helpers import streaming_bulk

    # The newest version of each document only; older rows of it are done when it is.
    newest: dict[tuple[str, str], Outbox] = {}
    for row in rows:
        key = (row.index, row.doc_id)
        if key not in newest or (row.version, row.pk) > (newest[key].version, newest[key].pk):
            newest[key] = row
    ordered = sorted(newest.values(), key=lambda r: (SEND_ORDER[r.kind], r.pk))
    actions = [
        {
            "_op_type": "index",
            "_index": r.index,
            "_id": r.doc_id,
            "_version": r.version,
            "_version_type": "external_gte",
            "_source": r.document,
        }
        for r in ordered
    ]
    answers: dict[tuple[str, str], tuple[bool, dict]] = {}
    # streaming_bulk is what helpers.bulk runs; it gives each document's answer, which the outbox
    # needs (delete a row only when its own document is in). 429s are retried with backoff.
    for ok, item in streaming_bulk(
        client,
        actions,
        chunk_size=BATCH_SIZE,
        max_retries=retries,
        initial_backoff=1,
        max_backoff=30,
        raise_on_error=False,
        raise_on_exception=True,
        yield_ok=True,
    ):
        info = next(iter(item.values()))
        answers[(info.get("_index"), str(info.get("_id")))] = (ok, info)

    done: set[int] = set()
    refused: dict[int, str] = {}
    stats = {"sent": 0, "superseded": 0, "pruned": 0}
    to_prune: list[Outbox] = []
    for row in ordered:
        ok, info = answers.get((row.index, row.doc_id), (False, {"error": "no answer for this document"}))
        if ok:
            stats["sent"] += 1
            done.add(row.pk)
            if row.kind == Outbox.Kind.SNAPSHOT and (row.prune or info.get("result") == "updated"):
                to_prune.append(row)
        elif info.get("status") == 409:  # a newer write of this document is already in
            stats["superseded"] += 1
            done.add(row.pk)
        else:
            status, error = info.get("status", "?"), info.get("error")
            if isinstance(error, dict):
                error = "{}: {}".format(error.get("type"), error.get("reason"))
            refused[row.pk] = f"HTTP {status}: {error}"
    if to_prune:
        try:
            stats["pruned"] = _prune(client, config, to_prune)
        except opensearch_errors() as exc:
            # The manifest stays in the outbox; sent again, it is "updated" and prunes again.
            for row in to_prune:
                done.discard(row.pk)
                refused[row.pk] = "deleting stale rows failed: " + describe(exc, config)
    for row in rows:
        if row.pk not in done and row.pk not in refused:
            twin = newest[(row.index, row.doc_id)]
            if twin.pk in done:
                done.add(row.pk)
    # Rows neither done nor refused (an older twin of a refused document) are released as they are.
    leftover = [r.pk for r in rows if r.pk not in done and r.pk not in refused]
    if leftover:
        Outbox.objects.filter(pk__in=leftover).update(claimed_by="", available_at=timezone.now())
    return done, refused, stats


def _prune(client, config: OpenSearchConfig, manifests: Sequence[Outbox]) -> int:
    """Delete rows that earlier writes of these snapshots left behind (a retried task's first try)."""
    by_index: dict[str, list[dict]] = {}
    for m in manifests:
        doc = m.document
        clause = {
            "bool": {
                "filter": [
                    {"term": {"CycleID": doc["CycleID"]}},
                    {"term": {"TransformationID": doc["TransformationID"]}},
                    {"range": {"WriteSeq": {"lt": doc["WriteSeq"]}}},
                ]
            }
        }
        by_index.setdefault(config.index(ROWS, doc["timestamp"]), []).append(clause)
    deleted = 0
    for index, clauses in by_index.items():
        answer = client.delete_by_query(
            index=index,
            body={"query": {"bool": {"should": clauses, "minimum_should_match": 1}}},
            conflicts="proceed",
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        deleted += answer.get("deleted", 0)
    return deleted


# -- action-log entries the signals did not see --------------------------------------------------
def sweep_actions(config: OpenSearchConfig, since: datetime) -> int:
    """Enqueue finished action-log entries since ``since`` that OpenSearch lacks (or has stale).

    The engine settles actions with conditional UPDATEs, which send no ``post_save``; this finds
    them by asking OpenSearch which documents it has (one mget per 500 entries).
    """
    client = get_client(config)
    waiting = set(Outbox.objects.filter(kind=Outbox.Kind.ACTION).values_list("doc_id", flat=True))
    candidates = [
        a
        for a in ActionLog.objects.filter(state__in=FINAL_ACTION_STATES)
        .filter(Q(finished__gte=since) | Q(finished__isnull=True, created__gte=since))
        .select_related("user")
        .order_by("pk")
        if str(a.pk) not in waiting
    ]
    enqueued = 0
    for start in range(0, len(candidates), 500):
        chunk = candidates[start : start + 500]
        docs = [{"_index": config.index(ACTIONS, a.created), "_id": str(a.pk)} for a in chunk]
        answer = client.mget(body={"docs": docs}, _source_includes=["State"])
        missing = [
            a
            for a, doc in zip(chunk, answer["docs"])
            if not doc.get("found") or doc.get("_source", {}).get("State") != a.state
        ]
        enqueued += len(enqueue_actions(config, missing))
    return enqueued


# -- what waits ---------------------------------------------------------------------------------
def summary() -> dict:
    agg = Outbox.objects.aggregate(n=Count("pk"), oldest=Min("created"))
    by_kind = dict(Outbox.objects.values_list("kind").annotate(n=Count("pk")).order_by())
    last = Outbox.objects.exclude(last_error="").order_by("-pk").values_list("last_error", flat=True).first()
    return {"waiting": agg["n"], "oldest": agg["oldest"], "by_kind": by_kind, "last_error": last or ""}


def health(config: OpenSearchConfig | None = None) -> dict:
    """For a health page: does OpenSearch answer, and how much waits in the outbox (and since when)."""
    config = config or OpenSearchConfig.from_settings()
    waiting = summary()
    try:
        get_client(config, retries=0).info()
        ok, detail = True, f"OpenSearch at {config.safe_url} answers"
    except opensearch_errors() as exc:
        ok, detail = False, describe(exc, config)
    return {"ok": ok, "detail": detail, **waiting}
