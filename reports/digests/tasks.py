"""Celery tasks for the digests: thin wrappers around reports.digests.sending.

Beat runs ``digests.send_due`` every minute (with ``expires``, so missed beats do not pile up). It
records each due digest and enqueues ``digests.send_digest`` after the record commits. The send
task retries mail errors with exponential backoff, then records the digest as failed (the health
check shows it). Database connections are refreshed around each task by dashboard/celery.py.
"""

from __future__ import annotations

import smtplib

from celery import shared_task

from failover.outcomes import count
from reports.digests import sending


@shared_task(name="digests.send_due", ignore_result=True)
def send_due() -> str:
    if not sending.mail_configured():
        sending.note_unconfigured()
        return "mail is not configured: nothing sent"
    requeued = sending.housekeeping(on_requeue=send_digest.delay)
    records = sending.plan(on_commit=send_digest.delay)
    return f"{count(len(records), 'digest')} queued" + (f", {requeued} re-queued" if requeued else "")


@shared_task(
    name="digests.send_digest",
    bind=True,
    ignore_result=True,
    acks_late=True,
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=30,
    retry_backoff_max=1800,
    retry_jitter=True,
    max_retries=6,
)
def send_digest(self, record_id: int) -> str:
    """Send one recorded digest; at most once (see sending.deliver)."""
    return sending.deliver(record_id, final=self.request.retries >= self.max_retries)
