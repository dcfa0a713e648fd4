"""``manage.py digest preview USER | send [--now] [--user USER] | import-mailto [--policy NAME]``."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError

from failover.management.base import FriendlyCommand
from failover.models import Policy, RecoveryPolicy
from failover.outcomes import count
from reports.digests import sending
from reports.digests.mailto import import_mailto


class Command(FriendlyCommand):
    help = "E-mail digests: preview what a user would get, send the due digests, import a policy's MailTo."

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        p = sub.add_parser("preview", help="print what USER (a username or an address) would get now; sends nothing")
        p.add_argument("who", metavar="USER")
        p.add_argument("--html", action="store_true", help="print the HTML part instead of the text part")
        p.add_argument("--html-file", metavar="PATH", help="also write the HTML part to PATH")
        s = sub.add_parser("send", help="record and send the due digests in this process (no Celery needed)")
        s.add_argument("--now", action="store_true",
                       help="do not wait for the set hour: send each subscription's current or next period now "
                            "(a period already sent is never sent again)")
        s.add_argument("--user", metavar="USER", help="only this username or address")
        m = sub.add_parser("import-mailto", help="turn the policies' MailTo addresses (the failover and the "
                                                 "recovery policies') into subscriptions")
        m.add_argument("--policy", metavar="NAME",
                       help="only the failover or recovery policy of this name (default: every policy)")

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, f"handle_{action.replace('-', '_')}")(**options)

    def handle_preview(self, who: str, html: bool, html_file: str | None, **options) -> None:
        results = sending.preview(who)
        if not results:
            raise CommandError(f"{who} has no active subscription (give a username or an e-mail address)")
        for due, digest, (subject, text, body_html) in results:
            self.stdout.write(f"To: {due.address}")
            self.stdout.write(f"Subject: {subject}")
            verdict = "would be sent" if digest.has_content else "nothing to say: not sent"
            self.stdout.write(f"Period: {due.period} ({verdict})")
            self.stdout.write("")
            self.stdout.write(body_html if html else text)
            if html_file:
                path = Path(html_file)
                if len(results) > 1:
                    path = path.with_name(f"{path.stem}-{due.kind}{path.suffix}")
                path.write_text(body_html)
                self.stderr.write(f"HTML part written to {path}")
        if not sending.mail_configured():
            self.stderr.write("Note: EMAIL_HOST is not set, so nothing would actually be sent.")

    def handle_send(self, now: bool, user: str | None, **options) -> None:
        if not sending.mail_configured():
            raise CommandError("EMAIL_HOST is not set: no digest is sent. `digest preview USER` shows what would be.")
        recipients = None
        if user:
            recipients, subs = sending.recipients_for(user)
            if not subs:
                raise CommandError(f"{user} has no active subscription")
        results = sending.send_now(now_please=now, recipients=recipients)
        for record, outcome in results:
            self.stdout.write(f"{record.period} to {record.email}: {outcome}")
        self.stdout.write(f"{count(len(results), 'digest')} handled"
                          + ("" if results else " (nothing due; --now does not wait for the set hour)"))
        if any(o.startswith("failed") for _, o in results):
            raise CommandError("some digests failed; they are recorded as failed and shown on /health/")

    def handle_import_mailto(self, policy: str | None, **options) -> None:
        policies = Policy.objects.order_by("id")
        recovery = RecoveryPolicy.objects.order_by("id")
        if policy:
            policies, recovery = policies.filter(name=policy), recovery.filter(name=policy)
            if not policies.exists() and not recovery.exists():
                raise CommandError(f"no policy named {policy!r}")
        for what, p in [*(("policy", p) for p in policies), *(("recovery policy", p) for p in recovery)]:
            result = import_mailto(p)
            lines = result.lines() or ["no MailTo address"]
            for line in lines:
                self.stdout.write(f"{what} {p.name}: {line}")
            if p.mail_from and p.mail_from != "noreply@ctao.dirac":
                self.stdout.write(f"{what} {p.name}: MailFrom {p.mail_from} is not used; the sender is "
                                  "DEFAULT_FROM_EMAIL (environment)")
