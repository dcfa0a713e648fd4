"""Stored job-status aggregates, the SQL aggregate store's tables.

A cycle writes one snapshot per transformation it read. Identical aggregates are stored once
(``AggregateSet``, keyed by a digest) and shared by the snapshots that saw them, so a steady
production costs one small row per transformation and cycle.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class AggregateSet(models.Model):
    transformation_id = models.IntegerField()
    digest = models.CharField(max_length=64)
    total = models.IntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["transformation_id", "digest"], name="aggregate_set_unique")
        ]


class AggregateRowModel(models.Model):
    aggregate_set = models.ForeignKey(AggregateSet, on_delete=models.CASCADE, related_name="rows")
    status = models.CharField(max_length=32)
    minor_status = models.CharField(max_length=128)
    application_status = models.CharField(max_length=255)
    site = models.CharField(max_length=64)
    count = models.IntegerField()
    first_job = models.BigIntegerField(default=0)

    class Meta:
        db_table = "reports_aggregaterow"


class Snapshot(models.Model):
    cycle_id = models.BigIntegerField(db_index=True)
    timestamp = models.DateTimeField(db_index=True)
    transformation_id = models.IntegerField()
    production_id = models.IntegerField(null=True, blank=True)
    transformation_type = models.CharField(max_length=32, blank=True)
    aggregate_set = models.ForeignKey(AggregateSet, on_delete=models.PROTECT, related_name="snapshots")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cycle_id", "transformation_id"], name="snapshot_unique")
        ]
        indexes = [models.Index(fields=["transformation_id", "-timestamp"])]


class Outbox(models.Model):
    """A document on its way to OpenSearch.

    Written in the caller's transaction (a cycle's aggregates, a finished action), sent by
    ``reports.outbox.drain`` and deleted only once OpenSearch has accepted it, so nothing is lost
    while OpenSearch is down. Document ids are deterministic and ``version`` is sent as an
    external version: a re-send overwrites the same document and an older write never overwrites
    a newer one, whatever order two workers send them in.
    """

    class Kind(models.TextChoices):
        ROW = "row", "Aggregate row"
        SNAPSHOT = "snapshot", "Snapshot manifest"
        ACTION = "action", "Action-log entry"

    created = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    index = models.CharField(max_length=255)
    doc_id = models.CharField(max_length=255)
    version = models.BigIntegerField()
    document = models.JSONField()
    # "<cycle>-<transformation>" for aggregate documents: a second write of the same snapshot
    # (a retried task) replaces the first one's rows that are still waiting.
    snapshot = models.CharField(max_length=64, blank=True, db_index=True)
    # A snapshot manifest that replaced waiting rows of an earlier write: after sending, delete the
    # earlier write's documents that may already be in OpenSearch.
    prune = models.BooleanField(default=False)
    # A drainer's claim (a lease until ``available_at``), or after a refused document, the backoff.
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    available_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "outbox"
        indexes = [
            models.Index(fields=["available_at", "id"], name="outbox_available"),
            models.Index(fields=["kind", "doc_id"], name="outbox_doc"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.index}/{self.doc_id}"
