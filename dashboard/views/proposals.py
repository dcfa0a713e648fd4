"""``/proposals/``: what the cycle proposes in propose mode; operators approve or reject.

Approving (selected proposals, or all those waiting) is confirmed by the page's form, whose
one-time key makes an ``ActionRequest``; a worker carries it out (``failover.run_action_request``)
and the result page polls its progress until the outcome, as for the action buttons. Rejecting
only writes the decision, so it is done in the request.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from dashboard.forms import ProposalDecisionForm
from dashboard.ids import BadNumber, parse_optional_id
from dashboard.roles import can_act
from dashboard.views.access import operator_required, viewer_required
from failover import actions, tasks
from failover.models import ActionLog, ActionRequest, Policy

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
        # A fresh one-time key at every render: a page re-shown with an error is a new confirmation.
        "request_key": actions.new_request_key(),
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
    key = request.POST.get("request_key", "")
    if actions.valid_request_key(key) and ActionRequest.objects.filter(key=key, kind=ActionRequest.APPROVE).exists():
        # A second submit of the same page (the first may have settled its proposals meanwhile).
        messages.info(request, "This approval was already confirmed: it is carried out once, as shown here.")
        return redirect("approval_result", key=key)
    form = ProposalDecisionForm(request.POST)
    if not form.is_valid():
        return render(request, "dashboard/proposals.html", _context(request, form), status=400)
    chosen = form.chosen()
    if not chosen:
        messages.info(request, "There was no proposal waiting: nothing was done.")
        return redirect("proposals")
    if form.cleaned_data["decision"] == "reject":
        results = actions.reject(chosen, user=request.user, reason=form.cleaned_data["reason"])
        for r in results:
            pk = r.action.pk if r.action else "?"
            level = messages.SUCCESS if r.state == "rejected" else messages.WARNING
            messages.add_message(request, level, f"Proposal {pk} ({r.transformation}): {r.state}: {r.message}")
        return redirect("proposals")
    key = form.cleaned_data["request_key"]
    with transaction.atomic():
        req, created = actions.request_approval(chosen, user=request.user, request_key=key)
        if created:
            # Enqueued once the request is committed, so the worker always finds it.
            transaction.on_commit(lambda: tasks.run_action_request.delay(req.pk))
    # Post/redirect/get: reloading the result page never approves again.
    return redirect("approval_result", key=key)


def _approval_context(key: str) -> dict:
    if not actions.valid_request_key(key):
        raise Http404("This approval does not exist.")
    req = ActionRequest.objects.filter(key=key, kind=ActionRequest.APPROVE).first()
    if req is None:
        raise Http404("This approval does not exist.")
    proposals = list(ActionLog.objects.filter(pk__in=req.proposal_ids).defer("details").order_by("id"))
    return {"req": req, "key": key, "results": req.results, "actions": proposals, "states": ActionLog.State,
            "label": "Approve proposals", "progress_url": "approval_progress"}


@require_GET
@operator_required
def approval_result(request, key: str):
    return render(request, "dashboard/approval_result.html", _approval_context(key))


@require_GET
@operator_required
def approval_progress(request, key: str):
    """The progress alone, polled by the result page until the approval is over (server-rendered)."""
    return render(request, "dashboard/_action_progress.html", _approval_context(key))
