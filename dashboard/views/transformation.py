"""``/transformations/<id>/``: the report as the agent's mail, files, retries, charts, action log.

The report comes from the aggregates a cycle stored (``?cycle=N`` for a past one), never from raw
jobs, so the page costs the same for 100 or 100,000 jobs. The drill-downs (the jobs behind a
report row, the jobs and sites a reassigned file failed at) read DIRAC live, on pages of their own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from dashboard import charts, pagecache
from dashboard.forms import AcknowledgeForm, CycleForm
from dashboard.models import Acknowledgement
from dashboard.roles import can_act
from dashboard.views.access import get_state_or_404, operator_required, viewer_required
from dashboard.views.insight import transformation_insight
from failover import actions, attention, standing
from failover.backends import get_backend
from failover.domain import DONE_TASK_STATUSES
from failover.errors import FailoverError
from failover.models import ActionLog, Policy, ReassignCounter, TransformationState
from reports.aggregation import Report, build_report
from reports.stores import get_store, stored_aggregates

SERIES_LIMIT = 200
LOG_LIMIT = 50
RETRY_LIMIT = 20
FILE_ORDER = ("Processed", "Assigned", "Unused", "MaxReset", "Problematic", "Removed")


# -- the report ---------------------------------------------------------------------------------


def report_rows(report: Report, tid: int) -> list[dict]:
    """``Report.table_rows()`` with, on each row, the link to the jobs behind it."""
    base = reverse("transformation_jobs", args=[tid])
    rows = []
    status = minor = None
    for row in report.table_rows():
        if row["kind"] == "data":
            status, minor = row["status"], row["minor_status"]
            params = {"status": status, "minor_status": minor, "application_status": row["application_status"],
                      "site": row["site"]}
        elif row["kind"] == "minor":
            params = {"status": status, "minor_status": minor}
        elif row["kind"] == "status":
            params = {"status": status}
        else:
            params = {}
        rows.append({**row, "href": f"{base}?{urlencode(params)}"})
    return rows


def report_diff(before: Report, now: Report) -> list[dict]:
    """Counts by status and minor status that changed between two reports, in the report's order."""

    def counts(report: Report) -> dict[tuple[str, str | None], int]:
        out = {}
        for s in report.statuses:
            out[(s.status, None)] = s.count
            for m in s.minor_statuses:
                out[(s.status, m.minor_status)] = m.count
        return out

    old, new = counts(before), counts(now)
    keys = sorted(set(old) | set(new), key=lambda k: (k[0], k[1] is not None, k[1] or ""))
    rows = []
    for status, minor in keys:
        a, b = old.get((status, minor), 0), new.get((status, minor), 0)
        if a != b:
            rows.append({"status": status, "minor_status": minor, "before": a, "now": b, "change": b - a,
                         "style": "failed" if status in charts.FAILED else ("done" if status in DONE_TASK_STATUSES
                                                                            else "other")})
    if before.total != now.total:
        rows.append({"status": "Total # tasks", "minor_status": None, "before": before.total, "now": now.total,
                     "change": now.total - before.total, "style": "total"})
    return rows


# -- retry history ------------------------------------------------------------------------------


@dataclass
class RetryFile:
    lfn: str
    count: int
    updated: object
    # One entry per reset: {"task", "when", "action", "job", "site", "status", "minor_status"}.
    history: list[dict] = field(default_factory=list)


