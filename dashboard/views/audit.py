"""``/audit/``: every action with who, what, when and outcome; filters and CSV export.

The CSV (``/audit.csv``) has the actions and the policy changes made on the policy page, newest
first, in one table: its ``entry`` column says which (``action`` or ``policy_change``; their ids are
numbered apart), and a policy change's row has the policy and what changed (``option: before ->
after``) in its last two columns. The filters apply as on the page: one by transformation, kind or
state leaves the policy changes out.
"""

from __future__ import annotations

import heapq

from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from dashboard.filters import ActionLogFilter
from dashboard.forms import AuditFilterForm
from dashboard.models import PolicyChange
from dashboard.policy_form import OPTION
from dashboard.views.access import get_action_or_404, viewer_required
from failover.models import ActionLog
from reports import csvsafe

CSV_COLUMNS = ("id", "created", "finished", "transformation", "kind", "state", "actor", "cycle", "reason",
               "outcome", "error", "files", "tasks", "entry", "policy", "changes")
POLICY_KIND = "policy"


def _filtered(request) -> tuple[AuditFilterForm, object]:
    found = ActionLogFilter(request.GET or None, queryset=ActionLog.objects.all())
    return found.form, found.qs


@require_GET
@viewer_required
def audit(request):
    form, qs = _filtered(request)
    page = Paginator(qs.defer("details"), 50).get_page(request.GET.get("page"))
    return render(request, "dashboard/audit.html", {"form": form, "page": page,
                                                    "policy_changes": _policy_changes(form)})


def _policy_changes(form):
    """The policy changes the filter lets through (they have no transformation, kind or state)."""
    data = getattr(form, "cleaned_data", {}) if form.is_bound else {}
    if data.get("transformation") is not None or data.get("kind") or data.get("state"):
        return None
    qs = PolicyChange.objects.all()
    if data.get("actor"):
        qs = qs.filter(actor__iexact=data["actor"])
    if data.get("since"):
        qs = qs.filter(created__date__gte=data["since"])
    if data.get("until"):
        qs = qs.filter(created__date__lte=data["until"])
    return qs


@require_GET
@viewer_required
def audit_entry(request, pk: int):
    action = get_action_or_404(pk)
    return render(request, "dashboard/audit_entry.html", {"a": action})


@require_GET
@viewer_required
def policy_change(request, pk: int):
    change = PolicyChange.objects.filter(pk=pk).select_related("policy").first()
    if change is None:
        raise Http404(f"Policy change {pk} does not exist.")
    rows = [{"name": name, "option": OPTION.get(name, name), "before": change.before.get(name),
             "after": change.after.get(name), "changed": change.before.get(name) != change.after.get(name)}
            for name in change.options]
    return render(request, "dashboard/audit_policy_change.html", {"c": change, "rows": rows})


class _Echo:
    def write(self, value):
        return value


def _csv_row(a: ActionLog) -> list:
    details = a.details or {}
    tasks = details.get("tasks", {})
    n_files = sum(len(v) for v in tasks.values()) if a.kind == ActionLog.Kind.REASSIGN else ""
    n_tasks = len(tasks) if a.kind == ActionLog.Kind.REASSIGN else (
        sum(len(v) for v in tasks.values()) if a.kind == ActionLog.Kind.SYNC else "")
    return [a.pk, a.created.isoformat(), a.finished.isoformat() if a.finished else "", a.transformation_id, a.kind,
            a.state, a.actor, a.cycle_id or "", a.reason, a.outcome, a.error, n_files, n_tasks, "action", "", ""]


def _option_value(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return "" if value is None else str(value)


def _policy_csv_row(c: PolicyChange) -> list:
    changed = c.changed
    changes = "; ".join(f"{OPTION.get(name, name)}: {_option_value(c.before.get(name))} -> "
                        f"{_option_value(c.after.get(name))}" for name in changed)
    what = ", ".join(OPTION.get(name, name) for name in changed) or "nothing"
    return [c.pk, c.created.isoformat(), c.created.isoformat(), "", POLICY_KIND, "done", c.actor, "",
            f"policy {c.policy_name} edited on the policy page", f"changed {what}", "", "", "",
            "policy_change", c.policy_name, changes]


@require_GET
@viewer_required
def audit_csv(request):
    form, qs = _filtered(request)
    writer = csvsafe.writer(_Echo())  # actor names, reasons and errors never become formulas

    changes = _policy_changes(form)
    actions = ((a.created, _csv_row(a)) for a in qs.order_by("-created", "-id").iterator(chunk_size=1000))
    policy = ((c.created, _policy_csv_row(c)) for c in (changes.iterator() if changes is not None else ()))

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        # Both newest first: merged into one table by time.
        for _, row in heapq.merge(actions, policy, key=lambda pair: pair[0], reverse=True):
            yield writer.writerow(row)

    name = f"failover-audit-{timezone.now():%Y%m%d-%H%M%S}.csv"
    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
