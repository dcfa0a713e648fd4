"""The simulated DIRAC's own tables: a Transformation System and a Job DB in miniature.

Columns follow DIRAC's (TransformationFiles, TransformationTasks, Jobs) closely enough that the
same rules apply (DIRAC's TransformationDB and JobDB schemas).
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import models


def dirac_now() -> datetime:
    """Now as DIRAC's UTC_TIMESTAMP() writes it into a LastUpdateTime: UTC, whole seconds.

    Kept timezone-aware (the simulator's database stores UTC, USE_TZ); docs/scenario.md says
    which simulated writes set it ("LastUpdateTime: which writes move it").
    """
    return datetime.now(UTC).replace(microsecond=0)


class SimProduction(models.Model):
    id = models.IntegerField(primary_key=True)
    name = models.CharField(max_length=255)
    status = models.CharField(max_length=32, default="Active")

    class Meta:
        ordering = ["id"]


class SimTransformation(models.Model):
    id = models.IntegerField(primary_key=True)
    name = models.CharField(max_length=255)
    type = models.CharField(max_length=32)
    status = models.CharField(max_length=32, db_index=True)
    group_size = models.FloatField(default=1)
    production = models.IntegerField(null=True, blank=True)
    parent = models.IntegerField(null=True, blank=True)
    last_update = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]


class SimFile(models.Model):
    transformation = models.IntegerField()
    lfn = models.CharField(max_length=512)
    status = models.CharField(max_length=32, default="Unused")
    task = models.IntegerField(null=True, blank=True)
    error_count = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["transformation", "lfn"], name="simfile_unique_lfn")
        ]
        indexes = [models.Index(fields=["transformation", "status"])]


class SimTask(models.Model):
    transformation = models.IntegerField()
    task = models.IntegerField()
    job = models.IntegerField(default=0)
    status = models.CharField(max_length=32, default="Created")
    # TransformationTasks.LastUpdateTime: set on creation and by every setTaskStatus.
    last_update = models.DateTimeField(default=dirac_now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["transformation", "task"], name="simtask_unique_task")
        ]
        indexes = [models.Index(fields=["transformation", "last_update"])]


class SimJob(models.Model):
    id = models.IntegerField(primary_key=True)
    status = models.CharField(max_length=32, default="Received")
    minor_status = models.CharField(max_length=128, default="Unknown")
    application_status = models.CharField(max_length=255, default="Unknown")
    site = models.CharField(max_length=64, default="ANY")
    # The transformation id zero-padded to 8 digits, as DIRAC sets it at submission.
    job_group = models.CharField(max_length=32, default="00000000", db_index=True)
    # Jobs.LastUpdateTime: moved by status updates, not by a site set alone or a heartbeat.
    last_update = models.DateTimeField(default=dirac_now)
    # How many `advance` steps the job has spent in its status (drives the simulated agents).
    age = models.IntegerField(default=0)
    # JobDB InputData: fixed at submission (derived from the task's files unless a scenario gave
    # it; ``input_data_given`` says which, so that dump writes only what was given).
    input_data = models.JSONField(default=list)
    input_data_given = models.BooleanField(default=False)
    # The job parameter ProductionOutputData as a list; None: the job has no such parameter.
    output_data = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["job_group", "last_update"])]


class SimCatalogFile(models.Model):
    """One LFN of the simulated DIRAC File Catalog, with its user metadata and ancestors."""

    lfn = models.CharField(max_length=512, unique=True)
    metadata = models.JSONField(default=dict)
    ancestors = models.JSONField(default=list)
    # metadata["jobID"] as text, indexed: CTADIRAC's outputs are found by it.
    job = models.CharField(max_length=32, null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["lfn"]


class SimRequest(models.Model):
    """A Request Management System request of a job (at most one per job in a scenario)."""

    job = models.IntegerField(unique=True)
    status = models.CharField(max_length=32)

    class Meta:
        ordering = ["job"]


class SimState(models.Model):
    """Small key/value facts of the simulator (the advance step, its random seed)."""

    key = models.CharField(max_length=64, primary_key=True)
    value = models.TextField()
