"""Stable colours: one mapping (reports/colours.py) from status and minor status to colour, the
same on two transformations, in every chart, the report table and the digests."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from django.urls import reverse

from dashboard import charts
from reports import colours
from reports.aggregation import AggregateRow, build_report
from reports.digests.rendering import report_html_rows
from reports.stores import StoredAggregates

APP_ERRORS = ("Failed", "Application Finished With Errors")
KILL = ("Killed", "Received Kill signal")
STALLED = ("Failed", "Job stalled: pilot not running")


def row(pair, site, n):
    return AggregateRow(status=pair[0], minor_status=pair[1], application_status="Unknown", site=site, count=n)


# 4846: most failures are application errors; 4849: most are kills, and another minor status comes first.
T4846 = [row(APP_ERRORS, "LCG.CSCS.ch", 40), row(KILL, "LCG.CSCS.ch", 3), row(("Done", "Execution Complete"), "x", 9)]
T4849 = [row(STALLED, "LCG.DESY.de", 50), row(KILL, "LCG.DESY.de", 30), row(APP_ERRORS, "LCG.PIC.es", 1),
         row(("Running", "Application"), "y", 5)]


def bar_colours(rows) -> dict[str, str]:
    return {trace["name"]: trace["marker"]["color"] for trace in charts.failures_by_site(rows)["data"]}


def test_the_same_minor_status_has_the_same_colour_on_two_transformations():
    a, b = bar_colours(T4846), bar_colours(T4849)
    for pair in (APP_ERRORS, KILL):
        name = f"{pair[0]}: {pair[1]}"
        assert a[name] == b[name] == colours.minor_colour(*pair)
    # The finding: one colour meant two different things on two transformations. Not any more.
    assert a["Failed: Application Finished With Errors"] != a["Killed: Received Kill signal"]
    assert len(set(b.values())) == 3


def test_the_same_status_has_the_same_colour_in_the_states_chart_of_two_transformations():
    def area_colours(rows) -> dict[str, str]:
        snap = StoredAggregates(cycle_id=1, timestamp=datetime(2026, 1, 1, tzinfo=timezone.utc), transformation_id=1,
                                rows=rows)
        return {t["name"]: t["line"]["color"] for t in charts.states_over_time([snap])["data"]}

    a, b = area_colours(T4846), area_colours(T4849)
    assert a["Failed"] == b["Failed"] == colours.STATUS_COLOURS["Failed"]
    assert a["Killed"] == b["Killed"] == colours.STATUS_COLOURS["Killed"]
    assert area_colours([row(("Mystery", "?"), "z", 1)])["Mystery"] == colours.OTHER_STATUS


def test_a_minor_status_colour_is_the_same_in_another_process():
    """A hash, but not Python's per-process one: another interpreter gives the same colour."""
    code = "from reports.colours import minor_colour; print(minor_colour('Killed', 'Received Kill signal'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": ""}, cwd=colours.__file__.rsplit("/reports/", 1)[0])
    assert out.stdout.strip() == colours.minor_colour(*KILL)


def test_the_report_table_and_the_digest_use_the_charts_colours():
    rows = build_report(4849, T4849).table_rows()
    by_kind = {(r["kind"], r["status"], r["minor_status"]): r for r in rows}
    assert by_kind[("status", "Total: Killed", "-")]["colour"] == colours.STATUS_COLOURS["Killed"]
    assert by_kind[("minor", "Killed", "Total: Received Kill signal")]["minor_colour"] == colours.minor_colour(*KILL)
    cells = report_html_rows(rows)
    swatches = [c.swatch for line in cells for c in line if c.swatch]
    assert any(colours.minor_colour(*KILL) in s for s in swatches)
    assert any(colours.STATUS_COLOURS["Killed"] in s for s in swatches)


@pytest.mark.django_db(databases="__all__")
def test_two_transformation_pages_draw_a_minor_status_in_one_colour(viewer_client):
    from failover.models import Cycle, TransformationState
    from reports.stores import SnapshotMeta, SqlAggregateStore

    cycle = Cycle.objects.create(state="finished")
    store = SqlAggregateStore()
    figures = {}
    for tid, rows in ((4846, T4846), (4849, T4849)):
        TransformationState.objects.create(transformation_id=tid, name=f"t{tid}", status="Active", type="Merging")
        store.write(cycle.pk, cycle.started, SnapshotMeta(tid, None, "Merging"), rows)
        page = viewer_client.get(reverse("transformation", args=[tid])).content.decode()
        data = re.search(r'<script id="chart-failures-data" type="application/json">(.*?)</script>', page, re.S)
        figures[tid] = {t["name"]: t["marker"]["color"] for t in json.loads(data.group(1))["data"]}
        # The report table's swatch of the minor status is the chart's colour.
        assert f'style="background:{colours.minor_colour(*KILL)}"' in page
    assert figures[4846]["Killed: Received Kill signal"] == figures[4849]["Killed: Received Kill signal"]
    assert figures[4846]["Failed: Application Finished With Errors"] == \
        figures[4849]["Failed: Application Finished With Errors"]


def test_dirac_s_common_failure_minor_statuses_never_share_a_colour():
    assert len(set(colours.KNOWN_MINORS.values())) == len(colours.KNOWN_MINORS)
    assert set(colours.KNOWN_MINORS.values()) <= set(colours.MINOR_PALETTE)
    # None of them looks like progress (the greens of Done, the blues of Running).
    progress = {colours.STATUS_COLOURS[s] for s in ("Done", "Completed", "Running", "Waiting", "Matched")}
    assert not progress & set(colours.MINOR_PALETTE)
