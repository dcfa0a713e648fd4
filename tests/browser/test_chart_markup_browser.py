"""Grid strings with markup are drawn as text in every chart, in a real headless Chromium.

plotly.js reads labels, legend entries and hover text as a subset of HTML; a MinorStatus once
became a clickable link to another site in the failures chart, and a site name a 90px heading.
"""

from __future__ import annotations

import pytest
from selenium.webdriver.support.ui import WebDriverWait

from failover import rules
from tests.factories import chain_scenario, job, load_scenario, run_cycle, seed_policy

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__", serialized_rollback=True)

LINK = '<a href="https://evil.example/login">Re-login to DIRAC</a>'
HUGE = '<span style="font-size:90px">HUGE</span>'
BOLD_STATUS = "<b>Odd</b>"
PERCENT = "100%{y} sure"


@pytest.fixture
def hostile_production():
    seed_policy()
    data = chain_scenario()
    data["jobs"] = [job(100, "Done"),
                    job(101, "Failed", site=HUGE, minor=LINK),
                    job(102, "Killed", site="LCG.<i>x</i>.fr", minor=PERCENT),
                    job(103, BOLD_STATUS)]
    load_scenario(data)
    run_cycle([rules.SYNC])
    run_cycle([rules.SYNC])  # two stored cycles: the states chart has a line


def chart_texts(page, chart_id: str) -> str:
    return page.d.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0] + ' svg text'))"
        ".map(t => t.textContent).join('\\n')", f".chart[data-chart='{chart_id}']")


def hover_text(page, chart_id: str, curve: int) -> str:
    """Hover the first point of a trace (plotly's own API) and read the hover label."""
    page.d.execute_script(
        "var el = document.querySelector(arguments[0]); Plotly.Fx.unhover(el);", f".chart[data-chart='{chart_id}']")
    WebDriverWait(page.d, 10).until(lambda d: not d.execute_script(
        "return document.querySelectorAll(arguments[0] + ' .hoverlayer text').length",
        f".chart[data-chart='{chart_id}']"))
    page.d.execute_script(
        "var el = document.querySelector(arguments[0]); var point = el.data[arguments[1]].y.findIndex(v => v > 0);"
        "Plotly.Fx.hover(el, [{curveNumber: arguments[1], pointNumber: point}]);",
        f".chart[data-chart='{chart_id}']", curve)
    WebDriverWait(page.d, 10).until(lambda d: d.execute_script(
        "return document.querySelectorAll(arguments[0] + ' .hoverlayer text').length",
        f".chart[data-chart='{chart_id}']"))
    return page.d.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0] + ' .hoverlayer text'))"
        ".map(t => t.textContent).join('\\n')", f".chart[data-chart='{chart_id}']")


def test_markup_from_the_grid_is_text_in_every_chart(page, accounts, hostile_production):
    page.login("vera")
    page.open("/transformations/4847/")
    for chart in ("chart-states-data", "chart-failures-data"):
        page.wait_for(f".chart[data-chart='{chart}'] .main-svg")
    page.shot("transformation-hostile-markup")
    d = page.d
    # No link, and no element styled by the grid, anywhere in a chart.
    assert d.execute_script("return document.querySelectorAll('.chart a').length") == 0
    sizes = d.execute_script(
        "return Array.from(document.querySelectorAll('.chart text, .chart tspan'))"
        ".map(t => parseFloat(getComputedStyle(t).fontSize))")
    assert sizes and max(sizes) < 30, max(sizes)
    failures = chart_texts(page, "chart-failures-data")
    states = chart_texts(page, "chart-states-data")
    # The markup is shown literally: in the failures chart's legend and site axis...
    assert f"Failed: {LINK}" in failures and f"Killed: {PERCENT}" in failures
    assert HUGE in failures and "LCG.<i>x</i>.fr" in failures
    # ... and in the states chart's legend (a job status).
    assert BOLD_STATUS in states
    # Hover labels too; "%{y}" in the grid's text is not a placeholder.
    names = d.execute_script("return document.querySelector(\".chart[data-chart='chart-failures-data']\")"
                             ".data.map(t => t.name)")
    link_trace = next(i for i, n in enumerate(names) if "Re-login" in n)
    percent_trace = next(i for i, n in enumerate(names) if "sure" in n)
    assert LINK in hover_text(page, "chart-failures-data", link_trace)
    assert PERCENT in hover_text(page, "chart-failures-data", percent_trace)
    assert d.execute_script("return document.querySelectorAll('.chart a').length") == 0
    status_names = d.execute_script("return document.querySelector(\".chart[data-chart='chart-states-data']\")"
                                    ".data.map(t => t.name)")
    odd = next(i for i, n in enumerate(status_names) if "Odd" in n)
    assert BOLD_STATUS in hover_text(page, "chart-states-data", odd)
    assert d.execute_script("return document.querySelectorAll('.chart b, .chart a').length") == 0
