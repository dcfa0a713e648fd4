"""OpenSearch documents: what a snapshot and an action-log entry look like in the indices, with deterministic ids."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone

from failover.recording import SnapshotMeta
from reports.aggregation import AggregateRow
from reports.opensearch_config import ACTIONS, ROWS, SNAPSHOTS, OpenSearchConfig


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
