"""Which digests are due, recording them once, and handing them to the mail server.

``plan`` finds the (recipient, period) pairs that are due, builds each digest from committed data
and records it; the unique (recipient, period) row is the claim, so concurrent runs, a retried task
or a restart never record (or send) a period twice. ``deliver`` sends one recorded digest: it
claims the row with a conditional UPDATE (pending or retrying -> sending) that must change exactly
one row, talks to the mail server outside any transaction, then marks it sent. A worker that dies
between the server's answer and the last UPDATE leaves the row "sending": it is never sent again
(at most once) and the health check shows it.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from dashboard.roles import can_view
from failover.models import Cycle, Policy
from reports.digests import schedule
from reports.digests.building import Digest, build_digest
from reports.digests.models import DigestRecord, Subscription
from reports.digests.rendering import render

log = logging.getLogger(__name__)

# Errors worth another attempt: refusals (4xx and 5xx alike: a relay that refuses may be
# misconfigured for a while), timeouts, connections refused. SMTPException is an OSError.
RETRYABLE = (smtplib.SMTPException, OSError)
# A "sending" row older than this had its worker die mid-send.
STUCK_AFTER = timedelta(minutes=15)
# A pending row nobody picked up (a lost broker message) is handed out again after this.
REQUEUE_AFTER = timedelta(minutes=10)
STALE_AFTER = timedelta(days=1)
# Records of periods that had nothing to say are kept this long (they stop re-evaluation).
KEEP_SKIPPED = timedelta(days=7)
# Message bodies are kept this long for the admin; the row (state, period, snapshot) stays.
KEEP_BODIES = timedelta(days=30)

_warned_unconfigured = False


def mail_configured() -> bool:
    """SMTP with a host, or another backend (console, file, locmem) set on purpose."""
    if settings.EMAIL_BACKEND != "django.core.mail.backends.smtp.EmailBackend":
        return True
    return bool(settings.EMAIL_HOST)


def note_unconfigured() -> None:
    global _warned_unconfigured
    if not _warned_unconfigured:
        log.warning("EMAIL_HOST is not set: e-mail digests are not sent (subscriptions are kept; "
                    "set EMAIL_HOST to start sending)")
        _warned_unconfigured = True


# -- what is due ------------------------------------------------------------------------------


@dataclass
class Due:
    recipient: str
    address: str
    user: object | None
    kind: str  # cycle, daily, weekly
    period: str
    title: str
    default_start: datetime
    window_end: datetime
    cycle_id: int | None = None
    subscriptions: list[Subscription] = field(default_factory=list)


def _may_receive(sub: Subscription) -> bool:
    if sub.user_id is None:
        return bool(sub.email)
    # A user who lost their role (or account) stops getting the data by mail too.
    return bool(sub.user.is_active and sub.user.email and can_view(sub.user))


def _latest_cycle() -> Cycle | None:
    # An operator's button runs a cycle of one transformation; its actions reach the next digest.
    return Cycle.objects.exclude(finished=None).exclude(trigger=Cycle.Trigger.WEB).order_by("-finished", "-id").first()


def _cycle_running(now: datetime) -> bool:
    """A scheduled digest waits for a running cycle, so it shows that cycle's committed results."""
    stuck = Cycle.stuck_after(Policy.current().polling_time)
    return Cycle.objects.filter(state=Cycle.State.RUNNING, started__lte=now, started__gt=now - stuck).exists()


def find_due(now: datetime, *, now_please: bool = False, recipients: set[str] | None = None) -> list[Due]:
    tz = ZoneInfo(settings.TIME_ZONE)
    subs = Subscription.objects.filter(active=True).select_related("user").order_by("id")
    cycle = _latest_cycle()
    waiting_for_cycle = not now_please and _cycle_running(now)
    groups: dict[tuple[str, str], Due] = {}

    def recorded(recipient: str, period: str) -> bool:
        return DigestRecord.objects.filter(recipient=recipient, period=period).exists()

    for sub in subs:
        if recipients is not None and sub.recipient_key not in recipients:
            continue
        if not _may_receive(sub):
            continue
        if sub.per_cycle:
            if cycle is None or cycle.finished < sub.created:
                continue
            due = Due(sub.recipient_key, sub.address, sub.user, "cycle", f"cycle:{cycle.pk}", f"After cycle {cycle.pk}",
                      cycle.started, cycle.finished, cycle.pk)
        else:
            if waiting_for_cycle:
                continue
            period = schedule.due_period(sub.frequency, sub.hour, sub.weekday, sub.created, now, tz)
            if now_please and (period is None or recorded(sub.recipient_key, period.key)):
                period = schedule.upcoming_period(sub.frequency, sub.hour, sub.weekday, now, tz)
            if period is None:
                continue
            due = Due(sub.recipient_key, sub.address, sub.user, period.kind, period.key, _title(period), period.start,
                      now)
        groups.setdefault((due.recipient, due.period), due).subscriptions.append(sub)
    if not groups:
        return []
    # One query for what is already recorded, whatever the number of recipients.
    done = set(
        DigestRecord.objects.filter(period__in={p for _, p in groups}).values_list("recipient", "period")
    )
    return [due for key, due in groups.items() if key not in done]


