"""``/attention/``: every attention item, by kind, each with its fix where one exists.

Paginated in SQL by transformation (50 per page); the items are built for the page's rows only.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard.roles import can_act
from dashboard.views.access import viewer_required
from failover import actions, attention
from failover.models import Policy

PAGE_SIZE = 50


@require_GET
@viewer_required
def attention_list(request):
    policy = Policy.current()
    code = request.GET.get("code", "")
    if code not in attention.TITLES:
        code = ""
    counts = attention.counts_by_code_sql(policy)
    rows = attention.rows_needing_attention(policy, code or None)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    items = attention.items_of_rows(list(page.object_list), policy, [code] if code else None)
    return render(request, "dashboard/attention.html", {
        "page": page,
        "items": items,
        "counts": [(c, attention.TITLES[c], counts[c]) for c in attention.TITLES if c in counts],
        "code": code,
        "all_count": attention.rows_needing_attention(policy).count() if code else page.paginator.count,
        "can_act": can_act(request.user),
        "labels": actions.LABELS,
    })
