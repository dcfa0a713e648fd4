"""The web's own data: which report an operator last acknowledged."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Acknowledgement(models.Model):
    """An operator read a transformation's report as of a cycle; the page shows what changed since."""

    transformation_id = models.IntegerField()
    cycle_id = models.BigIntegerField()
    # When the acknowledged aggregates were stored (the report's time, not the click's).
    report_time = models.DateTimeField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["transformation_id", "-created"])]

    def __str__(self) -> str:
        return f"{self.transformation_id} acknowledged at cycle {self.cycle_id}"

    @classmethod
    def latest_for(cls, transformation_id: int) -> Acknowledgement | None:
        return cls.objects.filter(transformation_id=transformation_id).select_related("user").first()


class ApiToken(models.Model):
    """An account's API token for scripts (``Authorization: Token KEY``): one per account.

    Only the SHA-256 of the key is stored, so the database does not hold a usable credential;
    the key is shown once, by ``manage.py users token NAME``, which also rotates it.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_token")
    digest = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"API token of {self.user}"

    @staticmethod
    def digest_of(key: str) -> str:
        import hashlib

        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()

    @classmethod
    def issue(cls, user) -> str:
        """A new key for ``user``, replacing any earlier one (which stops working at once)."""
        import secrets

        key = secrets.token_hex(20)
        cls.objects.update_or_create(user=user, defaults={"digest": cls.digest_of(key), "created": timezone.now()})
        return key


# The policy options the policy page edits, in its order: what a PolicyChange records.
POLICY_PAGE_FIELDS = ("mode", "transformation_statuses", "transformation_types", "report_types", "complete_types",
                      "flush_types", "reassign_types", "max_reassign", "max_flush", "polling_time", "mail_to",
                      "mail_from")


class PolicyChange(models.Model):
    """An edit of a policy on the dashboard's policy page: who, when, and the options before and after."""

    created = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor = models.CharField(max_length=150)
    policy = models.ForeignKey("failover.Policy", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    policy_name = models.CharField(max_length=100)
    # The policy's options as the page edits them, {field: value}, before and after the change.
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"policy {self.policy_name} changed by {self.actor}"

    @property
    def options(self) -> list[str]:
        """Every option of the change, in the page's order (PostgreSQL's jsonb keeps no key order)."""
        names = set(self.after) | set(self.before)
        return [n for n in POLICY_PAGE_FIELDS if n in names] + sorted(names - set(POLICY_PAGE_FIELDS))

    @property
    def changed(self) -> list[str]:
        """The fields whose value differs, in the page's order."""
        return [k for k in self.options if self.before.get(k) != self.after.get(k)]
