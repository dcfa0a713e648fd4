"""``/``: every transformation the cycle has seen, filtered, sorted and paginated in SQL."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import Case, F, FloatField, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Cast
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from dashboard import pagecache
from dashboard.forms import PAGE_SIZE, OverviewFilterForm
from dashboard.ids import parse_id
from dashboard.roles import can_act
from dashboard.views.access import viewer_required
from failover import actions, attention, standing
from failover.models import Policy, TransformationState

# Sort keys of the column headers -> what to order by (ties by id).
SORTS = {
    "id": "transformation_id",
    "name": "name",
    "type": "type",
    "status": "status",
    "parent": "parent_id",
    "production": "production_id",
    "files": "progress",
    "jobs": "jobs_total",
    "failed": "failed_share",
    "reassigned": "reassigned_files",
    "action": "last_action_at",
    # The completion forecast the cycle wrote (no estimate: last either way).
    "forecast": "eta",
    "attention": "needs_attention",
}


def filtered(form: OverviewFilterForm, policy: Policy) -> QuerySet[TransformationState]:
    qs = TransformationState.objects.all()
    q = form.value("q", "").strip()
    if q:
        match = Q(name__icontains=q)
        try:
            match |= Q(transformation_id=parse_id(q))
        except ValueError:
            pass  # not an id: the search is by name only
        qs = qs.filter(match)
    for name in ("type", "status"):
        value = form.value(name)
        if value:
            qs = qs.filter(**{name: value})
    production = form.value("production")
    if production is not None:
        qs = qs.filter(production_id=production)
    if form.value("attention", False):
        qs = qs.filter(attention.needs_attention_q(policy))
    return qs


def sorted_qs(qs: QuerySet, sort: str, policy: Policy) -> QuerySet:
    key = sort.lstrip("-") if sort else "id"
    descending = sort.startswith("-")
    field = SORTS.get(key, "transformation_id")
    if field == "progress":
        qs = qs.annotate(progress_sort=Case(
            When(files_total=0, then=Value(0.0)),
            default=Cast(F("files_processed"), FloatField()) / Cast(F("files_total"), FloatField()),
            output_field=FloatField(),
        ))
        field = "progress_sort"
    elif field == "needs_attention":
        qs = qs.annotate(needs_attention=Case(
            When(attention.needs_attention_q(policy), then=Value(1)), default=Value(0), output_field=IntegerField()
        ))
    expr = F(field).desc(nulls_last=True) if descending else F(field).asc(nulls_last=True)
    return qs.order_by(expr, "transformation_id")


def overview_context(request) -> dict:
    policy = Policy.current()
    form = OverviewFilterForm(request.GET or None)
    sort = form.value("sort", "id")
    qs = sorted_qs(filtered(form, policy), sort, policy)
    # The last action's sentence is built from its result; its details (maybe 100,000 ids) stay unread.
    qs = qs.select_related("last_action_log").defer(
        "last_action_log__details", "last_action_log__reason", "last_action_log__outcome")
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    acting = can_act(request.user)
    filtered_on = any(form.value(n) for n in ("q", "type", "status", "production", "attention"))

    def render_rows() -> str:
        items = attention.items_for(rows, policy)
        done = standing.completions([s.transformation_id for s in rows if s.status == "Completed"])
        return render_to_string("dashboard/_overview_rows.html", {
            # Each row: the state, its attention items, why it is not moving, the actions that can apply.
            "rows": [(s, items.get(s.transformation_id, []),
                      standing.idle_reason(s, policy, done.get(s.transformation_id)),
                      " ".join(standing.applicable(s, policy))) for s in rows],
            "can_act": acting, "filtered": filtered_on,
        })

    # The rows as HTML, the same for every user who may (or may not) act: kept until a cycle or an
    # action changes one of them (dashboard/pagecache.py); their ages are markers, filled in on
    # each response by the whole-page cache (pagecache.whole_page).
    version = pagecache.rows_version(rows, policy, acting, filtered_on)
    html = pagecache.cached("overview-rows", version, render_rows)
    return {
        "form": form,
        "page": page,
        "rows_html": mark_safe(html),  # noqa: S308 - rendered by our template, escaped there
        "sort": sort,
        "can_act": acting,
        "kinds": [(k, actions.LABELS[k]) for k in actions.BUTTONS],
        "now": timezone.now(),
        "filtered": filtered_on,
    }


@require_GET
@viewer_required
@pagecache.whole_page("overview")
def overview(request):
    return render(request, "dashboard/overview.html", overview_context(request))


@require_GET
@viewer_required
@pagecache.whole_page("overview-table")
def overview_table(request):
    """The table alone, polled by the page every few seconds (server-rendered, no JSON)."""
    return render(request, "dashboard/_overview_table.html", overview_context(request))