def retry_history(tid: int, limit: int | None = RETRY_LIMIT, offset: int = 0) -> tuple[list[RetryFile], int]:
    """Reassigned files (most reset first) with the failed tasks they were taken from.

    Job and site come from the action's details when the engine stored them there; otherwise
    :func:`resolve_jobs` reads them from DIRAC.
    """
    counters = ReassignCounter.objects.filter(transformation_id=tid).order_by("-count", "lfn")
    total = counters.count()
    chosen = list(counters[offset: offset + limit] if limit else counters)
    files = {c.lfn: RetryFile(c.lfn, c.count, c.updated) for c in chosen}
    if not files:
        return [], total
    logs = (
        ActionLog.objects.filter(transformation_id=tid, kind=ActionLog.Kind.REASSIGN, state=ActionLog.State.DONE)
        .order_by("created", "id").only("id", "created", "details")
    )
    for action in logs.iterator(chunk_size=200):
        details = action.details or {}
        moved = set(details.get("moved", []))
        jobs = details.get("jobs", {})
        for task, lfns in details.get("tasks", {}).items():
            for lfn in lfns:
                if lfn in files and (not moved or lfn in moved):
                    info = jobs.get(str(task), {}) if isinstance(jobs, dict) else {}
                    files[lfn].history.append({"task": int(task), "when": action.created, "action": action.pk,
                                               "job": info.get("job"), "site": info.get("site"),
                                               "status": info.get("status"), "minor_status": info.get("minor_status")})
    return list(files.values()), total


def resolve_jobs(tid: int, files: list[RetryFile]) -> str:
    """Fill job, site and status of each reset from DIRAC's tasks and jobs; returns an error or ""."""
    missing = {h["task"] for f in files for h in f.history if h["job"] is None}
    if not missing:
        return ""
    try:
        backend = get_backend()
        job_of = {t.task: t.job for t in backend.tasks([tid]) if t.task in missing}
        jobs = backend.jobs([j for j in job_of.values() if j])
    except FailoverError as exc:
        return f"DIRAC could not be read: {exc}"
    for f in files:
        for h in f.history:
            if h["job"] is None and h["task"] in job_of:
                h["job"] = job_of[h["task"]] or None
                job = jobs.get(h["job"]) if h["job"] else None
                if job is not None:
                    h.update(site=job.site, status=job.status, minor_status=job.minor_status)
    return ""


# -- the page -----------------------------------------------------------------------------------


def stored_part(state: TransformationState, wanted: int | None, ack, policy: Policy) -> dict:
    """Everything the page shows that cycles and actions stored, the same for every user: the
    report, its charts, retries, attention items, the action log. Cached per version
    (``dashboard/pagecache.py``) unless the store could not be read."""
    tid = state.transformation_id
    snap, series, acked, store_error = None, [], None, ""
    try:
        store = get_store()
        snap = stored_aggregates(tid, wanted, store)
        if wanted and snap is None:
            raise Http404(f"Transformation {tid} has no report stored by cycle {wanted}.")
        series = store.series(tid, limit=SERIES_LIMIT)
        if ack is not None and snap is not None:
            acked = store.at_cycle(tid, ack.cycle_id)
    except FailoverError as exc:  # the store (OpenSearch) cannot be read: say so, show the rest
        store_error = str(exc)
    report = build_report(tid, snap.rows) if snap else None
    latest_cycle = series[-1].cycle_id if series else None
    diff = report_diff(build_report(tid, acked.rows), report) if (acked and report) else None
    retries, retries_total = retry_history(tid)
    # The log's details can hold 100,000 task ids: the list does not show them, so never load them.
    log_qs = ActionLog.objects.filter(transformation_id=tid).defer("details")
    return {
        "store_error": store_error,
        "snap": snap,
        "report": report,
        "rows": report_rows(report, tid) if report else [],
        "is_latest": snap is not None and snap.cycle_id == latest_cycle,
        "recent_cycles": [(s.cycle_id, s.timestamp) for s in reversed(series[-30:])],
        "diff": diff,
        "retries": retries,
        "retries_total": retries_total,
        "log": list(log_qs[:LOG_LIMIT]),
        "log_total": log_qs.count(),
        "items": attention.items_for([state]).get(tid, []),
        "chart_states": charts.states_over_time(series),
        "chart_failures": charts.failures_by_site(snap.rows) if snap else None,
        # Only the actions that can apply to it now (no flush or complete on a Completed one).
        "kinds": [(k, actions.LABELS[k]) for k in standing.applicable(state, policy)],
        "idle": standing.idle_reason(state, policy, standing.completions([tid]).get(tid)),
        "proposals": ActionLog.objects.filter(transformation_id=tid, state=ActionLog.State.PROPOSED).count(),
        # The signature x site matrix of the report shown, and the forecast the cycle wrote.
        **transformation_insight(state, snap.rows if snap else []),
    }


