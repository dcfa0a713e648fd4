"""The dashboard's own failover data: policies, cycles, the action log, counters and locks."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from failover import blockers, domain
from failover.rules import RulesPolicy
from failover.signals import action_finished


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
    transformation_types = models.JSONField(
        default=list, blank=True, help_text="TransformationTypes; empty: every type"
    )
    report_types = models.JSONField(default=list, blank=True, help_text="Report")
    complete_types = models.JSONField(default=list, blank=True, help_text="Complete")
    flush_types = models.JSONField(default=list, blank=True, help_text="Flush")
    reassign_types = models.JSONField(default=list, blank=True, help_text="Reassign")
    max_reassign = models.PositiveIntegerField(
        default=2, help_text="MaxReassign: times a file may be set back to Unused"
    )
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

    def as_rules_policy(self) -> RulesPolicy:
        return RulesPolicy(
            complete_types=frozenset(self.complete_types),
            flush_types=frozenset(self.flush_types),
            reassign_types=frozenset(self.reassign_types),
            report_types=frozenset(self.report_types),
            max_reassign=self.max_reassign,
            max_flush=self.max_flush,
        )


class CycleQuerySet(models.QuerySet):
    def scheduled(self) -> CycleQuerySet:
        """The cycles over the whole selection that the schedule counts: beat's, and the fan-out
        started by hand (``failover start-cycle``). Not an operator's button press (``web``), nor a
        one-off ``failover cycle`` (``cli``, often of a few transformations), nor a benchmark."""
        return self.filter(trigger__in=Cycle.SCHEDULED_TRIGGERS)


class Cycle(models.Model):
    class State(models.TextChoices):
        RUNNING = "running"
        FINISHED = "finished"
        FAILED = "failed"

    class Trigger(models.TextChoices):
        BEAT = "beat", "Celery beat (PollingTime)"
        CLI = "cli", "manage.py failover cycle"
        CLI_FANOUT = "cli-fanout", "manage.py failover start-cycle"
        WEB = "web", "an operator's button"
        BENCHMARK = "benchmark", "a benchmark"
        # Written by an earlier version's start_cycle task; kept so old rows stay valid.
        USER = "user", "an operator (earlier versions)"

    SCHEDULED_TRIGGERS = (Trigger.BEAT, Trigger.CLI_FANOUT)

    objects = CycleQuerySet.as_manager()

    started = models.DateTimeField(default=timezone.now, db_index=True)
    finished = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    trigger = models.CharField(max_length=32, choices=Trigger.choices, default=Trigger.CLI)
    backend = models.CharField(max_length=32, default="simulated")
    transformations = models.PositiveIntegerField(default=0)
    actions = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    calls = models.JSONField(default=dict, blank=True)
    # Per transformation: {id: "ok" | "skipped: ..." | "error: ..."}.
    outcomes = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)
    # A full resync (FAILOVER_RESYNC_HOURS, or ``failover cycle --full``) of some transformations'
    # mirror: how many, and the drift found (rows of the mirror DIRAC did not show as changed),
    # {"added": n, "changed": n, "removed": n, "transformations": {id: {...}}}; repaired at once.
    full = models.BooleanField(default=False)
    resynced = models.PositiveIntegerField(default=0)
    drift_rows = models.PositiveIntegerField(default=0)
    drift = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started"]

    def __str__(self) -> str:
        return f"cycle {self.pk} ({self.state})"

    @property
    def duration(self) -> timedelta | None:
        return (self.finished - self.started) if self.finished else None

    @staticmethod
    def stuck_after(polling_time: int) -> timedelta:
        """How long a cycle may run before it is declared stuck (FAILOVER_STUCK_SECONDS, or PollingTime)."""
        return timedelta(seconds=max(settings.FAILOVER_STUCK_SECONDS, polling_time))

    def is_stuck(self, polling_time: int, now=None) -> bool:
        """Still running, and for longer than ``stuck_after``: the one test of "this cycle is stuck"."""
        now = now or timezone.now()
        return self.state == Cycle.State.RUNNING and now - self.started >= Cycle.stuck_after(polling_time)


class ActionLog(models.Model):
    """Every action on DIRAC: who, what, on which transformation, tasks and files, when, outcome.

    An action is written ``pending`` before DIRAC is called and settled after, in the same
    transaction as the counters it moves; a ``pending`` row found later (a crash, a timeout) is
    reconciled against DIRAC's state before the transformation is treated again.
    """

    class Kind(models.TextChoices):
        # The domain's action kinds (failover/domain.py), with their labels.
        SYNC = domain.SYNC, domain.KIND_LABELS[domain.SYNC]
        COMPLETE = domain.COMPLETE, domain.KIND_LABELS[domain.COMPLETE]
        FLUSH = domain.FLUSH_ACTION, domain.KIND_LABELS[domain.FLUSH_ACTION]
        REASSIGN = domain.REASSIGN, domain.KIND_LABELS[domain.REASSIGN]

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

    def settle(self, state: str, outcome: str, *, expected: str = State.PENDING, then=None, **fields) -> bool:
        """Move this entry from ``expected`` to a final ``state``, once: the one place an action is
        settled (by a cycle, an approval, a rejection or a reconciliation).

        A conditional UPDATE, so two settlers never both win; ``then()`` (the counters the action
        moves) runs in the same transaction, and ``action_finished`` is always sent. Returns
        whether this call settled it; the instance is refreshed either way.
        """
        with transaction.atomic():
            updated = ActionLog.objects.filter(pk=self.pk, state=expected).update(
                state=state, outcome=outcome, finished=timezone.now(), **fields
            )
            if updated:
                if then is not None:
                    then()
                action_finished.send(sender=ActionLog, action_id=self.pk)
        self.refresh_from_db()
        return bool(updated)


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


class BlockerRecord(models.Model):
    """One blocker (failover/blockers.py) of a transformation as its last treatment saw it.

    Rows, so pages filter and count by code in SQL; the cycle replaces a transformation's rows
    when they change, in the transaction that releases its lock.
    """

    transformation_id = models.IntegerField()
    position = models.PositiveSmallIntegerField(default=0)
    code = models.CharField(max_length=32)
    text = models.TextField()
    count = models.IntegerField(null=True, blank=True)
    limit = models.IntegerField(null=True, blank=True)
    related = models.IntegerField(null=True, blank=True)
    fix = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["transformation_id", "position"]
        indexes = [
            models.Index(fields=["transformation_id", "position"]),
            models.Index(fields=["code", "transformation_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.transformation_id} {self.code}: {self.text}"

    def as_blocker(self) -> blockers.Blocker:
        return blockers.Blocker(self.code, self.text, self.count, self.limit, self.related, self.fix or None)

    @classmethod
    def of(cls, transformation_id: int, position: int, b: blockers.Blocker) -> BlockerRecord:
        return cls(transformation_id=transformation_id, position=position, code=b.code, text=b.text, count=b.count,
                   limit=b.limit, related=b.related, fix=b.fix or "")


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


class ParentLink(models.Model):
    """A transformation's production and parent as the real DIRAC's ProductionSystem says, kept
    across processes (failover/backends/dirac.py): reading them costs getProductions, one
    getProductionTransformations per production and one get_parent_transformation per
    transformation. A link never changes once a transformation is in a production; "in no
    production" is kept only for a transformation that is not New (only a New one can still be
    added). Rows of a production that no longer exists are dropped when the productions are read.
    """

    transformation_id = models.IntegerField(primary_key=True)
    production_id = models.IntegerField(null=True, blank=True, db_index=True)
    parent_id = models.IntegerField(null=True, blank=True)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.transformation_id}: production {self.production_id}, parent {self.parent_id}"


# -- the mirror: what the rules and pages need of DIRAC, kept up to date from deltas ------------


class MirrorState(models.Model):
    """A transformation's mirror: when it was read, what DIRAC's file counts were, and what its
    last plan saw (failover/mirror.py). No row: no mirror yet, the next cycle reads it in full."""

    transformation_id = models.IntegerField(primary_key=True)
    # When the last read of its tasks and jobs started (our clock): the next delta read asks for
    # what changed since this, less FAILOVER_MIRROR_MARGIN_SECONDS.
    cut = models.DateTimeField()
    # When its tasks and jobs were last read in full (the first fill or a resync).
    last_full = models.DateTimeField()
    file_counts = models.JSONField(default=dict, blank=True)  # status -> count, as last read
    tasks = models.IntegerField(default=0)
    jobs = models.IntegerField(default=0)
    # What the last plan was made from (a digest of every input but the tasks and jobs) and
    # whether it found nothing to do that could change by itself: then, while no task or job
    # changes and the digest stays, the cycle does not plan it again.
    plan_key = models.CharField(max_length=64, blank=True)
    quiet = models.BooleanField(default=False)
    # The blockers of that plan (before the ones seen after acting), as stored blocker values.
    plan_blockers = models.JSONField(default=list, blank=True)
    # The last resync's drift: {"added": n, "changed": n, "removed": n} and when.
    drift = models.JSONField(default=dict, blank=True)
    drift_at = models.DateTimeField(null=True, blank=True)
    # The cycle of the last resync (its record sums the drift of its transformations).
    resync_cycle = models.IntegerField(null=True, blank=True, db_index=True)

    def __str__(self) -> str:
        return f"mirror of {self.transformation_id} (cut {self.cut:%Y-%m-%d %H:%M:%S})"


class MirrorTask(models.Model):
    """One task of a mirrored transformation, as DIRAC last showed it."""

    transformation_id = models.IntegerField()
    task_id = models.IntegerField()
    job_id = models.IntegerField(default=0)
    status = models.CharField(max_length=32)
    # When the mirror last saw this row change (our clock).
    last_update = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["transformation_id", "task_id"], name="mirror_task_unique")]
        indexes = [models.Index(fields=["transformation_id", "job_id"], name="mirror_task_job")]

    def __str__(self) -> str:
        return f"{self.transformation_id}/{self.task_id}: job {self.job_id} {self.status}"


class MirrorJob(models.Model):
    """One job of a mirrored transformation's JobGroup, as DIRAC last showed it."""

    job_id = models.IntegerField(primary_key=True)
    # NULL for a job of a delta read that no task of the mirror names yet.
    transformation_id = models.IntegerField(null=True, blank=True)
    status = models.CharField(max_length=32)
    minor_status = models.CharField(max_length=128, blank=True)
    application_status = models.CharField(max_length=255, blank=True)
    site = models.CharField(max_length=128, blank=True)
    # When the mirror last saw this row change (our clock).
    last_update = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["transformation_id", "status"], name="mirror_job_status")]

    def __str__(self) -> str:
        return f"job {self.job_id} of {self.transformation_id}: {self.status}"