def _title(period: schedule.Period) -> str:
    if period.kind == schedule.DAILY:
        return f"Daily digest, {period.moment:%Y-%m-%d}"
    return f"Weekly digest, week of {period.moment:%Y-%m-%d}"


def previous_sent(recipient: str, kind: str) -> DigestRecord | None:
    return (
        DigestRecord.objects.filter(recipient=recipient, kind=kind, state=DigestRecord.State.SENT)
        .order_by("-window_end", "-id").first()
    )


def build_for(due: Due) -> tuple[Digest, DigestRecord | None]:
    previous = previous_sent(due.recipient, due.kind)
    start = previous.window_end if previous else due.default_start
    digest = build_digest(
        due.subscriptions,
        address=due.address,
        kind=due.kind,
        period=due.period,
        title=due.title,
        window_start=start,
        window_end=max(due.window_end, start),
        previous=previous,
        cycle_id=due.cycle_id,
    )
    return digest, previous


# -- recording --------------------------------------------------------------------------------


def plan(now: datetime | None = None, *, now_please: bool = False, recipients: set[str] | None = None,
         on_commit: Callable[[int], None] | None = None) -> list[DigestRecord]:
    """Record every due digest; return the ones to send. ``on_commit(pk)`` runs after each commit
    (the Celery task passes ``send_digest.delay``), so a worker never looks for a row not yet there."""
    now = now or timezone.now()
    out = []
    for due in find_due(now, now_please=now_please, recipients=recipients):
        try:
            digest, _ = build_for(due)
        except Exception:  # one recipient's bad data must not stop everyone's digests
            log.exception("digest %s for %s could not be built", due.period, due.address)
            continue
        state = DigestRecord.State.PENDING if digest.has_content else DigestRecord.State.SKIPPED
        subject = text = html = ""
        if digest.has_content:
            subject, text, html = render(digest)
        try:
            with transaction.atomic():
                record = DigestRecord.objects.create(
                    recipient=due.recipient,
                    user=due.user,
                    email=due.address,
                    period=due.period,
                    kind=due.kind,
                    window_start=digest.window_start,
                    window_end=digest.window_end,
                    cycle_id=due.cycle_id,
                    subscriptions=[s.pk for s in due.subscriptions],
                    # Only a sent digest's snapshot is ever compared with.
                    snapshot=digest.snapshot if digest.has_content else {},
                    subject=subject,
                    text=text,
                    html=html,
                    unsubscribe_url=digest.links.get("unsubscribe", ""),
                    state=state,
                    created=now,
                )
                if state == DigestRecord.State.PENDING and on_commit is not None:
                    transaction.on_commit(lambda pk=record.pk: on_commit(pk))
        except IntegrityError:  # another run recorded this period meanwhile
            continue
        if state == DigestRecord.State.PENDING:
            log.info("digest %s for %s recorded: %s", due.period, due.address, subject)
            out.append(record)
    return out


def housekeeping(now: datetime | None = None, on_requeue: Callable[[int], None] | None = None) -> int:
    """Forget old "nothing to say" rows and old bodies; hand out again pending rows a lost message
    left behind (safe: deliver claims the row, so a row is sent once even if two tasks run)."""
    now = now or timezone.now()
    DigestRecord.objects.filter(state=DigestRecord.State.SKIPPED, created__lt=now - KEEP_SKIPPED).delete()
    DigestRecord.objects.filter(
        created__lt=now - KEEP_BODIES, state__in=[DigestRecord.State.SENT, DigestRecord.State.FAILED]
    ).exclude(html="").update(text="", html="")
    # News a day old is not news: drop it rather than send it late.
    DigestRecord.objects.filter(
        state__in=[DigestRecord.State.PENDING, DigestRecord.State.RETRYING], created__lt=now - STALE_AFTER
    ).update(state=DigestRecord.State.FAILED, last_error="not sent within a day: dropped")
    lost = list(DigestRecord.objects.filter(
        state=DigestRecord.State.PENDING, claimed=None, created__lt=now - REQUEUE_AFTER
    ).values_list("pk", flat=True)[:100])
    if on_requeue is not None:
        for pk in lost:
            on_requeue(pk)
    return len(lost)


