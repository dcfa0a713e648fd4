"""The Celery app, named ``dashboard``: ``celery -A dashboard worker`` / ``celery -A dashboard beat``."""

from __future__ import annotations

import os

from celery import Celery

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
