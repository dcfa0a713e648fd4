"""The mail part of the health page: configured or not, failed digests, stuck sends."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.template.defaultfilters import pluralize
from django.utils import timezone

from failover.health import Check, age_in_words as _age, register
from reports.digests import sending
from reports.digests.models import DigestRecord, Subscription


@register("mail", order=80, explanation="The e-mail digests: configured or not, none failed after its "
                                        "retries, none stuck while sending.")
def check_mail() -> Check:
    """Never raises. Mail is optional: not configured is healthy, and says so."""
    try:
        return _check_mail()
    except Exception as exc:
        return Check("mail", False, f"could not check the digests: {exc.__class__.__name__}: {exc}")


def _check_mail() -> Check:
    active = Subscription.objects.filter(active=True).count()
    if not sending.mail_configured():
        return Check("mail", True, f"not configured (EMAIL_HOST is empty): digests are not sent; "
                                   f"{active} active subscription{pluralize(active)} wait")
    now = timezone.now()
    later_sent = DigestRecord.objects.filter(
        recipient=OuterRef("recipient"), state=DigestRecord.State.SENT, created__gt=OuterRef("created")
    )
    # A failure counts until a later digest reached the same recipient, for a week at most.
    failed = (
        DigestRecord.objects.filter(state=DigestRecord.State.FAILED, created__gte=now - timedelta(days=7))
        .exclude(Exists(later_sent)).order_by("-created")
    )
    stuck = DigestRecord.objects.filter(state=DigestRecord.State.SENDING, claimed__lt=now - sending.STUCK_AFTER)
    retrying = DigestRecord.objects.filter(state=DigestRecord.State.RETRYING).count()
    last = DigestRecord.objects.filter(state=DigestRecord.State.SENT).order_by("-sent").first()
    parts = [f"{settings.EMAIL_HOST or settings.EMAIL_BACKEND.rsplit('.', 2)[-2]}"
             + (f":{settings.EMAIL_PORT}" if settings.EMAIL_HOST else "")]
    ok = True
    n_failed = failed.count()
    if n_failed:
        ok = False
        first = failed.first()
        parts.append(f"{n_failed} digest{pluralize(n_failed)} failed after retries "
                     f"(last to {first.email} {_age(first.created)}: {first.last_error[:200]})")
    n_stuck = stuck.count()
    if n_stuck:
        ok = False
        parts.append(f"{n_stuck} digest{pluralize(n_stuck)} stuck while sending (a worker died "
                     "mid-send; not sent again, to avoid duplicates)")
    if retrying:
        parts.append(f"{retrying} being retried")
    parts.append(f"last sent {_age(last.sent)} to {last.email}" if last and last.sent else "none sent yet")
    parts.append(f"{active} active subscription{pluralize(active)}")
    return Check("mail", ok, "; ".join(parts))
