"""The Celery app, named ``dashboard``: ``celery -A dashboard worker`` / ``celery -A dashboard beat``."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("dashboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _schedule(sender: Celery, **kwargs) -> None:
    from django.conf import settings

    # Beat only ticks; the tick starts a cycle when the policy's PollingTime has passed, so a
    # policy edited in the admin takes effect without restarting beat. `expires` keeps missed
    # ticks from piling up behind a slow worker.
    tick = settings.FAILOVER_TICK_SECONDS
    sender.add_periodic_task(tick, sender.signature("failover.tick"), name="failover tick",
                             expires=tick)
    # Recovery (DIRAC's DataRecoveryAgent merged in) every PollingTime of its policy, asked each tick.
    sender.add_periodic_task(tick, sender.signature("failover.recovery_tick"), name="recovery tick",
                             expires=tick)
    sender.add_periodic_task(24 * 3600, sender.signature("failover.prune"), name="failover prune",
                             expires=3600)
    if settings.OPENSEARCH_URL:
        # Documents that could not be sent right after their commit (OpenSearch down), and
        # action-log entries, leave the database outbox here.
        sender.add_periodic_task(60.0, sender.signature("reports.drain_outbox"), name="opensearch outbox",
                                 expires=60.0)
    sender.add_periodic_task(60.0, sender.signature("digests.send_due"), name="digests", expires=60.0)


@task_prerun.connect
@task_postrun.connect
def _fresh_database_connections(task=None, **kwargs) -> None:
    # A worker lives for days: drop connections that broke or outlived CONN_MAX_AGE around each
    # task, as Django does around each request. Not for eager tasks, which run inside the
    # caller's transaction.
    if task is not None and task.request.is_eager:
        return
    from django.db import close_old_connections

    close_old_connections()
