"""Unsubscribe tokens: signed (django.core.signing, SECRET_KEY), so a link cannot be forged or edited
to another subscription, and tied to each subscription's nonce, which unsubscribing replaces, so a
link works once."""

from __future__ import annotations

from collections.abc import Iterable

from django.core import signing

SALT = "reports.digests.unsubscribe"


class InvalidToken(Exception):
    pass


def make_token(subscriptions: Iterable) -> str:
    return signing.dumps([[s.pk, s.token_nonce] for s in subscriptions], salt=SALT, compress=True)


def read_token(token: str) -> list[tuple[int, str]]:
    try:
        data = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise InvalidToken("the link is not valid") from None
    try:
        pairs = [(int(pk), str(nonce)) for pk, nonce in data]
    except (TypeError, ValueError):
        raise InvalidToken("the link is not valid") from None
    if not pairs:
        raise InvalidToken("the link is not valid")
    return pairs
