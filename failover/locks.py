"""The per-transformation lock: a lease in the database, taken with a conditional UPDATE.

Exactly one row must change for the lock to be ours; a holder that died loses it when the lease
expires. Cycles and operator actions use the same lock, so they never act on one transformation
at once. The engine takes it for FAILOVER_LEASE_SECONDS and renews it while it works
(failover/leases.py), so a crashed holder's lock is free again within one lease: a recovery never
waits for a lock whose owner is gone.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from failover.models import TransformationState


def new_owner(prefix: str = "cycle") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def acquire(transformation_id: int, owner: str, seconds: int | None = None) -> bool:
    """Take the lock: one conditional UPDATE when the transformation's row exists (every cycle
    after its first). When it changed nothing, the row may not exist yet: it is made, and the
    UPDATE tried once more (so a lock taken meanwhile by another worker is still respected)."""
    seconds = seconds or settings.FAILOVER_LOCK_SECONDS
    if _take(transformation_id, owner, seconds):
        return True
    TransformationState.objects.get_or_create(transformation_id=transformation_id)
    return _take(transformation_id, owner, seconds)


def _take(transformation_id: int, owner: str, seconds: int) -> bool:
    now = timezone.now()
    changed = (
        TransformationState.objects.filter(transformation_id=transformation_id)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now) | Q(locked_by=owner))
        .update(locked_by=owner, locked_until=now + timedelta(seconds=seconds))
    )
    return changed == 1


def renew(owner: str, seconds: int | None = None) -> int:
    """Extend every lock ``owner`` holds by ``seconds`` from now; how many were extended."""
    seconds = seconds or settings.FAILOVER_LEASE_SECONDS
    return TransformationState.objects.filter(locked_by=owner).update(
        locked_until=timezone.now() + timedelta(seconds=seconds)
    )


def release(transformation_id: int, owner: str, **fields) -> None:
    """Give the lock back, writing ``fields`` of the row in the same UPDATE."""
    TransformationState.objects.filter(transformation_id=transformation_id, locked_by=owner).update(
        locked_by="", locked_until=None, **fields
    )


def holder(transformation_id: int) -> str | None:
    row = TransformationState.objects.filter(transformation_id=transformation_id).first()
    if row and row.locked_by and row.locked_until and row.locked_until > timezone.now():
        return row.locked_by
    return None
