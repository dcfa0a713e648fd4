"""Celery tasks of the reports app: send what waits in the OpenSearch outbox."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.utils import timezone

log = logging.getLogger(__name__)

# A worker sweeps action-log entries finished since its last sweep, minus this margin (an entry
# settled just before a sweep may commit just after it); a new worker looks back SWEEP_FIRST.
SWEEP_MARGIN = timedelta(minutes=10)
SWEEP_FIRST = timedelta(days=2)
_last_sweep = None


@shared_task(name="reports.drain_outbox", ignore_result=True)
def drain_outbox() -> str:
    """Sweep finished actions into the outbox, then send everything that waits. Safe to run often."""
    global _last_sweep
    if not settings.OPENSEARCH_URL:
        return "OpenSearch is not configured"
    from reports import outbox
    from reports.opensearch_config import OpenSearchConfig, describe, opensearch_errors

    config = OpenSearchConfig.from_settings()
    started = timezone.now()
    try:
        outbox.sweep_actions(config, (_last_sweep or started - SWEEP_FIRST) - SWEEP_MARGIN)
        _last_sweep = started
    except opensearch_errors() as exc:
        log.warning("action sweep skipped: %s", describe(exc, config))
    result = outbox.drain(config)
    log.info("OpenSearch outbox: %s", result.summary())
    return result.summary()


@worker_ready.connect
def _install_templates(**kwargs) -> None:
    """Index templates at worker start-up (they are installed before the first send anyway)."""
    if not settings.OPENSEARCH_URL:
        return
    from reports.opensearch_config import OpenSearchConfig, describe, ensure_templates, get_client, opensearch_errors

    config = OpenSearchConfig.from_settings()
    try:
        ensure_templates(get_client(config), config)
    except opensearch_errors() as exc:
        log.warning("index templates not installed yet: %s", describe(exc, config))
