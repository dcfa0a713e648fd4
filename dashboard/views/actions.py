"""``/actions/<kind>/``: GET shows the engine's dry run and a confirmation; POST carries it out.

Per transformation (``?t=4848``) or for a selection (``?t=4846&t=4847``). Operators only.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from dashboard.forms import ConfirmForm, SelectionForm
from dashboard.views.access import operator_required
from failover import actions
from failover.models import ActionLog, TransformationState


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
        return _execute(request, kind)
    form = SelectionForm(request.GET)
    context = {"kind": kind, "label": actions.LABELS[kind], "form": form, "preview": None}
    if not form.is_valid():
        return render(request, "dashboard/action_preview.html", context, status=400)
    ids = form.cleaned_data["t"]
    preview = actions.preview(ids, kind)
    context.update(
        preview=preview,
        states={s.transformation_id: s for s in _states(ids)},
        confirm=ConfirmForm(initial={"t": ids, "request_key": actions.new_request_key()}),
        ids=ids,
    )
    return render(request, "dashboard/action_preview.html", context)


def _execute(request, kind: str):
    form = ConfirmForm(request.POST)
    if not form.is_valid():
        return render(request, "dashboard/action_preview.html",
                      {"kind": kind, "label": actions.LABELS[kind], "form": form, "preview": None}, status=400)
    key = form.cleaned_data["request_key"]
    results = actions.execute(form.cleaned_data["t"], kind, user=request.user, request_key=key)
    for r in results:
        if r.action is None:
            level = messages.WARNING if r.state in ("skipped", "error") else messages.INFO
            messages.add_message(request, level, f"{r.transformation}: {r.message}")
        elif r.state == "duplicate":
            messages.info(request, f"{r.transformation}: already carried out by this form (action {r.action.pk}).")
    # Post/redirect/get: reloading the result page never submits again.
    return redirect("action_result", kind=kind, key=key)


@require_GET
@operator_required
def action_result(request, kind: str, key: str):
    kind = _kind_or_404(kind)
    if not actions.valid_request_key(key):
        raise Http404("This action request does not exist.")
    done = list(actions.actions_for_key(key).defer("details"))
    return render(request, "dashboard/action_result.html",
                  {"kind": kind, "label": actions.LABELS[kind], "actions": done, "key": key,
                   "states": ActionLog.State})
