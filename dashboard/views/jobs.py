"""``/transformations/<id>/jobs/``: the jobs of a transformation, filtered, sorted, 50 a page.

Read from DIRAC now (its tasks, jobs and files), with what the engine recorded when it took files
from failed tasks (``failover.models.TaskFile``): so each job shows its task's input files as they
were when it ran, and the retry chain of those files, the earlier and later jobs that had them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.core.paginator import Paginator
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from dashboard.forms import JobFilterForm
from dashboard.views.access import get_state_or_404, viewer_required
from failover.backends import get_backend
from failover.domain import JobInfo, TaskInfo
from failover.errors import FailoverError
from failover.models import TaskFile

PAGE_SIZE = 50
# The filters, in the report's order: (form field, JobInfo attribute, label).
FILTERS = (
    ("status", "status", "Status"),
    ("minor_status", "minor_status", "MinorStatus"),
    ("application_status", "application_status", "ApplicationStatus"),
    ("site", "site", "Site"),
)
SORTS = {
    "job": lambda r: (r.job.id,),
    "task": lambda r: (r.task.task, r.job.id),
    "status": lambda r: (r.job.status, r.job.id),
    "minor_status": lambda r: (r.job.minor_status, r.job.id),
    "application_status": lambda r: (r.job.application_status, r.job.id),
    "site": lambda r: (r.job.site, r.job.id),
}
# WebAppDIRAC's address of its Job Monitor application (the url_state form its Main.js reads).
JOB_MONITOR = "/?view=tabs&theme=Crisp&url_state=1|*DIRAC.JobMonitor.classes.JobMonitor:,"


def webapp_job_url(job_id: int) -> str:
    """Where a person looks at the job in DIRAC's web portal; "" without DIRAC_WEBAPP_URL.

    WebAppDIRAC's Job Monitor takes no job id in its address: the link opens the Job Monitor,
    and the fragment carries the id to type into its JobID selector."""
    base = settings.DIRAC_WEBAPP_URL
    return f"{base}{JOB_MONITOR}#JobID={job_id}" if base else ""


@dataclass
class Row:
    job: JobInfo
    task: TaskInfo
    # The task's input files: (lfn, where it is now), those it holds now and those taken from it.
    lfns: list[tuple[str, str]] = field(default_factory=list)
    # Other jobs that had any of these files: {"task", "job", "site", "status", "minor_status", "when"}.
    earlier: list[dict] = field(default_factory=list)
    later: list[dict] = field(default_factory=list)
    webapp: str = ""


def options(jobs: list[JobInfo], attr: str, current: str) -> list[tuple[str, int]]:
    """The values a filter can take, with how many jobs have each (the current one kept)."""
    counts = Counter(getattr(j, attr) for j in jobs)
    if current and current not in counts:
        counts[current] = 0
    return sorted(counts.items())


def build_rows(tid: int, page_jobs: list[JobInfo], task_of_job: dict[int, TaskInfo], tasks: list[TaskInfo],
               jobs: dict[int, JobInfo], backend) -> list[Row]:
    """The page's rows with each task's input files and the retry chain of those files."""
    rows = [Row(j, task_of_job[j.id], webapp=webapp_job_url(j.id)) for j in page_jobs]
    wanted = {r.task.task for r in rows}
    if not wanted:
        return rows
    task_by_number = {t.task: t for t in tasks}
    # Files each task of the page has now in DIRAC, and what the engine recorded of it.
    now_files = [f for f in backend.files([tid]) if f.task in wanted]
    recorded = list(TaskFile.objects.filter(transformation_id=tid, task__in=wanted))
    lfns_of: dict[int, set[str]] = defaultdict(set)
    for f in now_files:
        lfns_of[f.task].add(f.lfn)
    for r in recorded:
        lfns_of[r.task].add(r.lfn)
    every_lfn = sorted({lfn for s in lfns_of.values() for lfn in s})
    # Where each of those files is now (its current task and status), and every task it was
    # taken from.
    current = {f.lfn: f for f in backend.files([tid], lfns=every_lfn)} if every_lfn else {}
    history: dict[str, list[TaskFile]] = defaultdict(list)
    for start in range(0, len(every_lfn), 500):
        for r in TaskFile.objects.filter(transformation_id=tid, lfn__in=every_lfn[start:start + 500]):
            history[r.lfn].append(r)
    for row in rows:
        own = row.task.task
        lfns = []
        others: dict[int, dict] = {}
        for lfn in sorted(lfns_of.get(own, ())):
            f = current.get(lfn)
            if f is None:
                where = "no longer in the transformation"
            elif f.task == own:
                where = f.status
            elif f.task is None:
                where = f"{f.status}, in no task now"
            else:
                where = f"{f.status}, now in task {f.task}"
            lfns.append((lfn, where))
            for h in history.get(lfn, ()):
                if h.task != own:
                    others.setdefault(h.task, _link(h.task, h.job, jobs, h))
            if f is not None and f.task is not None and f.task != own:
                t = task_by_number.get(f.task)
                others.setdefault(f.task, _link(f.task, t.job if t else 0, jobs, None))
        row.lfns = lfns
        row.earlier = [others[k] for k in sorted(others) if k < own]
        row.later = [others[k] for k in sorted(others) if k > own]
    return rows


def _link(task: int, job_id: int, jobs: dict[int, JobInfo], recorded: TaskFile | None) -> dict:
    """One link of a retry chain: the job as DIRAC shows it now, else as the engine recorded it."""
    job = jobs.get(job_id)
    out = {"task": task, "job": job_id, "site": "", "status": "", "minor_status": "",
           "when": recorded.recorded if recorded else None, "webapp": webapp_job_url(job_id) if job_id else ""}
    if job is not None:
        out.update(site=job.site, status=job.status, minor_status=job.minor_status)
    elif recorded is not None:
        out.update(site=recorded.site, status=recorded.status, minor_status=recorded.minor_status)
    return out


def _without(request, name: str) -> str:
    """This page's query string without one filter (and back to page 1)."""
    query = request.GET.copy()
    query.pop(name, None)
    query.pop("page", None)
    return "?" + query.urlencode()


