"""Stored job-status aggregates, the SQL aggregate store's tables.

A cycle writes one snapshot per transformation it read. Identical aggregates are stored once
(``AggregateSet``, keyed by a digest) and shared by the snapshots that saw them, so a steady
production costs one small row per transformation and cycle.
"""

from __future__ import annotations

from django.db import models


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
