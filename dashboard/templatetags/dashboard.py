"""Small template helpers: roles, status colours, bars, the header's last-cycle line."""

from __future__ import annotations

import re

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from dashboard import pagecache, roles
from failover import outcomes
from failover.domain import DONE_TASK_STATUSES, FAILED_TASK_STATUSES
from failover.models import ActionLog, Cycle
from reports import colours

register = template.Library()

FILE_TONES = {"Processed": "done", "Assigned": "run", "Unused": "idle", "MaxReset": "bad", "Problematic": "bad"}


@register.filter
def can_act(user) -> bool:
    return roles.can_act(user)


@register.filter
def role(user) -> str:
    return roles.role_of(user) or "no role"


@register.filter
def status_class(status: str) -> str:
    """CSS class of a job or transformation status: done, failed, run, wait, idle."""
    if status in DONE_TASK_STATUSES or status in ("Archived", "Cleaned"):
        return "done"
    if status in FAILED_TASK_STATUSES or status == "Stalled":
        return "failed"
    if status in ("Running", "Active", "Flush", "Completing"):
        return "run"
    if status in ("Waiting", "Matched", "Received", "Checking", "Staging", "Submitted", "Created", "Rescheduled"):
        return "wait"
    return "idle"


@register.filter
def sorted_jobs(jobs: dict) -> list[tuple[str, int]]:
    return sorted(((s, n) for s, n in (jobs or {}).items() if n), key=lambda kv: colours.status_key(kv[0]))


@register.filter
def status_colour(status: str) -> str:
    return colours.status_colour(status)


@register.simple_tag
def file_bar(state) -> list[dict]:
    """Segments of the files bar: Processed, Assigned, Unused, the rest, each with its share."""
    files = state.files or {}
    total = state.files_total or sum(files.values()) or 0
    if not total:
        return []
    order = ["Processed", "Assigned", "Unused"]
    rest = {s: n for s, n in files.items() if s not in order and "-" not in s and n}
    parts = [(s, files.get(s, 0)) for s in order if files.get(s)] + sorted(rest.items())
    return [{"status": s, "n": n, "pct": round(100 * n / total, 2), "tone": FILE_TONES.get(s, "bad")}
            for s, n in parts]


@register.inclusion_tag("dashboard/_last_cycle.html", takes_context=True)
def last_cycle(context):
    cycle = (
        Cycle.objects.exclude(trigger=Cycle.Trigger.WEB)
        .only("id", "started", "finished", "state", "transformations", "actions", "errors").first()
    )
    return {"cycle": cycle, "now": timezone.now(), "request": context.get("request")}


@register.simple_tag
def proposals_waiting() -> int:
    return ActionLog.objects.filter(state=ActionLog.State.PROPOSED).count()


@register.filter
def lookup(mapping, key):
    try:
        return mapping.get(key) if hasattr(mapping, "get") else mapping[key]
    except (KeyError, IndexError, TypeError):
        return None


@register.filter
def count_files(details: dict) -> int:
    return sum(len(v) for v in (details or {}).get("tasks", {}).values())


@register.filter
def file_tone(status: str) -> str:
    return FILE_TONES.get(status, "bad")


@register.filter
def lasted(value, now=None) -> str:
    """How long since ``value``, in two units ("3 hours, 5 minutes"): an attention item's age."""
    return pagecache.lasted(value, now) if value else ""


@register.filter
def ago(value, now=None) -> str:
    """How long ago ``value`` was: Django's humanize ``naturaltime`` (kept for older templates)."""
    from django.contrib.humanize.templatetags.humanize import naturaltime

    return naturaltime(value) if value else ""


_SEPARATORS = re.compile(r"([_\-./:+])")


@register.filter
def wrap_at_separators(name: str) -> str:
    """A name that may wrap after its separators (``_ - . / : +``) and nowhere else (``<wbr>``)."""
    return mark_safe(_SEPARATORS.sub(r"\1<wbr>", escape(name or "")))


@register.filter
def action_phrase(action: ActionLog | None) -> str:
    """What an action did, from its numbers: "225 files reset to Unused" (failover/outcomes.py)."""
    if action is None:
        return ""
    return outcomes.phrase(action.kind, action.result) or action.get_kind_display()


# -- time in a cached page (dashboard/pagecache.py: whole pages) --------------------------------


@register.filter
def live_age(value) -> str:
    """A marker the whole-page cache fills with ``value``'s age ("3 minutes ago") on each response."""
    return mark_safe(pagecache.age_marker(value)) if value else ""  # noqa: S308 - digits only


def _live(context, value, marker, plain) -> str:
    """``plain(value)``, or ``marker(value)`` in a page the whole-page cache keeps (filled on each
    response); nothing for no value."""
    if not value:
        return ""
    if getattr(context.get("request"), "live_markers", False):
        return mark_safe(marker(value))  # noqa: S308 - the markers hold digits only
    return plain(value)


@register.simple_tag(takes_context=True)
def age(context, value) -> str:
    """``value|naturaltime``, or its marker in a page the whole-page cache keeps (filled on each
    response, so a kept page never shows a frozen "2 minutes ago")."""
    return _live(context, value, pagecache.age_marker, naturaltime)


@register.simple_tag(takes_context=True)
def time_now(context, fmt: str) -> str:
    """The time now in ``fmt`` (the ``time`` filter's), or its marker in a page the whole-page cache keeps."""
    request = context.get("request")
    if getattr(request, "live_markers", False):
        return mark_safe(pagecache.now_marker(fmt))  # noqa: S308 - the template's own format
    return pagecache.format_now(fmt)


@register.simple_tag(takes_context=True)
def for_how_long(context, value) -> str:
    """``value|lasted`` ("3 hours, 5 minutes"), or its marker in a page the whole-page cache keeps."""
    return _live(context, value, pagecache.lasted_marker, lasted)
