"""Insight on the pages and in the API, composed from what is stored (no DIRAC call).

The matrix comes from the stored aggregates (``reports/insight.py``), the forecast from the row the
cycle wrote (``failover/history.py``), the site hints and alerts are attention items (the engine
made them). The two API views (Django REST framework) with their URLs in dashboard/urls.py:
``/api/transformations/<id>/insight/`` and ``/api/productions/<id>/insight/``.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.urls import reverse
from django.utils.http import urlencode
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from dashboard.api import TID, ReadOnlyView, _errors
from dashboard.views.access import get_production_or_404, get_state_or_404
from failover import attention, history
from failover.blockers import INSIGHT_CODES
from failover.errors import FailoverError
from failover.models import TransformationState
from reports import insight as report_insight
from reports.stores import get_store

MATRIX_SIGNATURES = 15


def cell_href(cell: report_insight.Cell) -> str:
    """The jobs drill-down of the cell's transformation, filtered by the cell's main combination."""
    base = reverse("transformation_jobs", args=[cell.transformation_id])
    return f"{base}?{urlencode(cell.filters)}"


def matrix_view(matrix: report_insight.Matrix) -> dict:
    """The matrix for a template: rows of (signature, count, share, [cell dict or None])."""
    rows = []
    for r in matrix.rows:
        cells = [None if c is None else {"count": c.count, "share": c.share, "href": cell_href(c),
                                         "variants": c.variants, "filters": c.filters} for c in r.cells]
        rows.append({"signature": r.signature, "count": r.count, "share": r.share, "cells": cells})
    return {"sites": list(zip(matrix.sites, matrix.site_failed, matrix.site_total, matrix.site_share, strict=True)),
            "rows": rows, "failed": matrix.failed, "more": None}


def _rows_of(ids: Sequence[int]) -> tuple[dict[int, list], str]:
    store = get_store()
    out = {}
    try:
        for tid in ids:
            snap = store.latest(tid)
            if snap is not None:
                out[tid] = snap.rows
    except FailoverError as exc:
        return out, str(exc)
    return out, ""


def transformation_insight(state: TransformationState, rows=None) -> dict:
    """The transformation page's insight: its matrix (from ``rows``, the report's stored rows) and forecast."""
    error = ""
    if rows is None:
        by_t, error = _rows_of([state.transformation_id])
        rows = by_t.get(state.transformation_id, [])
    matrix = report_insight.signature_matrix({state.transformation_id: rows}, limit=MATRIX_SIGNATURES)
    return {"matrix": matrix_view(matrix), "matrix_data": matrix, "forecast": history.forecast_of(state),
            "insight_error": error}


def production_insight(steps: Sequence[TransformationState]) -> dict:
    ids = [s.transformation_id for s in steps]
    by_t, error = _rows_of(ids)
    matrix = report_insight.signature_matrix(by_t, limit=MATRIX_SIGNATURES)
    hints = report_insight.production_site_hints(by_t, history.insight_settings())
    forecast, last_step = history.production_forecast(steps)
    items = attention.items_for(list(steps))
    step_hints = [i for s in steps for i in items.get(s.transformation_id, []) if i.code in INSIGHT_CODES]
    return {"matrix": matrix_view(matrix), "matrix_data": matrix, "site_hints": hints, "forecast": forecast,
            "forecast_step": last_step, "insight_items": step_hints, "insight_error": error}


def _forecast_json(f) -> dict:
    return f.as_dict()


class TransformationInsight(ReadOnlyView):
    @extend_schema(operation_id="getTransformationInsight",
                   summary="A transformation's forecast, failure signatures by site and insight alerts",
                   parameters=[TID], responses={200: OpenApiTypes.OBJECT, **_errors(404, 502)})
    def get(self, request, tid: int):
        state = get_state_or_404(tid)
        data = transformation_insight(state)
        items = attention.items_for([state]).get(tid, [])
        return Response({
            "id": tid,
            "forecast": _forecast_json(data["forecast"]),
            "signatures": data["matrix_data"].as_json(),
            "alerts": [i.as_dict() for i in items if i.code in INSIGHT_CODES],
            "error": data["insight_error"] or None,
        })


PID = OpenApiParameter("pid", OpenApiTypes.INT, OpenApiParameter.PATH, description="production id")


class ProductionInsight(ReadOnlyView):
    @extend_schema(operation_id="getProductionInsight",
                   summary="A production's forecast (its last step's), signatures by site over its steps "
                           "and site hints",
                   parameters=[PID], responses={200: OpenApiTypes.OBJECT, **_errors(404, 502)})
    def get(self, request, pid: int):
        steps = get_production_or_404(pid)
        data = production_insight(steps)
        return Response({
            "id": pid,
            "forecast": {**_forecast_json(data["forecast"]), "step": data["forecast_step"]},
            "signatures": data["matrix_data"].as_json(),
            "site_hints": [h.as_json() for h in data["site_hints"]],
            "alerts": [i.as_dict() for i in data["insight_items"]],
            "error": data["insight_error"] or None,
        })
