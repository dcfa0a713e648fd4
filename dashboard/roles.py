"""Roles are Django groups: viewers see, operators act, administrators edit policies and users.

A role includes the ones below it. A superuser counts as an administrator. A signed-in account in
no group sees nothing but a page asking an administrator for a role.
"""

from __future__ import annotations

VIEWER = "viewer"
OPERATOR = "operator"
ADMIN = "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)
_RANK = {VIEWER: 1, OPERATOR: 2, ADMIN: 3}


_NONE = "-"  # a cached "no role" (the cache's own miss is None)


def _cache_key(user_id, joined) -> str:
    # The account's creation time too: a deleted account's id given out again never finds its role.
    return f"role:{user_id}:{joined.timestamp() if joined else ''}"


def role_of(user) -> str | None:
    """The highest role of ``user``, or None.

    Kept on the user object for one request, and in the shared cache (``CACHE_URL``) between
    requests, so that a page served from the whole-page cache costs no query for it. Every change
    of a user's groups, of a group or of an account forgets the kept roles it touches (the signal
    handlers below), so a role taken away applies at the next request.
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    cached = getattr(user, "_failover_role", False)
    if cached is not False:
        return cached
    if user.is_superuser:
        role = ADMIN
    else:
        from django.core.cache import cache

        key = _cache_key(user.pk, getattr(user, "date_joined", None))
        kept = cache.get(key)
        if kept is None:
            names = set(user.groups.values_list("name", flat=True))
            role = max((r for r in ROLES if r in names), key=_RANK.__getitem__, default=None)
            cache.set(key, role or _NONE, 3600)
        else:
            role = None if kept == _NONE else kept
    user._failover_role = role
    return role


def forget_roles(users) -> None:
    """Forget the kept roles of ``users`` (accounts, or (id, date_joined) pairs)."""
    from django.core.cache import cache

    keys = [_cache_key(*u) if isinstance(u, tuple) else _cache_key(u.pk, getattr(u, "date_joined", None))
            for u in users]
    if keys:
        cache.delete_many(keys)
        for u in users:
            if not isinstance(u, tuple) and hasattr(u, "_failover_role"):
                del u._failover_role


def has_role(user, wanted: str) -> bool:
    role = role_of(user)
    return role is not None and _RANK[role] >= _RANK[wanted]


def can_view(user) -> bool:
    return has_role(user, VIEWER)


def can_act(user) -> bool:
    return has_role(user, OPERATOR)
