"""Is the system alive? Beat, workers, broker, database, DIRAC, OpenSearch, the last cycle.

Used by ``manage.py failover status`` and the ``/health/`` endpoint. Each check answers in
words and never raises.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def age_in_words(at) -> str:
    seconds = int((timezone.now() - at).total_seconds())
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return Check("database", True, f"{connection.vendor} answers")
    except Exception as exc:
        return Check("database", False, f"{connection.vendor} does not answer: {exc}")


def check_broker() -> Check:
    from dashboard.celery import app

    url = settings.CELERY_BROKER_URL
    shown = url.split("@")[-1] if "@" in url else url
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
        return Check("broker", True, f"{shown} answers")
    except Exception as exc:
        return Check("broker", False, f"{shown} does not answer: {exc}")


def check_workers(timeout: float = 2.0) -> Check:
    from dashboard.celery import app

    try:
        replies = app.control.ping(timeout=timeout) or []
    except Exception as exc:
        return Check("workers", False, f"could not ask the workers: {exc}")
    names = sorted(name for reply in replies for name in reply)
    if not names:
        return Check("workers", False, "no worker answered")
    return Check("workers", True, f"{len(names)} answered: {', '.join(names)}")


def check_beat() -> Check:
    from failover.models import Heartbeat

    beat = Heartbeat.objects.filter(name="beat").first()
    limit = timedelta(seconds=max(60, 6 * settings.FAILOVER_TICK_SECONDS))
    if beat is None:
        return Check("beat", False, "no tick seen yet (is celery beat running, and a worker?)")
    if timezone.now() - beat.at > limit:
        return Check("beat", False, f"last tick {age_in_words(beat.at)}")
    return Check("beat", True, f"last tick {age_in_words(beat.at)}")


def check_dirac() -> Check:
    from failover.backends import get_backend
    from failover.errors import FailoverError

    try:
        backend = get_backend()
        backend.transformations(ids=[])
        return Check("dirac", True, f"{backend.name} backend answers")
    except FailoverError as exc:
        return Check("dirac", False, str(exc))
    except Exception as exc:
        return Check("dirac", False, f"{exc.__class__.__name__}: {exc}")


def check_opensearch() -> Check | None:
    if not getattr(settings, "OPENSEARCH_URL", ""):
        return None
    try:
        from reports.outbox import health

        state = health()
    except Exception as exc:
        return Check("opensearch", False, f"{exc.__class__.__name__}: {exc}")
    detail = state["detail"]
    waiting = state.get("waiting") or 0
    if waiting:
        detail += f"; {waiting} documents waiting in the outbox"
    return Check("opensearch", state["ok"], detail)


def check_last_cycle() -> Check:
    from failover.models import Cycle, Policy

    last = Cycle.objects.exclude(finished=None).order_by("-finished").first()
    running = Cycle.objects.filter(state=Cycle.State.RUNNING).order_by("-started").first()
    policy = Policy.current()
    parts = []
    ok = True
    if last is None:
        parts.append("no finished cycle yet")
        ok = False
    else:
        parts.append(f"last cycle {last.pk} {last.state} {age_in_words(last.finished)}")
        if timezone.now() - last.finished > timedelta(seconds=3 * policy.polling_time + 60):
            ok = False
            parts.append(f"older than 3 x PollingTime ({policy.polling_time} s)")
    if running is not None:
        stuck = timezone.now() - running.started > timedelta(
            seconds=max(settings.FAILOVER_STUCK_SECONDS, policy.polling_time)
        )
        parts.append(f"cycle {running.pk} running since {age_in_words(running.started)}{' (stuck)' if stuck else ''}")
        ok = ok and not stuck
    return Check("cycle", ok, "; ".join(parts))


def run_checks(*, workers: bool = True) -> list[Check]:
    checks = [check_database(), check_broker()]
    if workers:
        checks.append(check_workers())
    checks += [check_beat(), check_dirac(), check_last_cycle()]
    from reports.digests.health import check_mail

    checks.append(check_mail())
    opensearch = check_opensearch()
    if opensearch is not None:
        checks.append(opensearch)
    return checks


def as_json(checks: list[Check]) -> dict:
    return {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}
