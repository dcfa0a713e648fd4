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
