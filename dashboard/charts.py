"""Plotly figures as plain dicts (data + layout), drawn in the page by the locally served plotly.js.

Every text from the grid goes through :func:`plotly_text` (plotly reads labels as HTML).

Built by hand rather than with plotly's Python objects: a figure is a few small lists, and this
keeps the transformation page fast (no validation of every attribute on each request).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from failover.domain import FAILED_TASK_STATUSES
from reports.aggregation import AggregateRow
from reports.stores import StoredAggregates

# One colour per job status, the same on every chart and chip (see static/css/dashboard.css).
STATUS_COLOURS = {
    "Done": "#2e8540",
    "Completed": "#4aa564",
    "Running": "#1f6fb2",
    "Waiting": "#8fb8de",
    "Matched": "#6aa1d1",
    "Received": "#b9cfe4",
    "Checking": "#b9cfe4",
    "Staging": "#a7a7d6",
    "Stalled": "#d9822b",
    "Rescheduled": "#e0b44c",
    "Failed": "#c0392b",
    "Killed": "#7d3c98",
    "Deleted": "#7f8c8d",
}
STATUS_ORDER = list(STATUS_COLOURS)
PALETTE = ("#c0392b", "#e67e22", "#7d3c98", "#d35400", "#a93226", "#9b59b6", "#af7ac5", "#f1948a")
FAILED = FAILED_TASK_STATUSES
_LAYOUT = {
    "margin": {"l": 50, "r": 10, "t": 10, "b": 40},
    "height": 300,
    "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12, "color": "#24292f"},
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "legend": {"orientation": "h", "y": -0.2},
    "hovermode": "x unified",
}


def plotly_text(text: str) -> str:
    """Grid text (a status, a minor status, a site) as plotly shows it: literally.

    plotly.js reads labels, legend names and hover text as a subset of HTML (<a href>, <span
    style>, <br>, ...): a MinorStatus "<a href=...>Re-login</a>" would be a link in our page.
    It splits on tags first and decodes entities in the text between them, so escaping <, > and &
    makes any markup plain text; the entity for % keeps a hovertemplate from reading "%{...}" in
    the grid's text as a placeholder.
    """
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _template_text(text: str) -> str:
    return plotly_text(text).replace("%", "&#37;")


def status_key(status: str) -> tuple[int, str]:
    return (STATUS_ORDER.index(status) if status in STATUS_ORDER else len(STATUS_ORDER), status)


def states_over_time(series: Sequence[StoredAggregates]) -> dict | None:
    """Stacked area of jobs by status, one point per stored cycle."""
    if not series:
        return None
    by_status: dict[str, list[int]] = defaultdict(lambda: [0] * len(series))
    for i, snap in enumerate(series):
        for row in snap.rows:
            by_status[row.status][i] += row.count
    x = [snap.timestamp.isoformat() for snap in series]
    cycles = [snap.cycle_id for snap in series]
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": plotly_text(status),
            "x": x,
            "y": counts,
            "customdata": cycles,
            "stackgroup": "jobs",
            "line": {"width": 0.5, "color": STATUS_COLOURS.get(status, "#95a5a6")},
            "hovertemplate": f"{_template_text(status)}: %{{y}} (cycle %{{customdata}})<extra></extra>",
        }
        for status, counts in sorted(by_status.items(), key=lambda kv: status_key(kv[0]))
    ]
    layout = {**_LAYOUT, "yaxis": {"title": {"text": "jobs"}, "rangemode": "tozero"}, "xaxis": {"type": "date"}}
    return {"data": data, "layout": layout}


def failures_by_site(rows: Sequence[AggregateRow]) -> dict | None:
    """Failed and Killed jobs per site, stacked by minor status."""
    failed = [r for r in rows if r.status in FAILED]
    if not failed:
        return None
    sites = sorted({r.site for r in failed})
    by_minor: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in failed:
        by_minor[f"{r.status}: {r.minor_status}"][r.site] += r.count
    data = [
        {
            "type": "bar",
            "name": plotly_text(minor),
            "x": [plotly_text(site) for site in sites],
            "y": [counts.get(site, 0) for site in sites],
            "marker": {"color": PALETTE[i % len(PALETTE)]},
            "hovertemplate": f"{_template_text(minor)}<br>%{{x}}: %{{y}}<extra></extra>",
        }
        for i, (minor, counts) in enumerate(sorted(by_minor.items(), key=lambda kv: -sum(kv[1].values())))
    ]
    layout = {**_LAYOUT, "barmode": "stack", "hovermode": "closest", "yaxis": {"title": {"text": "jobs"}}}
    return {"data": data, "layout": layout}