def transformation_context(request, state: TransformationState, *, ack_form: AcknowledgeForm | None = None) -> dict:
    tid = state.transformation_id
    cycle_form = CycleForm(request.GET or None)
    wanted = cycle_form.cleaned_data.get("cycle") if cycle_form.is_bound and cycle_form.is_valid() else None
    ack = Acknowledgement.latest_for(tid)
    policy = Policy.current()
    version = pagecache.transformation_version(state, policy, ack.pk if ack else None)
    key = f"transformation:{tid}:{wanted or 'latest'}"
    stored = pagecache.cached(key, version, lambda: stored_part(state, wanted, ack, policy))
    if stored["store_error"]:  # never keep an outage: the next request tries the store again
        pagecache.forget(key, version)
        version = f"unstored-{uuid.uuid4().hex}"  # nor the fragments rendered without the report
    snap = stored["snap"]
    files_by_status = sorted((state.files or {}).items(),
                             key=lambda kv: (FILE_ORDER.index(kv[0]) if kv[0] in FILE_ORDER else 99, kv[0]))
    locked = state.locked_by and state.locked_until and state.locked_until > timezone.now()
    return {
        **stored,
        "state": state,
        "tid": tid,
        "page_version": version,
        "cycle_form": cycle_form,
        "ack": ack,
        "ack_form": ack_form or AcknowledgeForm(initial={"cycle": snap.cycle_id if snap else None}),
        "files_by_status": files_by_status,
        "children": list(TransformationState.objects.filter(parent_id=tid).order_by("transformation_id")
                         .values_list("transformation_id", "name", "status")),
        "locked": locked,
        "can_act": can_act(request.user),
        "recovery": attention.recovery_cases(tid),
    }


@require_GET
@viewer_required
@pagecache.whole_page("transformation")
def transformation(request, tid: int):
    state = get_state_or_404(tid)
    context = transformation_context(request, state)
    response = render(request, "dashboard/transformation.html", context)
    # Not kept: a page without its stored report (the store is down: the next request tries again),
    # or one showing a lock, which ends with its lease, not with a write.
    response.no_page_cache = bool(context["store_error"] or context["locked"])
    return response


@require_POST
@operator_required
def acknowledge(request, tid: int):
    """An operator read this report: the page then shows what changed since."""
    state = get_state_or_404(tid)
    form = AcknowledgeForm(request.POST)
    snap = None
    if form.is_valid():
        try:
            snap = get_store().at_cycle(tid, form.cleaned_data["cycle"])
        except FailoverError as exc:
            snap = None
            form.add_error(None, f"The stored reports cannot be read now: {exc}")
        if snap is None and not form.errors:
            form.add_error("cycle", f"Transformation {tid} has no report stored by cycle {form.cleaned_data['cycle']}.")
    if not form.is_valid():
        return render(request, "dashboard/transformation.html",
                      transformation_context(request, state, ack_form=form), status=400)
    Acknowledgement.objects.create(transformation_id=tid, cycle_id=snap.cycle_id, report_time=snap.timestamp,
                                   user=request.user)
    messages.success(request, f"Report of cycle {snap.cycle_id} acknowledged: changes are now shown since it.")
    return redirect("transformation", tid=tid)


# -- drill-downs that read DIRAC live -----------------------------------------------------------


@require_GET
@viewer_required
def transformation_files(request, tid: int):
    """Every reassigned file with the tasks, jobs and sites it failed at."""
    state = get_state_or_404(tid)
    paginator_total = ReassignCounter.objects.filter(transformation_id=tid).count()
    page = Paginator(range(paginator_total), 100).get_page(request.GET.get("page"))
    files, total = retry_history(tid, limit=100, offset=page.start_index() - 1 if paginator_total else 0)
    error = resolve_jobs(tid, files)
    return render(request, "dashboard/files.html", {
        "state": state, "tid": tid, "files": files, "total": total, "page": page, "error": error,
    })
