"""The dashboard's own failover data: policies, cycles, the action log, counters and locks."""

from __future__ import annotations

import json
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
        RECOVER = domain.RECOVER, domain.KIND_LABELS[domain.RECOVER]
        REMOVE_OUTPUTS = domain.REMOVE_OUTPUTS, domain.KIND_LABELS[domain.REMOVE_OUTPUTS]

    class State(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"
        INTERRUPTED = "interrupted"
        PROPOSED = "proposed"
        REJECTED = "rejected"
        STALE = "stale"
        # A proposal replaced by a newer decision of the same kind (``superseded_by``).
        SUPERSEDED = "superseded"

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
    # What the action did, as numbers (failover/outcomes.py): the pages' sentences are built from
    # it, never parsed from ``outcome``. Small, unlike ``details``, so lists may load it.
    result = models.JSONField(default=dict, blank=True)
    # The newer proposal that replaced this one (state ``superseded``).
    superseded_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="supersedes")

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["transformation_id", "state"])]
        constraints = [
            # One live proposal per transformation and kind: a new decision supersedes the waiting one.
            # Recovery's kinds have one live proposal per (transformation, case) instead, kept by
            # failover/cycle/recover.py (the case is in the details).
            models.UniqueConstraint(fields=["transformation_id", "kind"],
                                    condition=models.Q(state="proposed") & ~models.Q(kind__in=domain.RECOVERY_KINDS),
                                    name="one_live_proposal"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on {self.transformation_id} ({self.state})"

    def settle(self, state: str, outcome: str, *, expected: str = State.PENDING, then=None, **fields) -> bool:
        """Move this entry from ``expected`` to a final ``state``, once: the one place an action is
        settled (by a cycle, an approval, a rejection or a reconciliation).

        A conditional UPDATE, so two settlers never both win; ``then()`` (the counters the action
        moves) runs in the same transaction, and ``action_finished`` is always sent. Returns
        whether this call settled it. The instance is up to date either way: when this call
        settled it, with the values just written (as the database gives them back), without
        reading the row again; otherwise read again, since another settler won.
        """
        written = {"state": state, "outcome": outcome, "finished": timezone.now(), **fields}
        with transaction.atomic():
            updated = ActionLog.objects.filter(pk=self.pk, state=expected).update(**written)
            if updated:
                if then is not None:
                    then()
                action_finished.send(sender=ActionLog, action_id=self.pk)
        if updated:
            self._written(written)
        else:
            self.refresh_from_db()
        return bool(updated)

    def _written(self, written: dict) -> None:
        """Set the fields an UPDATE just wrote on this instance: a JSON field goes through JSON,
        as the database would give it back (tuples become lists, keys strings)."""
        for name, value in written.items():
            field = self._meta.get_field(name)
            if isinstance(field, models.JSONField):
                value = json.loads(json.dumps(value, cls=field.encoder))
            setattr(self, name, value)

    @classmethod
    def propose(cls, **fields) -> ActionLog | None:
        """Write a proposal, the one live one of its transformation and kind.

        A waiting proposal that asks the same (``same_request``) stays, and None is returned; any
        other waiting one is marked ``superseded``, linked to the new one, in the same transaction
        (the constraint ``one_live_proposal`` holds the line if two writers ever raced).
        """
        tid, kind = fields["transformation_id"], fields["kind"]
        with transaction.atomic():
            waiting = list(cls.objects.select_for_update().filter(
                transformation_id=tid, kind=kind, state=cls.State.PROPOSED).order_by("id"))
            if any(same_request(p.details, fields.get("details", {})) for p in waiting):
                return None
            old = [p.pk for p in waiting]
            # Free the slot first: the constraint allows one live proposal at any moment.
            cls.objects.filter(pk__in=old, state=cls.State.PROPOSED).update(
                state=cls.State.SUPERSEDED, finished=timezone.now())
            new = cls.objects.create(state=cls.State.PROPOSED, **fields)
            for p in waiting:
                cls.objects.filter(pk=p.pk).update(
                    superseded_by=new, outcome=f"superseded by proposal {new.pk}: {new.reason}")
                action_finished.send(sender=ActionLog, action_id=p.pk)
        return new


class ActionRequest(models.Model):
    """An operator's confirmed action over one or many transformations, carried out by a worker.

    The confirmation writes this row (its ``key`` is the form's one-time key, so a second submit
    finds it and enqueues nothing) and enqueues ``failover.run_action_request`` after the commit.
    The worker claims the row with a conditional UPDATE and a lease (renewed while it works), then
    acts on one transformation at a time through ``failover.actions.execute``, whose per
    transformation key ``<key>:<id>`` makes a redelivered task act no more; after each it appends
    the outcome to ``results``, which the result page polls.
    """

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        FINISHED = "finished"
        FAILED = "failed"

    # Approving proposals (one or many, ``proposal_ids``) rather than one of the four buttons.
    APPROVE = "approve"
    KINDS = [*ActionLog.Kind.choices, (APPROVE, "Approve proposals")]

    key = models.CharField(max_length=32, unique=True)
    kind = models.CharField(max_length=16, choices=KINDS)
    transformation_ids = models.JSONField(default=list)
    # An approval's proposals, in order; their transformations are in ``transformation_ids``.
    proposal_ids = models.JSONField(default=list, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor = models.CharField(max_length=150)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # When beat's tick last put it back on the queue (a worker gone, a message lost): once per lease.
    requeued_at = models.DateTimeField(null=True, blank=True)
    # The transformation being treated now, and what the lock it waits for is held by.
    current = models.IntegerField(null=True, blank=True)
    waiting_for = models.CharField(max_length=64, blank=True)
    # One entry per transformation treated: {"transformation", "state", "message", "action"}; an
    # approval has one per proposal treated, with its "proposal" too.
    results = models.JSONField(default=list, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} request {self.key} ({self.state})"

    @property
    def is_approval(self) -> bool:
        return self.kind == self.APPROVE

    @property
    def unit(self) -> str:
        """What the request counts: proposals for an approval, transformations otherwise."""
        return "proposal" if self.is_approval else "transformation"

    @property
    def total(self) -> int:
        return len(self.proposal_ids) if self.is_approval else len(self.transformation_ids)

    @property
    def treated(self) -> int:
        return len(self.results)

    @property
    def is_over(self) -> bool:
        return self.state in (self.State.FINISHED, self.State.FAILED)

    @property
    def percent(self) -> int:
        return round(100 * self.treated / self.total) if self.total else 100

    @property
    def seconds(self) -> float | None:
        """From the confirmation to the outcome."""
        return (self.finished - self.created).total_seconds() if self.finished else None


def same_request(a: dict, b: dict) -> bool:
    """Whether two decisions (their ``details``) ask DIRAC for the same change: the same tasks and
    files, or the same status change. What the engine knew around it (jobs, sites) may differ."""
    keys = ("kind", "tasks", "status", "expected")
    return all((a or {}).get(k) == (b or {}).get(k) for k in keys)


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
    # Of the failed (Failed or Killed) tasks, those whose files still wait in them (Assigned):
    # the rest were recovered (their files reassigned to later tasks, or Processed).
    failed_waiting = models.IntegerField(default=0)
    flush_count = models.PositiveIntegerField(default=0)
    reassigned_files = models.IntegerField(default=0)
    tasks_without_job = models.IntegerField(default=0)
    unchanged_cycles = models.IntegerField(default=0, db_index=True)
    last_action = models.CharField(max_length=255, blank=True)
    last_action_at = models.DateTimeField(null=True, blank=True)
    # The action behind ``last_action``: the overview builds its sentence from the action's result.
    last_action_log = models.ForeignKey("ActionLog", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")
    last_cycle = models.ForeignKey(Cycle, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_seen = models.DateTimeField(null=True, blank=True)
    # The completion forecast (failover/insight.py: forecast), written with the cycle's row: the
    # estimate and its range (null when there is no basis, said by ``eta_note``).
    eta = models.DateTimeField(null=True, blank=True, db_index=True)
    eta_low = models.DateTimeField(null=True, blank=True)
    eta_high = models.DateTimeField(null=True, blank=True)
    eta_basis = models.CharField(max_length=16, blank=True)
    eta_note = models.CharField(max_length=255, blank=True)
    locked_by = models.CharField(max_length=64, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["transformation_id"]

    def __str__(self) -> str:
        return f"{self.transformation_id} {self.name}"

    @property
    def progress(self) -> float:
        return round(100 * self.files_processed / self.files_total, 1) if self.files_total else 0.0

    @property
    def failed_recovered(self) -> int:
        return max(self.jobs_failed - self.failed_waiting, 0)

    @property
    def waiting_share(self) -> float:
        """The share of jobs that failed and whose files still wait (red on the overview)."""
        return round(100 * self.failed_waiting / self.jobs_total, 1) if self.jobs_total else 0.0


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
    # When the condition began (kept across cycles while it lasts) and the numbers behind the text.
    since = models.DateTimeField(null=True, blank=True)
    details = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["transformation_id", "position"]
        indexes = [
            models.Index(fields=["transformation_id", "position"]),
            models.Index(fields=["code", "transformation_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.transformation_id} {self.code}: {self.text}"

    def as_blocker(self) -> blockers.Blocker:
        return blockers.Blocker(self.code, self.text, self.count, self.limit, self.related, self.fix or None,
                                self.since, self.details)

    @classmethod
    def of(cls, transformation_id: int, position: int, b: blockers.Blocker) -> BlockerRecord:
        return cls(transformation_id=transformation_id, position=position, code=b.code, text=b.text, count=b.count,
                   limit=b.limit, related=b.related, fix=b.fix or "", since=b.since, details=b.details)


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


class ProgressSample(models.Model):
    """A transformation as one cycle saw it: its file counts, finished jobs and unsubmitted tasks.

    Written at settle time (with the lock's release), one small row per transformation and cycle;
    the forecasts and the stall alerts read the recent ones (failover/insight.py). Pruned with the
    cycles after FAILOVER_KEEP_DAYS (failover/maintenance.py).
    """

    transformation_id = models.IntegerField()
    cycle_id = models.BigIntegerField(null=True, blank=True)
    at = models.DateTimeField()
    status = models.CharField(max_length=32, blank=True)
    unused = models.IntegerField(default=0)
    assigned = models.IntegerField(default=0)
    processed = models.IntegerField(default=0)
    jobs_done = models.IntegerField(default=0)
    jobs_failed = models.IntegerField(default=0)
    unsubmitted = models.IntegerField(default=0)
    oldest_unsubmitted = models.IntegerField(default=0)

    class Meta:
        ordering = ["transformation_id", "at", "id"]
        indexes = [models.Index(fields=["transformation_id", "at"]), models.Index(fields=["at"])]

    def __str__(self) -> str:
        return f"{self.transformation_id} at {self.at:%Y-%m-%d %H:%M}: {self.processed} Processed"


def _recovery_statuses() -> list[str]:
    return ["Active", "Completing"]


def _no_input_types() -> list[str]:
    return ["MCSimulation"]


class RecoveryPolicy(models.Model):
    """DIRAC's DataRecoveryAgent options (reference 6) and the output source: what recovery checks
    and whether it acts. The first enabled one is used; none stored means recovery's checks run
    only when asked (``failover recover``), never from beat.
    """

    class Mode(models.TextChoices):
        PROPOSE = "propose", "Propose: every finding waits for an operator's approval"
        ACT = "act", "Act: recovery sets jobs, tasks and files itself (removing outputs is always a proposal)"

    class OutputSource(models.TextChoices):
        AUTO = "auto", "ProductionOutputData when a job has it, otherwise catalogue metadata jobID"
        PRODUCTION_OUTPUT_DATA = "ProductionOutputData", "the job parameter ProductionOutputData only"
        METADATA = "metadata", "catalogue metadata jobID only (CTADIRAC)"

    name = models.CharField(max_length=100, unique=True, default="default")
    enabled = models.BooleanField(default=True)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.PROPOSE, help_text="EnableFlag")
    transformation_statuses = models.JSONField(default=_recovery_statuses, help_text="TransformationStatus")
    transformations_to_ignore = models.JSONField(default=list, blank=True, help_text="TransformationsToIgnore")
    # None: every type not in types_no_input (DIRAC: Operations Transformations/DataProcessing).
    types_with_input = models.JSONField(null=True, blank=True, default=None, help_text="TransformationsWithInput")
    types_no_input = models.JSONField(default=_no_input_types, blank=True, help_text="TransformationsNoInput")
    output_source = models.CharField(max_length=32, choices=OutputSource.choices, default=OutputSource.AUTO)
    files_max_reset_counter = models.PositiveIntegerField(
        default=10, help_text="Operations Transformations/FilesMaxResetCounter"
    )
    polling_time = models.PositiveIntegerField(default=3600, help_text="PollingTime, seconds between checks")
    mail_to = models.JSONField(default=list, blank=True, help_text="MailTo")
    mail_from = models.CharField(max_length=255, blank=True, help_text="MailFrom")
    source = models.TextField(blank=True, help_text="Where the options came from (e.g. the imported file)")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "recovery policies"
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def current(cls) -> RecoveryPolicy:
        policy = cls.objects.filter(enabled=True).order_by("id").first()
        return policy if policy is not None else cls(name="default")

    def selects(self, transformation_id: int, type_: str, status: str) -> bool:
        if transformation_id in set(self.transformations_to_ignore or ()):
            return False
        if self.transformation_statuses and status not in self.transformation_statuses:
            return False
        return type_ in self.types_no_input or self.with_input(type_)

    def with_input(self, type_: str) -> bool:
        if type_ in (self.types_no_input or ()):
            return False
        return self.types_with_input is None or type_ in self.types_with_input


class RecoveryFinding(models.Model):
    """One job's finding of the last recovery check of its transformation (failover/recovery.py).

    The check replaces a transformation's rows; the pages, the attention list, the API and the
    digests read them by case. ``action`` is the action log entry (proposal or action) carrying it out.
    """

    transformation_id = models.IntegerField()
    case = models.CharField(max_length=40)
    job = models.IntegerField()
    task = models.IntegerField(null=True, blank=True)
    state = models.CharField(max_length=16)  # proposed, done, skipped, failed, pending
    reason = models.TextField(blank=True)
    actions = models.JSONField(default=list, blank=True)
    inputs = models.JSONField(default=list, blank=True)
    outputs = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=32, blank=True)
    checked = models.DateTimeField(default=timezone.now)
    action = models.ForeignKey(ActionLog, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["transformation_id", "case", "job"]
        indexes = [models.Index(fields=["transformation_id", "case"]), models.Index(fields=["case"])]

    def __str__(self) -> str:
        return f"{self.transformation_id} job {self.job}: {self.case} ({self.state})"


class TaskFile(models.Model):
    """A file of a task as the engine saw it when it took the file from the task's failed job.

    DIRAC keeps only a file's current task: once a failed task's files are set Unused and grouped
    into a new task, nothing in DIRAC says which files the failed job had. The engine writes one
    row per (task, file) with the job, its site and its statuses, in the transaction that settles
    the reassign (failover/cycle/settle.py), so the jobs page can show a job's input files as they
    were when it ran and the chain of jobs each file went through.
    """

    transformation_id = models.IntegerField()
    task = models.IntegerField()
    lfn = models.CharField(max_length=512)
    job = models.IntegerField(default=0)
    site = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=32, blank=True)
    minor_status = models.CharField(max_length=128, blank=True)
    action = models.ForeignKey(ActionLog, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    recorded = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["transformation_id", "task", "lfn"], name="task_file_unique"),
        ]
        indexes = [models.Index(fields=["transformation_id", "lfn"])]

    def __str__(self) -> str:
        return f"{self.transformation_id} task {self.task}: {self.lfn}"


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
    # When it was last planned: a quiet one is planned again every FAILOVER_REPLAN_MINUTES all
    # the same, so that what follows the clock (insight's stall alerts, forecasts) moves on.
    planned = models.DateTimeField(null=True, blank=True)
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
