"""A policy's MailTo (imported from the DIRAC configuration) as subscriptions, so nobody loses mail.

Each address gets the agent's behaviour: a mail after every cycle with the reports of the policy's
Report types (every transformation with jobs, failed or not) and the actions taken. An address of
exactly one active user becomes that user's subscription, which they can then edit on their page;
any other address gets an address-only subscription (editable in the admin). Each address of a
policy is imported once (``ImportedAddress``): deleting or unsubscribing is not undone by the next
save of the policy.

The recovery policy's MailTo (DIRAC's DataRecoveryAgent section) is imported the same way, once per
address and policy, user or address-only alike. DataRecoveryAgent mails what it did after each of its
runs, so those subscriptions get a mail after every cycle with the actions taken (recovery's among
them) and the proposals waiting (recovery's findings in propose mode, and every removal of outputs),
no report tables.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from email.utils import parseaddr

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from failover.models import RecoveryPolicy
from reports.digests.models import ImportedAddress, Subscription

log = logging.getLogger(__name__)


@dataclass
class ImportResult:
    created: list[Subscription] = field(default_factory=list)
    attached: list[Subscription] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{s.address}: new subscription for "
               + (f"user {s.user.get_username()}" if s.user_id else "the address only") for s in self.created]
        out += [f"{s.address}: address-only subscription now belongs to user {s.user.get_username()}"
                for s in self.attached]
        out += [f"{a}: imported before, left as it is" for a in self.already]
        out += [f"{a!r}: not an e-mail address, skipped" for a in self.invalid]
        return out


def _addresses(raw: list) -> tuple[list[str], list[str]]:
    good, bad = [], []
    for entry in raw or []:
        # MailTo is split on ", " by DIRAC; an entry may still be "Name <address>".
        for part in str(entry).split(","):
            part = part.strip()
            if not part:
                continue
            address = parseaddr(part)[1].strip()
            try:
                validate_email(address)
            except ValidationError:
                bad.append(part)
                continue
            if address.lower() not in {g.lower() for g in good}:
                good.append(address)
    return good, bad


def _user_for(address: str):
    users = list(get_user_model().objects.filter(email__iexact=address, is_active=True)[:2])
    return users[0] if len(users) == 1 else None


def agent_subscription(policy, address: str, user) -> Subscription:
    reports = bool(policy.report_types)
    return Subscription(
        user=user,
        email="" if user is not None else address,
        name=f"MailTo of policy {policy.name}"[:100],
        frequency=Subscription.Frequency.EVERY_CYCLE,
        # The agent reports the Report types (an empty Report reports nothing) and mails flushes
        # of any type; with Report set, the subscription's scope is those types.
        transformation_types=list(policy.report_types) if reports else [],
        want_reports=reports,
        min_failed_share=0.0,
        want_actions=True,
        want_attention=False,
        want_proposals=True,
        source=f"MailTo of policy {policy.name} (id {policy.pk})"[:255],
    )


def recovery_subscription(policy: RecoveryPolicy, address: str, user) -> Subscription:
    """What DataRecoveryAgent's mail becomes: after every cycle, the actions taken and the
    proposals waiting (recovery's findings are one or the other), without report tables."""
    return Subscription(
        user=user,
        email="" if user is not None else address,
        name=f"MailTo of recovery policy {policy.name}"[:100],
        frequency=Subscription.Frequency.EVERY_CYCLE,
        transformation_types=[],
        want_reports=False,
        min_failed_share=0.0,
        want_actions=True,
        want_attention=False,
        want_proposals=True,
        source=f"MailTo of recovery policy {policy.name} (id {policy.pk})"[:255],
    )


def import_mailto(policy) -> ImportResult:
    """Turn the policy's MailTo addresses not imported yet into subscriptions. Idempotent.

    ``policy`` is a failover ``Policy`` or a ``RecoveryPolicy``; each keeps its own imported addresses."""
    result = ImportResult()
    recovery = isinstance(policy, RecoveryPolicy)
    whose = {"recovery_policy": policy} if recovery else {"policy": policy}
    make = recovery_subscription if recovery else agent_subscription
    good, result.invalid = _addresses(policy.mail_to)
    for address in good:
        user = _user_for(address)
        seen = ImportedAddress.objects.filter(address__iexact=address, **whose).select_related(
            "subscription").first()
        if seen is not None:
            sub = seen.subscription
            # An address-only subscription whose address now belongs to a user becomes theirs.
            if sub is not None and sub.user_id is None and user is not None:
                sub.user, sub.email = user, ""
                sub.save(update_fields=["user", "email", "updated"])
                result.attached.append(sub)
            else:
                result.already.append(address)
            continue
        try:
            with transaction.atomic():
                sub = make(policy, address, user)
                sub.save()
                ImportedAddress.objects.create(address=address.lower(), subscription=sub, **whose)
        except IntegrityError:  # imported concurrently
            result.already.append(address)
            continue
        result.created.append(sub)
    for line in result.lines():
        log.info("%s %s MailTo: %s", "recovery policy" if recovery else "policy", policy.name, line)
    return result


def on_policy_saved(sender, instance, created, raw=False, **kwargs) -> None:
    """post_save on Policy and RecoveryPolicy: import new MailTo addresses. Never breaks the policy's save."""
    if raw or not instance.mail_to:
        return
    try:
        with transaction.atomic():
            import_mailto(instance)
    except Exception:
        log.exception("policy %s: MailTo could not be imported; run `manage.py digest import-mailto`", instance.name)
