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


def role_of(user) -> str | None:
    """The highest role of ``user``, or None; cached on the user object for one request."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    cached = getattr(user, "_failover_role", False)
    if cached is not False:
        return cached
    if user.is_superuser:
        role = ADMIN
    else:
        names = set(user.groups.values_list("name", flat=True))
        role = max((r for r in ROLES if r in names), key=_RANK.__getitem__, default=None)
    user._failover_role = role
    return role


def has_role(user, wanted: str) -> bool:
    role = role_of(user)
    return role is not None and _RANK[role] >= _RANK[wanted]


def can_view(user) -> bool:
    return has_role(user, VIEWER)


def can_act(user) -> bool:
    return has_role(user, OPERATOR)
