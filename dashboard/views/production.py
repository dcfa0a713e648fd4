"""``/productions/<id>/``: a production's chain of steps, parent to child, drawn as a graph."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Paginator
from django.db.models import Count, Max, Min, Sum
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard.views.access import get_production_or_404, viewer_required
from dashboard.views.insight import production_insight
from failover import attention
from failover.domain import FINAL_TASK_STATUSES, FINAL_TRANSFORMATION_STATUSES
from failover.models import TransformationState

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
    return (f"running: {running} job{'s' if running != 1 else ''} not finished" if running else "no blocker"), "ok"


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


@require_GET
@viewer_required
def productions(request):
    qs = (
        TransformationState.objects.exclude(production_id=None).values("production_id")
        .annotate(steps=Count("transformation_id"), first=Min("transformation_id"), last=Max("transformation_id"),
                  files=Sum("files_total"), processed=Sum("files_processed"), jobs=Sum("jobs_total"),
                  failed=Sum("jobs_failed"))
        .order_by("-production_id")
    )
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(request, "dashboard/productions.html", {"page": page})
