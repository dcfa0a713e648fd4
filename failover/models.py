"""The dashboard's own failover data: policies, cycles, the action log, counters and locks."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


def _agent_statuses() -> list[str]:
    return ["Active"]


class Policy(models.Model):
    """The agent's options (reference 4.1), with its defaults. The first enabled policy is used."""

    class Mode(models.TextChoices):
        ACT = "act", "Act: the cycle carries out its decisions"
        PROPOSE = "propose", "Propose: the cycle proposes, an operator approves"

    name = models.CharField(max_length=100, unique=True, default="default")
    enabled = models.BooleanField(default=True)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.ACT)
    transformation_statuses = models.JSONField(default=_agent_statuses, help_text="TransformationStatus")
    transformation_types = models.JSONField(default=list, blank=True, help_text="TransformationTypes; empty: every type")
    report_types = models.JSONField(default=list, blank=True, help_text="Report")
    complete_types = models.JSONField(default=list, blank=True, help_text="Complete")
    flush_types = models.JSONField(default=list, blank=True, help_text="Flush")
    reassign_types = models.JSONField(default=list, blank=True, help_text="Reassign")
    max_reassign = models.PositiveIntegerField(default=2, help_text="MaxReassign: times a file may be set back to Unused")
    max_flush = models.PositiveIntegerField(default=2, help_text="MaxFlush: flushes per transformation")
    polling_time = models.PositiveIntegerField(default=120, help_text="PollingTime, seconds between cycles")
    mail_to = models.JSONField(default=list, blank=True, help_text="MailTo")
    mail_from = models.CharField(max_length=255, default="noreply@ctao.dirac", blank=True, help_text="MailFrom")
    source = models.TextField(blank=True, help_text="Where the options came from (e.g. the imported file)")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "policies"
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def current(cls) -> Policy:
        policy = cls.objects.filter(enabled=True).order_by("id").first()
        return policy if policy is not None else cls(name="default")

    def as_rules_policy(self):
        from failover.rules import RulesPolicy

        return RulesPolicy(
            complete_types=frozenset(self.complete_types),
            flush_types=frozenset(self.flush_types),
            reassign_types=frozenset(self.reassign_types),
            report_types=frozenset(self.report_types),
            max_reassign=self.max_reassign,
            max_flush=self.max_flush,
        )


class Cycle(models.Model):
    class State(models.TextChoices):
        RUNNING = "running"
        FINISHED = "finished"
        FAILED = "failed"

    started = models.DateTimeField(default=timezone.now, db_index=True)
    finished = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    trigger = models.CharField(max_length=32, default="cli")
    backend = models.CharField(max_length=32, default="simulated")
    transformations = models.PositiveIntegerField(default=0)
    actions = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    calls = models.JSONField(default=dict, blank=True)
    # Per transformation: {id: "ok" | "skipped: ..." | "error: ..."}.
    outcomes = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-started"]

    def __str__(self) -> str:
        return f"cycle {self.pk} ({self.state})"

    @property
    def duration(self) -> timedelta | None:
        return (self.finished - self.started) if self.finished else None


class ActionLog(models.Model):
    """Every action on DIRAC: who, what, on which transformation, tasks and files, when, outcome.

    An action is written ``pending`` before DIRAC is called and settled after, in the same
    transaction as the counters it moves; a ``pending`` row found later (a crash, a timeout) is
    reconciled against DIRAC's state before the transformation is treated again.
    """

    class Kind(models.TextChoices):
        SYNC = "sync", "Copy job statuses"
        COMPLETE = "complete", "Complete"
        FLUSH = "flush", "Flush"
        REASSIGN = "reassign", "Reassign failed"

    class State(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"
        INTERRUPTED = "interrupted"
        PROPOSED = "proposed"
        REJECTED = "rejected"
        STALE = "stale"

    created = models.DateTimeField(default=timezone.now, db_index=True)
    finished = models.DateTimeField(null=True, blank=True)
    cycle = models.ForeignKey(Cycle, null=True, blank=True, on_delete=models.SET_NULL, related_name="action_logs")
    transformation_id = models.IntegerField(db_index=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    actor = models.CharField(max_length=150, default="system")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    reason = models.TextField(blank=True)
    # What was asked: {"tasks": {...}, "lfns": [...], "status": ..., "expected": ...}.
    details = models.JSONField(default=dict, blank=True)
    outcome = models.TextField(blank=True)
    error = models.TextField(blank=True)
    # Operator actions carry the form's one-time key, so a double submit acts once.
    request_key = models.CharField(max_length=64, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["transformation_id", "state"])]

    def __str__(self) -> str:
        return f"{self.kind} on {self.transformation_id} ({self.state})"


class ReassignCounter(models.Model):
    """How many times this system set a file of a transformation back to Unused."""

    transformation_id = models.IntegerField()
    lfn = models.CharField(max_length=512)
    count = models.PositiveIntegerField(default=0)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["transformation_id", "lfn"], name="reassign_counter_unique")]

    def __str__(self) -> str:
        return f"{self.transformation_id} {self.lfn}: {self.count}"


