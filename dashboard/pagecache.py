"""What the pages compute from stored data, kept in Django's cache until a cycle or an action changes it.

A transformation's page reads the aggregates, retries, attention items and action log that cycles
and actions stored; none of it changes between two cycles or two actions. So it is computed once
per *version* of the transformation and kept in the default cache (``CACHE_URL``: a folder shared
by every web server process by default, or Redis). The version is read on every request with a few
indexed queries:

- the transformation's last cycle and when it was last seen (a new cycle, or a database built anew);
- its action log: how many entries in each state, the newest id and the last finish (a new action,
  a proposal approved, rejected or superseded, a background action that finished);
- the policy in use and when it was last changed (what can apply, attention thresholds);
- the last acknowledgement (the "since the last acknowledged report" diff).

Only data that is the same for every user is kept: never a form, a CSRF token or a role's buttons;
those are rendered for each request around the cached parts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Max

from failover.models import ActionLog, Policy, TransformationState

TIMEOUT = 3600


def transformation_version(state: TransformationState, policy: Policy | None, ack_id: int | None) -> str:
    """A short string that changes whenever a cycle or an action changes what the page shows."""
    tid = state.transformation_id
    logs = sorted(
        ActionLog.objects.filter(transformation_id=tid).values_list("state")
        .annotate(n=Count("id"), last=Max("id"), finished=Max("finished"))
    )
    parts = [
        tid, state.last_cycle_id, state.last_seen and state.last_seen.isoformat(), state.last_action_log_id,
        state.status, state.locked_by,
        [(s, n, last, finished and finished.isoformat()) for s, n, last, finished in logs],
        policy and policy.pk, policy and policy.updated and policy.updated.isoformat(), ack_id,
    ]
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:20]


def cached(name: str, version: str, compute: Callable[[], Any]) -> Any:
    """``compute()``, or what it returned for the same ``name`` and ``version`` before."""
    key = f"page:{name}:{version}"
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, TIMEOUT)
    return value


def forget(name: str, version: str) -> None:
    cache.delete(f"page:{name}:{version}")


def rows_version(rows: list[TransformationState], policy: Policy | None, *extra) -> str:
    """The version of a page of overview rows: each row's last cycle and action, the latest cycle,
    the rows' action log and recovery findings, the policy, and ``extra`` (what else the
    fragment depends on, e.g. whether the user may act)."""
    from failover.models import Cycle, RecoveryFinding

    ids = [s.transformation_id for s in rows]
    latest = Cycle.objects.order_by("-id").values_list("id", "state", "finished").first()
    logs = sorted(
        ActionLog.objects.filter(transformation_id__in=ids).values_list("state")
        .annotate(n=Count("id"), last=Max("id"), finished=Max("finished"))
    )
    findings = RecoveryFinding.objects.filter(transformation_id__in=ids).aggregate(n=Count("id"), at=Max("checked"))
    parts = [
        [(s.transformation_id, s.last_cycle_id, s.last_seen, s.last_action_log_id, s.status, s.unchanged_cycles)
         for s in rows],
        latest, logs, findings, policy and policy.pk, policy and policy.updated, extra,
    ]
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:20]


def states_version() -> str:
    """Changes whenever a cycle or an action may have changed any transformation's row."""
    from failover.models import Cycle

    latest = Cycle.objects.order_by("-id").values_list("id", "state", "finished").first()
    logs = ActionLog.objects.aggregate(n=Count("id"), last=Max("id"), finished=Max("finished"))
    return hashlib.sha1(repr([latest, logs]).encode()).hexdigest()[:20]
