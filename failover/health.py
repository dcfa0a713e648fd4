"""Is the system alive? A registry of health checks, to which every app adds its own.

Used by ``manage.py failover status`` and the ``/health/`` page. A check is a function that
returns a :class:`Check` (or ``None`` when it does not apply, e.g. OpenSearch not configured)
and is registered with :func:`register` from its app's ``AppConfig.ready``: this module holds
the domain's own checks (database, broker, workers, beat, DIRAC, last cycle) and imports no
other app; ``reports`` registers OpenSearch, the outbox and mail.

Every check is quick and never blocks on other processes: worker and beat liveness are read from
the heartbeats they record in the database (``failover.heartbeats``), never from a broadcast
ping. A check that raises is shown as failed with the error, never as a crashed page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from failover.outcomes import count

log = logging.getLogger(__name__)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    # Seconds since what is checked last showed life (a heartbeat, a finished cycle), if it has an age.
    age: float | None = None
    # What the check means, in a sentence (filled in from the registry).
    explanation: str = ""
    # Figures behind the detail, as data (the mirror's drift by transformation), or None.
    data: dict | None = None


@dataclass(frozen=True)
class Registered:
    name: str
    func: Callable[[], Check | None]
    explanation: str
    order: int
    optional: bool  # skipped on request (``failover status --no-workers``, ``/health/?workers=0``)


_registry: dict[str, Registered] = {}


def register(name: str, *, explanation: str, order: int = 100, optional: bool = False):
    """Decorator: add a check under ``name`` (registering a name again replaces it)."""

    def decorator(func: Callable[[], Check | None]):
        _registry[name] = Registered(name, func, explanation, order, optional)
        return func

    return decorator


def registered() -> list[Registered]:
    return sorted(_registry.values(), key=lambda r: (r.order, r.name))


def run_checks(*, workers: bool = True) -> list[Check]:
    checks = []
    for entry in registered():
        if entry.optional and not workers:
            continue
        try:
            check = entry.func()
        except Exception as exc:  # a check never takes the page down
            log.exception("health check %s raised", entry.name)
            check = Check(entry.name, False, f"the check itself failed: {exc.__class__.__name__}: {exc}")
        if check is None:
            continue
        check.explanation = check.explanation or entry.explanation
        checks.append(check)
    return checks


def as_json(checks: list[Check]) -> dict:
    return {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}


def age_of(at: datetime) -> float:
    return max(0.0, (timezone.now() - at).total_seconds())


def age_in_words(at) -> str:
    seconds = int(age_of(at))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


# -- the domain's checks ------------------------------------------------------------------------


@register("database", order=10, explanation="The dashboard's own database answers a query.")
def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return Check("database", True, f"{connection.vendor} answers")
    except Exception as exc:
        return Check("database", False, f"{connection.vendor} does not answer: {exc}")


@register("broker", order=20, explanation="The Celery broker accepts connections (on the embedded broker: "
                                          "its queue folder exists and is writable).")
def check_broker() -> Check:
    url = settings.CELERY_BROKER_URL
    shown = url.split("@")[-1] if "@" in url else url
    folders = [v for k, v in (getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}).items()
               if k in ("data_folder_in", "data_folder_out")]
    if folders:
        return _check_broker_folders(shown, sorted(set(folders)))
    from celery import current_app

    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
        return Check("broker", True, f"{shown} answers")
    except Exception as exc:
        return Check("broker", False, f"{shown} does not answer: {exc}")


def _check_broker_folders(shown: str, folders: list[str]) -> Check:
    import os

    waiting = 0
    for folder in folders:
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
            return Check("broker", False, f"{shown}: folder {folder} is missing or not writable")
        with os.scandir(folder) as entries:
            waiting += sum(1 for e in entries if e.name.endswith(".msg"))
    return Check("broker", True, f"{shown}: {count(waiting, 'message')} waiting in {', '.join(folders)}")


def heartbeat_seconds() -> float:
    return float(getattr(settings, "FAILOVER_HEARTBEAT_SECONDS", 10.0))


def worker_limit() -> timedelta:
    """A worker whose heartbeat is older than this is taken for dead."""
    return timedelta(seconds=3 * heartbeat_seconds() + 1)


@register("workers", order=30, optional=True,
          explanation="At least one Celery worker recorded a heartbeat recently (every "
                      "FAILOVER_HEARTBEAT_SECONDS; dead after three missed ones).")
def check_workers() -> Check:
    from failover.heartbeats import STOPPED, WORKER_PREFIX
    from failover.models import Heartbeat

    now = timezone.now()
    # Workers gone for more than a day (renamed, moved) are no longer listed.
    seen = list(Heartbeat.objects.filter(name__startswith=WORKER_PREFIX, at__gte=now - timedelta(days=1))
                .order_by("name"))
    limit = worker_limit()
    alive = [h for h in seen if now - h.at <= limit and h.detail != STOPPED]
    gone = [h for h in seen if h not in alive]
    youngest = min((age_of(h.at) for h in seen), default=None)
    if not alive:
        if not gone:
            return Check("workers", False, "no worker heartbeat yet (is a celery worker running?)")
        return Check("workers", False, "no live worker: " + "; ".join(_worker_words(h) for h in gone), youngest)
    parts = [f"{len(alive)} alive: " + ", ".join(f"{h.name[len(WORKER_PREFIX):]} ({age_in_words(h.at)})"
                                                  for h in alive)]
    if gone:
        parts.append("gone: " + "; ".join(_worker_words(h) for h in gone))
    return Check("workers", True, "; ".join(parts), min(age_of(h.at) for h in alive))


def _worker_words(h) -> str:
    from failover.heartbeats import STOPPED, WORKER_PREFIX

    name = h.name[len(WORKER_PREFIX):]
    return f"{name} stopped {age_in_words(h.at)}" if h.detail == STOPPED else f"{name} last seen {age_in_words(h.at)}"


def beat_limit() -> timedelta:
    return timedelta(seconds=max(60, 6 * settings.FAILOVER_TICK_SECONDS))


@register("beat", order=40, explanation="Celery beat's tick (every FAILOVER_TICK_SECONDS) reached a worker "
                                        "recently: beat, the broker and a worker all work.")
def check_beat() -> Check:
    from failover.models import Heartbeat

    beat = Heartbeat.objects.filter(name="beat").first()
    if beat is None:
        return Check("beat", False, "no tick seen yet (is celery beat running, and a worker?)")
    age = age_of(beat.at)
    if timezone.now() - beat.at > beat_limit():
        return Check("beat", False, f"last tick {age_in_words(beat.at)}", age)
    return Check("beat", True, f"last tick {age_in_words(beat.at)}", age)


@register("dirac", order=50, explanation="The DIRAC backend (simulated or real) answers a small read.")
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


@register("cycle", order=60, explanation="A cycle finished within three PollingTimes, and none is stuck.")
def check_last_cycle() -> Check:
    from failover.models import Cycle, Policy

    last = Cycle.objects.exclude(finished=None).order_by("-finished").first()
    running = Cycle.objects.filter(state=Cycle.State.RUNNING).order_by("-started").first()
    policy = Policy.current()
    parts = []
    ok = True
    age = None
    if last is None:
        parts.append("no finished cycle yet")
        ok = False
    else:
        age = age_of(last.finished)
        parts.append(f"last cycle {last.pk} {last.state} {age_in_words(last.finished)}")
        if timezone.now() - last.finished > timedelta(seconds=3 * policy.polling_time + 60):
            ok = False
            parts.append(f"older than 3 x PollingTime ({policy.polling_time} s)")
    if running is not None:
        stuck = running.is_stuck(policy.polling_time)
        parts.append(f"cycle {running.pk} running since {age_in_words(running.started)}{' (stuck)' if stuck else ''}")
        ok = ok and not stuck
    return Check("cycle", ok, "; ".join(parts), age)


@register("actions", order=70, explanation="Operators' confirmed actions are taken by a worker: none waits for one "
          "longer than a lease (FAILOVER_LEASE_SECONDS). Shown only while one waits.")
def check_action_requests() -> Check | None:
    from failover.actions import stalled_requests
    from failover.models import ActionRequest

    waiting = ActionRequest.objects.filter(state__in=[ActionRequest.State.QUEUED, ActionRequest.State.RUNNING])
    if not waiting.exists():
        return None
    stalled = stalled_requests().order_by("created").first()
    if stalled is None:
        return Check("actions", True, f"{waiting.count()} being carried out or about to be")
    return Check("actions", False, f"action request {stalled.pk} ({stalled.kind}, by {stalled.actor}) has waited "
                 f"since {stalled.created:%Y-%m-%d %H:%M:%S} UTC: is a worker running?", age_of(stalled.created))


@register("mirror", order=65, explanation="The mirror of DIRAC's tasks and jobs in our database: the last full "
                                         "resync (every FAILOVER_RESYNC_HOURS, or failover cycle --full) and the "
                                         "drift it found and repaired; failing when a resync is overdue.")
def check_mirror() -> Check | None:
    from django.db.models import Min

    from failover.models import Cycle, MirrorState

    mirrored = MirrorState.objects.count()
    if not mirrored:
        return Check("mirror", True, "no transformation mirrored yet (the first cycle reads them in full)")
    parts = [f"{mirrored} transformations mirrored"]
    data = None
    last = Cycle.objects.filter(resynced__gt=0).order_by("-started").first()
    if last is None:
        parts.append("no full resync yet")
    else:
        data = {"cycle": last.pk, "at": last.started.isoformat(), "resynced": last.resynced,
                "rows": last.drift_rows, **last.drift}
        when = f"last full resync: cycle {last.pk}, {age_in_words(last.started)}, {last.resynced} transformations"
        if last.drift_rows:
            d = last.drift
            ids = ", ".join(sorted(d.get("transformations", {}), key=int))
            parts.append(f"{when}: drift of {last.drift_rows} rows ({d.get('added', 0)} added, "
                         f"{d.get('changed', 0)} changed, {d.get('removed', 0)} removed) in {ids}, repaired")
        else:
            parts.append(f"{when}: no drift")
    ok = True
    hours = settings.FAILOVER_RESYNC_HOURS
    if hours:
        # Of the transformations read in the last day, the one whose full read is oldest.
        now = timezone.now()
        oldest = MirrorState.objects.filter(cut__gte=now - timedelta(days=1)).aggregate(m=Min("last_full"))["m"]
        if oldest is not None and now - oldest > timedelta(hours=2 * hours):
            ok = False
            parts.append(f"resync overdue: a full read is {age_in_words(oldest)} old (FAILOVER_RESYNC_HOURS={hours:g})")
    return Check("mirror", ok, "; ".join(parts), data=data)
