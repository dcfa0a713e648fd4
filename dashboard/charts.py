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
from reports.colours import STATUS_COLOURS, minor_colour, status_colour, status_key
from reports.stores import StoredAggregates

# The colours are reports/colours.py's, the same on every chart, the report table and the digests.
__all__ = ["STATUS_COLOURS", "failures_by_site", "plotly_text", "states_over_time", "status_key"]
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
            "line": {"width": 0.5, "color": status_colour(status)},
            "fillcolor": status_colour(status),
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
    by_minor: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in failed:
        by_minor[(r.status, r.minor_status)][r.site] += r.count
    # Biggest first (ties by name), each pair in its own colour whatever its rank.
    ordered = sorted(by_minor.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    data = [
        {
            "type": "bar",
            "name": plotly_text(f"{status}: {minor}"),
            "x": [plotly_text(site) for site in sites],
            "y": [counts.get(site, 0) for site in sites],
            "marker": {"color": minor_colour(status, minor)},
            "hovertemplate": f"{_template_text(f'{status}: {minor}')}<br>%{{x}}: %{{y}}<extra></extra>",
        }
        for (status, minor), counts in ordered
    ]
    layout = {**_LAYOUT, "barmode": "stack", "hovermode": "closest", "yaxis": {"title": {"text": "jobs"}}}
    return {"data": data, "layout": layout}
