"""Action-log entries to the OpenSearch outbox when they reach a final state.

``post_save`` covers entries saved through the ORM. The engine settles actions with conditional
UPDATEs, which send no signal: it can send ``action_finished`` (with ``action_id``) inside the
settling transaction, and until then ``outbox.sweep_actions`` (run by the drain) finds them.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models.signals import post_save

from failover.errors import FailoverError
from failover.models import ActionLog
from failover.signals import action_finished as _action_finished
from reports import outbox
from reports.opensearch_config import OpenSearchConfig

log = logging.getLogger(__name__)

# Sent by whoever moves an action-log entry to a final state without ``save()``: action_id=<pk>.
# Defined by the domain, which sends it; re-exported here for listeners.
action_finished = _action_finished


def _exporting() -> bool:
    """Whether action-log entries go to OpenSearch at all (OPENSEARCH_URL set)."""
    return bool(getattr(settings, "OPENSEARCH_URL", ""))


def _enqueue(actions) -> None:
    if not _exporting():
        return
    try:
        # A savepoint: if the outbox write fails, the caller's transaction goes on (the sweep
        # catches the entry later); an action must never fail because of its export.
        with transaction.atomic():
            outbox.enqueue_actions(OpenSearchConfig.from_settings(), actions)
    except (DatabaseError, FailoverError):
        log.exception("action-log entries could not be put in the OpenSearch outbox; the sweep retries")


def on_action_saved(sender, instance, **kwargs) -> None:
    if instance.state in _final_states():
        _enqueue([instance])


def on_action_finished(sender, action_id: int | None = None, **kwargs) -> None:
    if not _exporting():
        # Nothing to export: the entry is not read again (a cycle settles one or two actions a
        # transformation, and this SELECT was one of each settlement's queries).
        return
    action = ActionLog.objects.filter(pk=action_id, state__in=_final_states()).select_related("user").first()
    if action is not None:
        _enqueue([action])


def _final_states() -> tuple[str, ...]:
    return outbox.FINAL_ACTION_STATES


def connect() -> None:
    post_save.connect(on_action_saved, sender=ActionLog, dispatch_uid="reports.action_saved")
    action_finished.connect(on_action_finished, dispatch_uid="reports.action_finished")
