"""Every text of a chart figure that comes from the grid is escaped for plotly (no raw markup)."""

from __future__ import annotations

from datetime import datetime, timezone

from dashboard import charts
from reports.aggregation import AggregateRow
from reports.stores import StoredAggregates

MARKUP = ['<a href="https://evil.example/login">Re-login</a>', '<span style="font-size:90px">x</span>', "a&b<br>c",
          "%{y}"]


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from strings(v)


def rows():
    return [AggregateRow(status=s, minor_status=m, application_status=m, site=m, count=1)
            for s in ("Failed", "Killed", MARKUP[0]) for m in MARKUP]


def test_no_grid_markup_reaches_a_figure():
    snap = StoredAggregates(cycle_id=1, timestamp=datetime(2026, 1, 1, tzinfo=timezone.utc), transformation_id=7,
                            rows=rows())
    for figure in (charts.failures_by_site(rows()), charts.states_over_time([snap])):
        trace_text = [s for trace in figure["data"] for key in ("name", "x") for s in strings(trace.get(key))]
        assert trace_text
        for text in trace_text:
            assert "<" not in text and ">" not in text, text
        for trace in figure["data"]:
            template = trace["hovertemplate"].removesuffix("<extra></extra>")
            assert "<a" not in template and "<span" not in template and "%{y}" not in template.split(":")[0]


def test_plotly_text_keeps_the_value_readable():
    assert charts.plotly_text("<b>Odd & co</b>") == "&lt;b&gt;Odd &amp; co&lt;/b&gt;"
    assert charts.plotly_text("Execution Complete") == "Execution Complete"
