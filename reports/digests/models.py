"""E-mail digests: who wants which mail, when, and what was sent.

A ``Subscription`` says which transformations (productions, types, ids), when (after each cycle,
daily, weekly) and what (reports above a failed share, actions, attention items, proposals). The
subscriptions of one recipient that fall due for the same period make one message, recorded once
as a ``DigestRecord``: the unique (recipient, period) row is the claim, so two beats, a retry or a
crash never send a period's digest twice.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


def new_nonce() -> str:
    return secrets.token_hex(8)


class Subscription(models.Model):
    class Frequency(models.TextChoices):
        CYCLE = "cycle", "After each cycle that did something"
        EVERY_CYCLE = "every_cycle", "After every cycle, whatever happened (the agent's behaviour)"
        DAILY = "daily", "Daily, at a set hour"
        WEEKLY = "weekly", "Weekly, on a set day and hour"

    class Weekday(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"
        SATURDAY = 5, "Saturday"
        SUNDAY = 6, "Sunday"

    # A user's subscription goes to the user's address; one imported from a policy's MailTo for an
    # address no user has carries the address itself.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="digest_subscriptions"
    )
    email = models.EmailField(blank=True, help_text="Only for a subscription without a user")
    name = models.CharField(max_length=100, blank=True)
    active = models.BooleanField(default=True)
    # Which transformations: (production AND type) OR listed id; all empty: every transformation.
    productions = models.JSONField(default=list, blank=True)
    transformation_types = models.JSONField(default=list, blank=True)
    transformations = models.JSONField(default=list, blank=True)
    frequency = models.CharField(max_length=16, choices=Frequency.choices, default=Frequency.DAILY)
    hour = models.PositiveSmallIntegerField(default=7, help_text="Hour of the day (TIME_ZONE) for daily and weekly")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices, default=Weekday.MONDAY)
    want_reports = models.BooleanField(default=True)
    # Percent of a transformation's jobs that are Failed or Killed; 0 reports every one with jobs.
    min_failed_share = models.FloatField(default=10.0)
    want_actions = models.BooleanField(default=True)
    want_attention = models.BooleanField(default=True)
    want_proposals = models.BooleanField(default=True)
    source = models.CharField(max_length=255, blank=True, help_text="Where it came from, e.g. a policy's MailTo")
    # Part of every unsubscribe token; replaced when a token is used, so a link works once.
    token_nonce = models.CharField(max_length=32, default=new_nonce, editable=False)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False) | ~Q(email=""), name="subscription_has_recipient"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} for {self.address or '(no address)'}"

    @property
    def label(self) -> str:
        return self.name or f"Subscription {self.pk}"

    @property
    def address(self) -> str:
        return (self.user.email if self.user_id else self.email) or ""

    @property
    def recipient_key(self) -> str:
        return f"user:{self.user_id}" if self.user_id else f"email:{self.email.lower()}"

    @property
    def per_cycle(self) -> bool:
        return self.frequency in (self.Frequency.CYCLE, self.Frequency.EVERY_CYCLE)

    def matches(self, production_id: int | None, transformation_type: str, transformation_id: int) -> bool:
        """Whether a transformation is in this subscription's scope."""
        if transformation_id in self.transformations:
            return True
        if not self.productions and not self.transformation_types:
            return not self.transformations
        return (not self.productions or production_id in self.productions) and (
            not self.transformation_types or transformation_type in self.transformation_types
        )

    def scope_text(self) -> str:
        parts = []
        if self.productions:
            parts.append("production" + ("s " if len(self.productions) > 1 else " ")
                         + ", ".join(map(str, self.productions)))
        if self.transformation_types:
            parts.append("type" + ("s " if len(self.transformation_types) > 1 else " ")
                         + ", ".join(self.transformation_types))
        scope = " and ".join(parts)
        if self.transformations:
            ids = "transformation" + ("s " if len(self.transformations) > 1 else " ") + ", ".join(
                map(str, self.transformations))
            scope = f"{scope}, and {ids}" if scope else ids
        return scope or "every transformation"

    def when_text(self) -> str:
        if self.frequency == self.Frequency.DAILY:
            return f"daily at {self.hour:02d}:00 {settings.TIME_ZONE}"
        if self.frequency == self.Frequency.WEEKLY:
            return f"{self.get_weekday_display()}s at {self.hour:02d}:00 {settings.TIME_ZONE}"
        return self.get_frequency_display().lower()

    def what_text(self) -> str:
        parts = []
        if self.want_reports:
            parts.append("reports of every transformation with jobs" if self.min_failed_share <= 0
                         else f"reports with at least {self.min_failed_share:g}% failed jobs")
        if self.want_actions:
            parts.append("actions taken")
        if self.want_attention:
            parts.append("attention items")
        if self.want_proposals:
            parts.append("proposals waiting")
        return ", ".join(parts)


class DigestRecord(models.Model):
    """One digest for one recipient and period: claimed, then sent once (or skipped, or failed)."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENDING = "sending", "Handed to the mail server"
        SENT = "sent", "Sent"
        RETRYING = "retrying", "Refused, will retry"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Nothing to say"

    recipient = models.CharField(max_length=300)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    email = models.EmailField(blank=True)
    # "cycle:<id>", "daily:<YYYY-MM-DDTHH>", "weekly:<YYYY-MM-DDTHH>"; "since the last digest" compares
    # with the last record sent of the same kind.
    period = models.CharField(max_length=64)
    kind = models.CharField(max_length=16)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    cycle_id = models.BigIntegerField(null=True, blank=True)
    subscriptions = models.JSONField(default=list, blank=True)
    # Per transformation in scope, what this digest saw: the next one says what changed since.
    snapshot = models.JSONField(default=dict, blank=True)
    # The message itself, built once: a retry sends exactly what was recorded.
    subject = models.CharField(max_length=255, blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    unsubscribe_url = models.CharField(max_length=1000, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created = models.DateTimeField(default=timezone.now)
    claimed = models.DateTimeField(null=True, blank=True)
    sent = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [models.UniqueConstraint(fields=["recipient", "period"], name="digest_once_per_period")]
        indexes = [models.Index(fields=["recipient", "kind", "state", "-window_end"], name="digest_previous")]

    def __str__(self) -> str:
        return f"digest {self.period} for {self.email} ({self.state})"


class ImportedAddress(models.Model):
    """A policy's MailTo address already turned into a subscription: imported once, so a deleted or
    unsubscribed subscription is not brought back by the next save of the policy. The policy is the
    failover policy or the recovery policy (DataRecoveryAgent's MailTo), one of the two."""

    policy = models.ForeignKey("failover.Policy", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    recovery_policy = models.ForeignKey("failover.RecoveryPolicy", null=True, blank=True, on_delete=models.CASCADE,
                                        related_name="+")
    address = models.CharField(max_length=254)
    subscription = models.ForeignKey(Subscription, null=True, blank=True, on_delete=models.SET_NULL)
    imported = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["policy", "address"], name="mailto_imported_once"),
            models.UniqueConstraint(fields=["recovery_policy", "address"], name="recovery_mailto_imported_once"),
            models.CheckConstraint(
                condition=models.Q(policy__isnull=False, recovery_policy__isnull=True)
                | models.Q(policy__isnull=True, recovery_policy__isnull=False),
                name="mailto_of_one_policy",
            ),
        ]

    def __str__(self) -> str:
        if self.recovery_policy_id:
            return f"{self.address} from recovery policy {self.recovery_policy_id}"
        return f"{self.address} from policy {self.policy_id}"
