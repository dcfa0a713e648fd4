"""``/api/...``: JSON for what the pages show, with the pages' roles. Read-only.

Authentication: the browser session, or HTTP Basic with a dashboard account (for scripts:
``curl -u name:password``). Anonymous requests get 401, accounts without a role 403. Input is
validated strictly: a bad filter is a 400 naming the field, never ignored. The OpenAPI
description is ``/api/openapi.json`` (dashboard/openapi.json).
"""

from __future__ import annotations

import base64
import binascii
import json
from functools import wraps
from pathlib import Path

from django.contrib.auth import authenticate
from django.core.paginator import EmptyPage, Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from dashboard.forms import AuditFilterForm, CycleForm, OverviewFilterForm
from dashboard.ids import BadNumber, parse_id, parse_optional_id
from dashboard.roles import can_view
from dashboard.views.access import get_state_or_404
from dashboard.views.overview import filtered, sorted_qs
from failover import attention
from failover.errors import FailoverError, UnknownTransformation
from failover.models import ActionLog, Policy, TransformationState
from reports.aggregation import build_report, render_csv
from reports.live import live_report
from reports.stores import stored_aggregates

OPENAPI = Path(__file__).with_name("openapi.json")
MAX_PAGE_SIZE = 500


def _error(status: int, message: str, **extra) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def _basic_user(request):
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        name, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return authenticate(request, username=name, password=password)


def api_view(view):
    """GET only; session or Basic authentication; at least a viewer; errors as JSON."""

    @csrf_exempt  # read-only: nothing to forge
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            response = _error(405, f"{request.method} is not allowed here: the API is read-only")
            response["Allow"] = "GET, HEAD"
            return response
        user = request.user if request.user.is_authenticated else _basic_user(request)
        if user is None:
            response = _error(401, "authentication required: sign in, or use HTTP Basic with a dashboard account")
            response["WWW-Authenticate"] = 'Basic realm="failover dashboard"'
            return response
        request.user = user
        if not can_view(user):
            return _error(403, "your account has no role: ask an administrator")
        try:
            return view(request, *args, **kwargs)
        except Http404 as exc:
            return _error(404, str(exc))
        except FailoverError as exc:  # DIRAC or the aggregate store could not be read
            return _error(502, f"could not be read: {exc}")

    return wrapper


def _page(request, qs, serialize) -> JsonResponse:
    try:
        size = parse_id(request.GET.get("page_size", "50"), what="page_size")
        number = parse_id(request.GET.get("page", "1"), what="page")
    except BadNumber as exc:
        return _error(400, str(exc))
    if not 1 <= size <= MAX_PAGE_SIZE:
        return _error(400, f"page_size must be between 1 and {MAX_PAGE_SIZE}")
    paginator = Paginator(qs, size)
    try:
        page = paginator.page(number)
    except EmptyPage:
        return _error(404, f"page {number} does not exist (there are {paginator.num_pages})")
    return JsonResponse({
        "count": paginator.count,
        "page": page.number,
        "pages": paginator.num_pages,
        "results": serialize(list(page.object_list)),
    })


def _form_errors(form) -> JsonResponse:
    return _error(400, "invalid parameters", fields={k: [str(e) for e in v] for k, v in form.errors.items()})


# -- serializers ----------------------------------------------------------------------------------


def state_json(s: TransformationState, items: list[attention.Item]) -> dict:
    return {
        "id": s.transformation_id,
        "name": s.name,
        "type": s.type,
        "status": s.status,
        "production": s.production_id,
        "parent": s.parent_id,
        "group_size": s.group_size,
        "files": s.files,
        "files_total": s.files_total,
        "files_processed": s.files_processed,
        "progress": s.progress,
        "jobs": s.jobs,
        "jobs_total": s.jobs_total,
        "jobs_failed": s.jobs_failed,
        "failed_share": s.failed_share,
        "reassigned_files": s.reassigned_files,
        "flush_count": s.flush_count,
        "last_action": s.last_action,
        "last_action_at": s.last_action_at,
        "last_cycle": s.last_cycle_id,
        "last_seen": s.last_seen,
        "attention": [i.as_dict() for i in items],
    }


def action_json(a: ActionLog) -> dict:
    return {
        "id": a.pk,
        "created": a.created,
        "finished": a.finished,
        "transformation": a.transformation_id,
        "kind": a.kind,
        "state": a.state,
        "actor": a.actor,
        "cycle": a.cycle_id,
        "reason": a.reason,
        "details": a.details,
        "outcome": a.outcome,
        "error": a.error,
    }