@require_GET
@viewer_required
def transformation_jobs(request, tid: int):
    """The jobs now in DIRAC (a report row's, or any filter's), each with its files and retries."""
    state = get_state_or_404(tid)
    form = JobFilterForm(request.GET)
    form.is_valid()
    data = getattr(form, "cleaned_data", {})
    filters = {name: data[name] for name, _, _ in FILTERS if data.get(name)}
    task_filter = data.get("task")
    sort = data.get("sort") or "job"
    key = sort.lstrip("-")
    if key not in SORTS:
        sort, key = "job", "job"
    error = ""
    rows: list[Row] = []
    page = None
    facets = []
    try:
        backend = get_backend()
        tasks = backend.tasks([tid])
        task_of_job = {t.job: t for t in tasks if t.job}
        jobs = backend.jobs(list(task_of_job))
        all_jobs = [j for j in jobs.values() if j.id in task_of_job]
        matched = [
            Row(j, task_of_job[j.id]) for j in all_jobs
            if all(getattr(j, attr) == filters[name] for name, attr, _ in FILTERS if name in filters)
            and (task_filter is None or task_of_job[j.id].task == task_filter)
        ]
        matched.sort(key=SORTS[key], reverse=sort.startswith("-"))
        page = Paginator(matched, PAGE_SIZE).get_page(request.GET.get("page"))
        rows = build_rows(tid, [r.job for r in page.object_list], task_of_job, tasks, jobs, backend)
        facets = [(name, label, options(all_jobs, attr, filters.get(name, "")), filters.get(name, ""))
                  for name, attr, label in FILTERS]
    except FailoverError as exc:
        error = f"DIRAC could not be read: {exc}"
    # The report row these filters are (the transformation page's report links here with them).
    report_href = reverse("transformation", args=[tid]) + "#report"
    return render(request, "dashboard/jobs.html", {
        "state": state, "tid": tid, "form": form, "page": page, "rows": rows, "error": error, "sort": sort,
        "facets": facets,
        "filters": [(label, filters[name], _without(request, name)) for name, _, label in FILTERS if name in filters],
        "task_drop": _without(request, "task"),
        "task_filter": task_filter, "report_href": report_href,
        "all_href": reverse("transformation_jobs", args=[tid]),
        "webapp": bool(settings.DIRAC_WEBAPP_URL),
    }, status=502 if error else 200)
