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

In front of those parts, whole pages are kept per user in the ``pages`` cache (``PAGE_CACHE_URL``,
each process's memory by default): see "whole pages" below.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache as cache_once, wraps
from typing import Any

from django.contrib.humanize.templatetags.humanize import naturaltime
from django.core.cache import cache, caches
from django.db import connection
from django.db.models import Count, Max
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.utils import timezone
from django.utils.formats import time_format
from django.utils.html import escape

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


# -- whole pages ---------------------------------------------------------------------------------
#
# A warm page costs little once its parts come from the cache above, but rendering the page around
# them (forms, header, pager, a few queries) is still most of a request. So the overview, its
# polled table, a transformation's page and the productions list are also kept whole, in the
# ``pages`` cache (PAGE_CACHE_URL, by default each process's memory), keyed by:
#
# - the data version (``data_version``: one query) -- anything a cycle, an action, a proposal, an
#   acknowledgement or a policy change writes moves it, and while a cycle runs nothing is kept;
# - the user (id, name, role, staff flag: the header, the buttons and forms a role gets) and the
#   path with its query string.
#
# What changes with the clock or per response is not kept but marked and filled on each response:
# the ages ("3 minutes ago", "for 2 hours"), the time now, and the CSRF token (a fresh masking of
# the session's secret on every response, as Django does). A page with a flash message waiting, a
# page that is not a 200, and a page its view marks ``no_page_cache`` are never kept.

WINDOW = 50  # the newest cycles whose state and end are in the version
LIVE = re.compile(r"<!--live:(age|lasted|now|csrf):([^>]*?)-->")
CSRF_VALUE = re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]*(")')
CSRF_MARK = "<!--live:csrf:-->"


def age_marker(value: dt.datetime) -> str:
    return f"<!--live:age:{value.timestamp():.6f}-->"


def lasted_marker(value: dt.datetime) -> str:
    return f"<!--live:lasted:{value.timestamp():.6f}-->"


def now_marker(fmt: str) -> str:
    return f"<!--live:now:{fmt.replace('-->', '')}-->"


def format_now(fmt: str) -> str:
    return time_format(timezone.localtime(timezone.now()), fmt)


def lasted(value: dt.datetime, now: dt.datetime | None = None) -> str:
    """How long since ``value``, in two units ("3 hours, 5 minutes"): an attention item's age."""
    from django.utils.timesince import timesince

    now = now or timezone.now()
    if (now - value).total_seconds() < 60:
        return "under a minute"
    return timesince(value, now, depth=2)


def fill(html: str, request) -> str:
    """The page with its ages, time and CSRF token of now."""
    if "<!--live:" not in html:
        return html
    token = []

    def one(m: re.Match) -> str:
        kind, value = m.group(1), m.group(2)
        if kind == "csrf":
            if not token:
                token.append(get_token(request))
            return token[0]
        if kind == "now":
            return format_now(value)
        when = dt.datetime.fromtimestamp(float(value), tz=dt.timezone.utc)
        if kind == "age":
            return str(escape(naturaltime(when)))
        return str(escape(lasted(when)))

    return LIVE.sub(one, html)


@cache_once
def _version_sql() -> tuple[str, list]:
    """One statement of scalar subqueries; each an index lookup or a short index range."""
    from dashboard.models import Acknowledgement, PolicyChange
    from failover.models import Cycle, RecoveryFinding, RecoveryPolicy
    from reports.models import Outbox

    q = connection.ops.quote_name

    def t(model) -> str:
        return q(model._meta.db_table)

    window = f"(SELECT id, state, finished FROM {t(Cycle)} ORDER BY id DESC LIMIT {WINDOW})"
    parts, params = [
        f"(SELECT MAX(id) FROM {t(Cycle)})",
        f"(SELECT SUM(id) FROM {window} w)",
        f"(SELECT MAX(finished) FROM {window} w)",
        f"(SELECT COUNT(*) FROM {window} w WHERE state = %s)",
        # The action log: a new entry moves MAX(id), pruning MIN(id); an entry changes only while it
        # is pending or proposed (ActionLog.settle moves it out, once), so those two counts (short
        # ranges of the state index) move with every action settled and every proposal decided.
        f"(SELECT MIN(id) FROM {t(ActionLog)})",
        f"(SELECT MAX(id) FROM {t(ActionLog)})",
    ], [Cycle.State.RUNNING]
    for state in (ActionLog.State.PENDING, ActionLog.State.PROPOSED):
        parts.append(f"(SELECT COUNT(*) FROM {t(ActionLog)} WHERE state = %s)")
        params.append(state)
    for model in (Policy, RecoveryPolicy):  # edited (updated), or another one switched on
        parts += [f"(SELECT COUNT(*) FROM {t(model)})", f"(SELECT MAX(updated) FROM {t(model)})",
                  f"(SELECT SUM(id) FROM {t(model)} WHERE enabled = %s)"]
        params.append(True)
    parts += [f"(SELECT MAX(id) FROM {t(m)})" for m in (PolicyChange, Acknowledgement, RecoveryFinding, Outbox)]
    parts.append(f"(SELECT COUNT(*) FROM {t(Outbox)})")  # reports still on their way to OpenSearch
    return "SELECT " + ", ".join(parts), params


@dataclass(frozen=True)
class DataVersion:
    key: str
    # No cycle running among the newest: what the pages read is settled and can be kept.
    settled: bool


def data_version() -> DataVersion:
    """What every kept page depends on, read in one query (see the comment above)."""
    sql, params = _version_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        row = cursor.fetchone()
    running = row[3]
    return DataVersion(hashlib.sha1(repr(row).encode()).hexdigest()[:20], not running)


def _user_part(request) -> str:
    from dashboard.roles import role_of

    user = request.user
    return f"{user.pk}:{user.get_username()}:{role_of(user)}:{int(user.is_staff)}"


def whole_page(name: str, *, seconds: int | None = None):
    """Keep the view's 200 HTML response whole for its user, path and data version.

    ``seconds``: the page also shows what DIRAC says now (the productions' names): kept at most
    that long.
    """

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            request.live_markers = True
            pages = caches["pages"]
            keep = request.method == "GET" and request.user.is_authenticated and not _messages_waiting(request)
            key = None
            if keep:
                version = data_version()
                keep = version.settled
                if keep:
                    path = hashlib.sha1(request.get_full_path().encode()).hexdigest()[:20]
                    bucket = f":{int(time.time() // seconds)}" if seconds else ""
                    key = f"whole:{name}:{_user_part(request)}:{path}:{version.key}{bucket}"
                    hit = pages.get(key)
                    if hit is not None:
                        body, content_type = hit
                        return HttpResponse(fill(body, request), content_type=content_type)
            response = view(request, *args, **kwargs)
            if getattr(response, "streaming", False) or not response.get("Content-Type", "").startswith("text/html"):
                return response
            html = response.content.decode(response.charset or "utf-8")
            if key and response.status_code == 200 and not getattr(response, "no_page_cache", False):
                pages.set(key, (CSRF_VALUE.sub(rf"\g<1>{CSRF_MARK}\g<2>", html), response["Content-Type"]))
            response.content = fill(html, request)
            return response

        return wrapped

    return decorator


def _messages_waiting(request) -> bool:
    """A flash message for this session: the page shows it once, so it is neither kept nor taken from the cache."""
    from django.contrib.messages import get_messages

    return len(get_messages(request)) > 0
