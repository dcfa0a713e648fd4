"""``/actions/<kind>/``: GET shows the engine's dry run and a confirmation; POST enqueues it.

Per transformation (``?t=4848``) or for a selection (``?t=4846&t=4847``). Operators only. The
confirmation writes an ``ActionRequest`` (once per form key) and a worker carries it out
(``failover.run_action_request``); the result page polls its progress until the outcome.
"""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from dashboard.forms import ConfirmForm, SelectionForm
from dashboard.views.access import operator_required
from failover import actions, standing, tasks
from failover.models import ActionLog, ActionRequest, Policy, TransformationState


def _kind_or_404(kind: str) -> str:
    if kind not in actions.BUTTONS:
        raise Http404(f"There is no action “{kind}”: the actions are {', '.join(actions.BUTTONS)}.")
    return kind


def _states(ids):
    by_id = TransformationState.objects.in_bulk(ids)
    return [by_id[i] for i in ids if i in by_id]


@require_http_methods(["GET", "POST"])
@operator_required
def action(request, kind: str):
    kind = _kind_or_404(kind)
    if request.method == "POST":
        return _enqueue(request, kind)
    form = SelectionForm(request.GET)
    context = {"kind": kind, "label": actions.LABELS[kind], "form": form, "preview": None}
    if not form.is_valid():
        return render(request, "dashboard/action_preview.html", context, status=400)
    ids = form.cleaned_data["t"]
    preview = actions.preview(ids, kind)
    states = {s.transformation_id: s for s in _states(ids)}
    policy, done = Policy.current(), standing.completions(ids)
    context.update(
        preview=preview,
        states=states,
        # A reason for every transformation with nothing to do, Completed ones included.
        nothing={o.transformation: standing.why_nothing(kind, states.get(o.transformation), policy,
                                                        done.get(o.transformation))
                 for o in preview.outcomes if not o.decisions and not o.blockers},
        confirm=ConfirmForm(initial={"t": ids, "request_key": actions.new_request_key()}),
        ids=ids,
    )
    return render(request, "dashboard/action_preview.html", context)


def _enqueue(request, kind: str):
    form = ConfirmForm(request.POST)
    if not form.is_valid():
        return render(request, "dashboard/action_preview.html",
                      {"kind": kind, "label": actions.LABELS[kind], "form": form, "preview": None}, status=400)
    key = form.cleaned_data["request_key"]
    with transaction.atomic():
        req, created = actions.request_action(form.cleaned_data["t"], kind, user=request.user, request_key=key)
        if created:
            # Enqueued once the request is committed, so the worker always finds it.
            transaction.on_commit(lambda: tasks.run_action_request.delay(req.pk))
    if not created:
        messages.info(request, "This form was already confirmed: it is carried out once, as shown here.")
    # Post/redirect/get: reloading the result page never submits again.
    return redirect("action_result", kind=req.kind, key=key)


def _result_context(kind: str, key: str) -> dict:
    kind = _kind_or_404(kind)
    if not actions.valid_request_key(key):
        raise Http404("This action request does not exist.")
    req = ActionRequest.objects.filter(key=key, kind=kind).first()
    done = list(actions.actions_for_key(key).defer("details"))
    if req is None and not done:
        raise Http404("This action request does not exist.")
    states = {s.transformation_id: s for s in _states(req.transformation_ids)} if req else {}
    return {"kind": kind, "label": actions.LABELS[kind], "actions": done, "key": key, "req": req,
            "names": {tid: s.name for tid, s in states.items()},
            "results": req.results if req else [], "states": ActionLog.State,
            "first_id": req.transformation_ids[0] if req and req.transformation_ids else
            (done[0].transformation_id if done else None)}


@require_GET
@operator_required
def action_result(request, kind: str, key: str):
    return render(request, "dashboard/action_result.html", _result_context(kind, key))


@require_GET
@operator_required
def action_progress(request, kind: str, key: str):
    """The progress alone, polled by the result page until the request is over (server-rendered)."""
    return render(request, "dashboard/_action_progress.html", _result_context(kind, key))