class TransformationState(models.Model):
    """One row per transformation seen: the lock, the flush counter, and what the pages list.

    The lock is a lease taken with a conditional UPDATE that must change exactly one row, so two
    cycles (or a cycle and an operator) never act on one transformation at once, and a crashed
    holder's lock expires by itself.
    """

    transformation_id = models.IntegerField(primary_key=True)
    name = models.CharField(max_length=255, blank=True)
    type = models.CharField(max_length=32, blank=True, db_index=True)
    status = models.CharField(max_length=32, blank=True, db_index=True)
    group_size = models.FloatField(default=1)
    production_id = models.IntegerField(null=True, blank=True, db_index=True)
    parent_id = models.IntegerField(null=True, blank=True)
    files = models.JSONField(default=dict, blank=True)  # status -> count
    files_total = models.IntegerField(default=0)
    files_processed = models.IntegerField(default=0)
    jobs = models.JSONField(default=dict, blank=True)  # status -> count
    jobs_total = models.IntegerField(default=0)
    jobs_failed = models.IntegerField(default=0)
    failed_share = models.FloatField(default=0)
    flush_count = models.PositiveIntegerField(default=0)
    reassigned_files = models.IntegerField(default=0)
    attention = models.JSONField(default=list, blank=True)
    tasks_without_job = models.IntegerField(default=0)
    unchanged_cycles = models.IntegerField(default=0, db_index=True)
    last_action = models.CharField(max_length=255, blank=True)
    last_action_at = models.DateTimeField(null=True, blank=True)
    last_cycle = models.ForeignKey(Cycle, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_seen = models.DateTimeField(null=True, blank=True)
    locked_by = models.CharField(max_length=64, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["transformation_id"]

    def __str__(self) -> str:
        return f"{self.transformation_id} {self.name}"

    @property
    def progress(self) -> float:
        return round(100 * self.files_processed / self.files_total, 1) if self.files_total else 0.0


class CycleItem(models.Model):
    """One transformation's part of a fanned-out cycle: queued, then its outcome.

    The database, not the broker, holds the work: a worker claims a queued item for a lease
    (``lease_until``, FAILOVER_LEASE_SECONDS) that it renews while it works; an item whose lease
    ran out while still queued belongs to a worker that is gone, and beat's tick puts it (and the
    rest of its production's chain) back on the queue.
    """

    class State(models.TextChoices):
        QUEUED = "queued"
        OK = "ok"
        SKIPPED = "skipped"
        ERROR = "error"
        LOST = "lost"

    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="items")
    transformation_id = models.IntegerField()
    production_id = models.IntegerField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    outcome = models.TextField(blank=True)
    worker = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    calls = models.PositiveIntegerField(default=0)
    # Where the item sits in the cycle's order (parents first) and its parent, to enqueue it again.
    position = models.PositiveIntegerField(default=0)
    parent_id = models.IntegerField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True, db_index=True)
    requeued = models.PositiveIntegerField(default=0)
    requeued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cycle", "transformation_id"], name="cycle_item_unique")]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"cycle {self.cycle_id} / {self.transformation_id}: {self.state}"


class Heartbeat(models.Model):
    """When a periodic part of the system last showed signs of life (beat's tick, workers)."""

    name = models.CharField(max_length=100, primary_key=True)
    at = models.DateTimeField()
    detail = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def beat(cls, name: str, detail: str = "") -> None:
        cls.objects.update_or_create(name=name, defaults={"at": timezone.now(), "detail": detail[:255]})
