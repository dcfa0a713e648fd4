"""``/productions/``: every production, sortable and searchable; ``/productions/<id>/``: its chain of steps,
parent to child, drawn as a graph."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Paginator
from django.db.models import Count, F, FloatField, IntegerField, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Cast, Coalesce
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard import pagecache
from dashboard.forms import ProductionFilterForm
from dashboard.ids import parse_id
from dashboard.views.access import get_production_or_404, viewer_required
from dashboard.views.insight import production_insight
from failover import attention
from failover.backends import get_backend
from failover.blockers import WAITING
from failover.domain import FINAL_TASK_STATUSES, FINAL_TRANSFORMATION_STATUSES
from failover.errors import FailoverError
from failover.models import ActionLog, BlockerRecord, TransformationState
from failover.outcomes import count

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 270, 128, 64, 24, 12


@dataclass
class Step:
    state: TransformationState
    depth: int
    row: int
    blocker: str
    tone: str  # ok, wait, problem, done
    items: list

    @property
    def short(self) -> str:
        """The blocker in a few words, for the graph's box (the table has the full text)."""
        if self.tone == "problem":
            return self.items[0].title
        return self.blocker
    @property
    def x(self) -> int:
        return PAD + self.depth * (BOX_W + GAP_X)

    @property
    def y(self) -> int:
        return PAD + self.row * (BOX_H + GAP_Y)

    @property
    def bar(self) -> int:
        return round((BOX_W - 28) * self.state.progress / 100)


def blocker_in_words(state: TransformationState, items: list[attention.Item]) -> tuple[str, str]:
    """(what holds this step, tone): the first problem, else the parent it waits for, else progress."""
    if items:
        return items[0].text, "problem"
    parent = attention.waiting_for(state)
    if parent is not None:
        return f"waiting for {parent} to complete", "wait"
    if state.status in FINAL_TRANSFORMATION_STATUSES:
        return state.status.lower(), "done"
    if state.files_total and state.files_processed == state.files_total:
        return "all files processed", "done"
    if state.status != "Active":
        return f"status {state.status}", "wait"
    running = sum(n for s, n in (state.jobs or {}).items() if s not in FINAL_TASK_STATUSES)
    return (f"running: {count(running, 'job')} not finished" if running else "no blocker"), "ok"


def layout(steps: list[TransformationState]) -> list[Step]:
    """Steps by depth (columns) from the production's roots; siblings stacked in rows."""
    by_id = {s.transformation_id: s for s in steps}
    depth: dict[int, int] = {}

    def level(s: TransformationState, seen=()) -> int:
        if s.transformation_id in depth:
            return depth[s.transformation_id]
        parent = by_id.get(s.parent_id)
        d = 0 if parent is None or parent.transformation_id in seen else level(parent, (*seen, s.transformation_id)) + 1
        depth[s.transformation_id] = d
        return d

    items = attention.items_for(steps)
    rows_used: dict[int, int] = {}
    out = []
    for s in sorted(steps, key=lambda s: (level(s), s.transformation_id)):
        d = level(s)
        row = rows_used.get(d, 0)
        rows_used[d] = row + 1
        its = items.get(s.transformation_id, [])
        text, tone = blocker_in_words(s, its)
        out.append(Step(s, d, row, text, tone, its))
    return out


@require_GET
@viewer_required
def production(request, pid: int):
    states = get_production_or_404(pid)
    steps = layout(states)
    by_id = {s.state.transformation_id: s for s in steps}
    edges = []
    for s in steps:
        parent = by_id.get(s.state.parent_id)
        if parent is not None:
            x1, y1 = parent.x + BOX_W, parent.y + BOX_H // 2
            x2, y2 = s.x, s.y + BOX_H // 2
            mid = (x1 + x2) // 2
            edges.append(f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2 - 6},{y2}")
    width = PAD * 2 + (max(s.depth for s in steps) + 1) * (BOX_W + GAP_X) - GAP_X
    height = PAD * 2 + max(s.row + 1 for s in steps) * (BOX_H + GAP_Y) - GAP_Y
    return render(request, "dashboard/production.html", {
        "pid": pid, "steps": steps, "edges": edges, "width": width, "height": height,
        "box_w": BOX_W, "box_h": BOX_H, **production_insight(states),
    })


# The list shows the productions' names and statuses as DIRAC has them now: a kept list (the
# whole-page cache, dashboard/pagecache.py) asks DIRAC again after this many seconds.
PRODUCTION_NAMES_SECONDS = 60