# -- endpoints ------------------------------------------------------------------------------------


@api_view
def transformations(request):
    form = OverviewFilterForm(request.GET)
    if not form.is_valid():
        return _form_errors(form)
    policy = Policy.current()
    qs = sorted_qs(filtered(form, policy), form.cleaned_data.get("sort") or "id", policy)

    def serialize(rows):
        items = attention.items_for(rows, policy)
        return [state_json(s, items.get(s.transformation_id, [])) for s in rows]

    return _page(request, qs, serialize)


@api_view
def transformation(request, tid: int):
    state = get_state_or_404(tid)
    data = state_json(state, attention.items_for([state]).get(tid, []))
    # The last recovery check's findings, per case (failover/cycle/recover.py).
    data["recovery"] = attention.recovery_cases(tid)
    return JsonResponse(data)


def _report(request, tid: int):
    """(report, cycle, timestamp): stored (latest or ``?cycle=N``) or, with ``?source=live``, from DIRAC."""
    source = request.GET.get("source", "stored")
    if source not in ("stored", "live"):
        raise ValueError("source is stored or live")
    form = CycleForm(request.GET)
    if not form.is_valid():
        raise ValueError("; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
    cycle = form.cleaned_data.get("cycle")
    if source == "live":
        if cycle:
            raise ValueError("cycle goes with source=stored")
        try:
            return live_report(tid), None, None
        except UnknownTransformation as exc:
            raise Http404(str(exc)) from None
    get_state_or_404(tid)
    snap = stored_aggregates(tid, cycle)
    if snap is None:
        raise Http404(f"transformation {tid} has no report stored" + (f" by cycle {cycle}" if cycle else " yet"))
    return build_report(tid, snap.rows), snap.cycle_id, snap.timestamp


def _with_report_headers(response, cycle, timestamp):
    if cycle is not None:
        response["X-Report-Cycle"] = str(cycle)
        response["X-Report-Time"] = timestamp.isoformat()
    return response


@api_view
def report(request, tid: int):
    """The JSON of ``manage.py report ID --format json`` (stored aggregates unless source=live)."""
    try:
        rep, cycle, timestamp = _report(request, tid)
    except ValueError as exc:
        return _error(400, str(exc))
    return _with_report_headers(JsonResponse(rep.as_json()), cycle, timestamp)


@api_view
def report_download(request, tid: str, fmt: str):
    try:
        tid = parse_id(tid, what="transformation id")  # from a regular expression route: a string
    except BadNumber as exc:
        raise Http404(str(exc)) from None
    try:
        rep, cycle, timestamp = _report(request, tid)
    except ValueError as exc:
        return _error(400, str(exc))
    suffix = f"-cycle{cycle}" if cycle else ""
    if fmt == "csv":
        response = HttpResponse(render_csv(rep), content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse(json.dumps(rep.as_json(), indent=1), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="report-{tid}{suffix}.{fmt}"'
    return _with_report_headers(response, cycle, timestamp)


@api_view
def attention_items(request):
    """Attention items, paginated by transformation like the attention page."""
    codes = [c for c in request.GET.getlist("code") if c]
    unknown = [c for c in codes if c not in attention.TITLES]
    if unknown:
        return _error(400, f"unknown code {', '.join(unknown)}", codes=list(attention.TITLES))
    try:
        t = parse_optional_id(request.GET.get("transformation"), what="transformation id")
    except BadNumber as exc:
        return _error(400, str(exc), fields={"transformation": [str(exc)]})
    policy = Policy.current()
    qs = attention.rows_needing_attention(policy, codes or None)
    if t is not None:
        qs = qs.filter(transformation_id=t)
    return _page(request, qs, lambda rows: [i.as_dict() for i in attention.items_of_rows(rows, policy, codes)])


@api_view
def action_log(request):
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return _form_errors(form)
    return _page(request, form.filter(ActionLog.objects.all()), lambda rows: [action_json(a) for a in rows])


@api_view
def proposals(request):
    qs = ActionLog.objects.filter(state=ActionLog.State.PROPOSED).order_by("id")
    return _page(request, qs, lambda rows: [action_json(a) for a in rows])


@api_view
def openapi(request):
    """The API's description (login required like everything but /health/)."""
    return HttpResponse(OPENAPI.read_bytes(), content_type="application/json")
