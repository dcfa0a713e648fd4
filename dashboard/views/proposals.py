"""``/proposals/``: what the cycle proposes in propose mode; operators approve or reject."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from dashboard.forms import ProposalDecisionForm
from dashboard.ids import BadNumber, parse_optional_id
from dashboard.roles import can_act
from dashboard.views.access import operator_required, viewer_required
from failover import actions
from failover.models import ActionLog, Policy

HANDLED = (ActionLog.State.STALE, ActionLog.State.REJECTED, ActionLog.State.SUPERSEDED)


def _context(request, form=None, t: int | None = None) -> dict:
    waiting = ActionLog.objects.filter(state=ActionLog.State.PROPOSED).select_related("cycle").order_by("id")
    if t is not None:
        waiting = waiting.filter(transformation_id=t)
    page = Paginator(waiting, 100).get_page(request.GET.get("page"))
    recent = (ActionLog.objects.filter(details__has_key="proposed") | ActionLog.objects.filter(state__in=HANDLED))
    return {
        "page": page,
        "form": form or ProposalDecisionForm(),
        "recent": list(recent.defer("details").order_by("-finished", "-id")[:20]),
        "can_act": can_act(request.user),
        "policy": Policy.current(),
        "t": "" if t is None else t,
    }


@require_GET
@viewer_required
def proposals(request):
    try:
        t = parse_optional_id(request.GET.get("t"), what="transformation id")
    except BadNumber as exc:
        messages.error(request, f"The transformation filter was not applied: {exc}")
        return render(request, "dashboard/proposals.html", _context(request), status=400)
    return render(request, "dashboard/proposals.html", _context(request, t=t))


@require_POST
@operator_required
def decide(request):
    form = ProposalDecisionForm(request.POST)
    if not form.is_valid():
        return render(request, "dashboard/proposals.html", _context(request, form), status=400)
    chosen = form.chosen()
    if not chosen:
        messages.info(request, "There was no proposal waiting: nothing was done.")
        return redirect("proposals")
    if form.cleaned_data["decision"] == "reject":
        results = actions.reject(chosen, user=request.user, reason=form.cleaned_data["reason"])
    else:
        results = actions.approve(chosen, user=request.user)
    for r in results:
        pk = r.action.pk if r.action else "?"
        level = messages.SUCCESS if r.state in ("done", "rejected") else messages.WARNING
        messages.add_message(request, level, f"Proposal {pk} ({r.transformation}): {r.state}: {r.message}")
    return redirect("proposals")