# Sort keys of the productions list's column headers -> the annotation to order by (ties by id).
PRODUCTION_SORTS = {
    "id": "production_id",
    "steps": "steps",
    "progress": "done_share",
    "jobs": "jobs",
    "failed": "failed",
    "attention": "attention",
}


def production_rows(steps_of: dict[int, list[TransformationState]], names: dict[int, dict]) -> dict[int, dict]:
    """Per production on the page: its name and status, and each step's progress and attention."""
    states = [s for steps in steps_of.values() for s in steps]
    items = attention.items_for(states)
    out = {}
    for pid, steps in steps_of.items():
        steps = sorted(steps, key=lambda s: s.transformation_id)
        final = sum(1 for s in steps if s.status in FINAL_TRANSFORMATION_STATUSES)
        info = names.get(pid) or {}
        status = info.get("status") or ("Completed" if final == len(steps) else "Active")
        by_code: dict[str, int] = {}
        for s in steps:
            for item in items.get(s.transformation_id, []):
                by_code[item.title] = by_code.get(item.title, 0) + 1
        last = steps[-1] if steps else None
        out[pid] = {
            "name": info.get("name") or (steps[0].name if steps else ""),
            "status": status,
            "final": final,
            "step_states": steps,
            # What a person means by "how far is it": the last step's files, once it has any;
            # until then, the first step's.
            "headline": last if last is not None and last.files_total else (steps[0] if steps else None),
            "attention": sorted(by_code.items()),
            "attention_total": sum(by_code.values()),
        }
    return out


def production_names(ids: list[int]) -> tuple[dict[int, dict], str]:
    """Names and statuses of productions from DIRAC, for the adapters that can read them."""
    if not ids:
        return {}, ""
    try:
        backend = get_backend()
        read = getattr(backend, "production_info", None)
        return (read(ids) if read else {}), ""
    except FailoverError as exc:
        return {}, f"DIRAC could not be read for the productions' names: {exc}"


@require_GET
@viewer_required
@pagecache.whole_page("productions", seconds=PRODUCTION_NAMES_SECONDS)
def productions(request):
    form = ProductionFilterForm(request.GET or None)
    form.is_valid()
    data = getattr(form, "cleaned_data", {})
    sort = data.get("sort") or "-id"
    key = sort.lstrip("-")
    if key not in PRODUCTION_SORTS:
        sort, key = "-id", "id"
    states = TransformationState.objects.exclude(production_id=None)
    q = (data.get("q") or "").strip()
    if q:
        match = Q(name__icontains=q)
        try:
            match |= Q(production_id=parse_id(q))
        except ValueError:
            pass  # not an id: the search is by step name only
        states = states.filter(production_id__in=states.filter(match).values("production_id"))
    blockers_of_step = (
        BlockerRecord.objects.filter(transformation_id=OuterRef("transformation_id")).exclude(code=WAITING)
        .values("transformation_id").annotate(n=Count("id")).values("n")
    )
    proposals_of_step = (
        ActionLog.objects.filter(transformation_id=OuterRef("transformation_id"), state=ActionLog.State.PROPOSED)
        .values("transformation_id").annotate(n=Count("id")).values("n")
    )
    qs = (
        states.values("production_id")
        .annotate(steps=Count("transformation_id"), files=Sum("files_total"), jobs=Sum("jobs_total"),
                  failed=Sum("jobs_failed"),
                  final=Count("transformation_id", filter=Q(status__in=FINAL_TRANSFORMATION_STATUSES)),
                  attention=Sum(Coalesce(Subquery(blockers_of_step, output_field=IntegerField()), 0)
                                + Coalesce(Subquery(proposals_of_step, output_field=IntegerField()), 0)))
        .annotate(done_share=Cast(F("final"), FloatField()) / Cast(F("steps"), FloatField()))
    )
    field = PRODUCTION_SORTS[key]
    order = F(field).desc(nulls_last=True) if sort.startswith("-") else F(field).asc(nulls_last=True)
    qs = qs.order_by(order, "-production_id")
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    pids = [p["production_id"] for p in page.object_list]
    steps_of: dict[int, list[TransformationState]] = {pid: [] for pid in pids}
    for s in TransformationState.objects.filter(production_id__in=pids).order_by("transformation_id"):
        steps_of[s.production_id].append(s)
    names, names_error = production_names(pids)
    rows = production_rows(steps_of, names)
    response = render(request, "dashboard/productions.html", {
        "page": page, "form": form, "sort": sort, "names_error": names_error,
        "rows": [{**p, **rows[p["production_id"]]} for p in page.object_list],
        "filtered": bool(q),
    })
    response.no_page_cache = bool(names_error)  # DIRAC did not answer: the next request asks again
    return response