# -- sending ----------------------------------------------------------------------------------


def message_for(record: DigestRecord) -> EmailMultiAlternatives:
    headers = {"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"}
    if record.unsubscribe_url:
        # RFC 8058 one-click: mail clients POST to the link; the token is the authorisation.
        headers["List-Unsubscribe"] = f"<{record.unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message = EmailMultiAlternatives(
        subject=record.subject,
        body=record.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[record.email],
        headers=headers,
    )
    message.attach_alternative(record.html, "text/html")
    return message


def deliver(record_id: int, *, final: bool = True) -> str:
    """Send one recorded digest. Raises the mail error when another attempt should follow."""
    if not mail_configured():
        note_unconfigured()
        return "mail is not configured; left pending"
    now = timezone.now()
    claimed = DigestRecord.objects.filter(
        pk=record_id, state__in=[DigestRecord.State.PENDING, DigestRecord.State.RETRYING]
    ).update(state=DigestRecord.State.SENDING, claimed=now, attempts=F("attempts") + 1)
    if claimed != 1:
        return "already sent, being sent or gone"
    record = DigestRecord.objects.get(pk=record_id)
    try:
        sent = message_for(record).send(fail_silently=False)
        if sent != 1:
            raise smtplib.SMTPException("the mail backend accepted no message")
    except Exception as exc:
        retry = isinstance(exc, RETRYABLE) and not final
        error = f"{exc.__class__.__name__}: {exc}"[:2000]
        DigestRecord.objects.filter(pk=record_id, state=DigestRecord.State.SENDING).update(
            state=DigestRecord.State.RETRYING if retry else DigestRecord.State.FAILED, last_error=error
        )
        if retry:
            log.warning("digest %s to %s refused (attempt %s), will retry: %s",
                        record.period, record.email, record.attempts, error)
            raise
        log.error("digest %s to %s failed after %s attempts: %s", record.period, record.email, record.attempts, error)
        return f"failed: {error}"
    DigestRecord.objects.filter(pk=record_id).update(state=DigestRecord.State.SENT, sent=timezone.now())
    log.info("digest %s sent to %s", record.period, record.email)
    return f"sent to {record.email}"


def send_now(*, now_please: bool = False, recipients: set[str] | None = None) -> list[tuple[DigestRecord, str]]:
    """``digest send``: plan and send in this process, one attempt each (no Celery needed)."""
    records = plan(now_please=now_please, recipients=recipients)
    results = []
    for record in records:
        results.append((record, deliver(record.pk, final=True)))
    return results


def recipients_for(who: str) -> tuple[set[str], list[Subscription]]:
    """A username or an e-mail address -> recipient keys and their active subscriptions."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    users = list(User.objects.filter(**{User.USERNAME_FIELD: who})) or list(User.objects.filter(email__iexact=who))
    subs = list(Subscription.objects.filter(active=True, user__in=users).select_related("user"))
    subs += list(Subscription.objects.filter(active=True, user=None, email__iexact=who))
    return {s.recipient_key for s in subs}, subs


def preview(who: str, now: datetime | None = None) -> list[tuple[Due, Digest, tuple[str, str, str]]]:
    """What ``who`` would get now, for each kind of their subscriptions; records nothing."""
    now = now or timezone.now()
    tz = ZoneInfo(settings.TIME_ZONE)
    keys, subs = recipients_for(who)
    groups: dict[tuple[str, str], Due] = {}
    cycle = _latest_cycle()
    for sub in subs:
        if sub.per_cycle:
            start = cycle.started if cycle else now - timedelta(hours=1)
            end = cycle.finished if cycle else now
            due = Due(sub.recipient_key, sub.address, sub.user, "cycle", f"cycle:{cycle.pk if cycle else 0}",
                      f"After cycle {cycle.pk}" if cycle else "After the next cycle", start, end,
                      cycle.pk if cycle else None)
        else:
            period = schedule.upcoming_period(sub.frequency, sub.hour, sub.weekday, now, tz)
            due = Due(sub.recipient_key, sub.address, sub.user, period.kind, period.key, _title(period), period.start,
                      now)
        groups.setdefault((due.recipient, due.kind), due).subscriptions.append(sub)
    out = []
    for due in groups.values():
        digest, _ = build_for(due)
        out.append((due, digest, render(digest)))
    return out
