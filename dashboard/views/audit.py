"""``/audit/``: every action with who, what, when and outcome; filters and CSV export."""

from __future__ import annotations

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
               "outcome", "error", "files", "tasks")


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
            for name in dict.fromkeys([*change.after, *change.before])]
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
            a.state, a.actor, a.cycle_id or "", a.reason, a.outcome, a.error, n_files, n_tasks]


@require_GET
@viewer_required
def audit_csv(request):
    form, qs = _filtered(request)
    writer = csvsafe.writer(_Echo())  # actor names, reasons and errors never become formulas

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        for a in qs.iterator(chunk_size=1000):
            yield writer.writerow(_csv_row(a))

    name = f"failover-audit-{timezone.now():%Y%m%d-%H%M%S}.csv"
    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
