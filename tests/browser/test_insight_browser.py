"""Insight in a real headless Chromium: the matrix, the site hint and the forecasts on the pages.

The pages are saved under var/screenshots/ as every browser test does; with
FAILOVER_DOCS_SCREENSHOTS=1 they are also copied to docs/screenshots/insight-*.png (the README's
pictures of these figures), so a plain test run leaves the checkout as it was.
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.utils import timezone
from selenium.webdriver.common.by import By

from tests.factories import BLACKHOLE, BLACKHOLE_TID, blackhole_scenario, load_scenario, run_cycle, seed_policy

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__", serialized_rollback=True)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def blackhole():
    """Three cycles an hour apart, the last just now: the black-hole site fails 60 % of its jobs."""
    seed_policy(reassign_types=[])
    start = timezone.now() - timedelta(hours=2)
    for i, final in enumerate((60, 80, 100)):
        with time_machine.travel(start + timedelta(hours=i), tick=False):
            load_scenario(blackhole_scenario(per_site=200, final=final))
            run_cycle(["sync"])


def keep(page, name: str) -> None:
    page.shot(name)
    if os.environ.get("FAILOVER_DOCS_SCREENSHOTS") != "1":
        return
    DOCS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(page.folder / f"{name}.png", DOCS / f"{name}.png")


def test_a_production_manager_sees_the_matrix_the_site_hint_and_the_forecasts(page, accounts, blackhole):
    page.open("/")
    page.login("vera")
    page.wait_for("table.overview tbody tr[data-id]")
    # The overview's forecast column, sortable.
    page.click("th.sortable a[href*='sort=forecast']", url="sort=forecast")
    cell = page.find(f"tr[data-id='{BLACKHOLE_TID}'] td.forecast .eta")
    assert cell.text.startswith(str(timezone.now().year))
    assert "site hint" in page.find(f"tr[data-id='{BLACKHOLE_TID}'] td.flags").text
    keep(page, "insight-overview")

    page.click(f"a[href='/transformations/{BLACKHOLE_TID}/']", shows="#signature-matrix")
    hint = page.find(".card-attention .attention-items li")
    assert "Site failing far more" in hint.text and f"site {BLACKHOLE} failed 60/100" in hint.text
    assert "for " in page.find(".card-attention .age").text
    assert page.find("#forecast .forecast-line").text.startswith("Expected done ")
    headers = [th.get_attribute("textContent").strip() for th in page.all("#signature-matrix thead th.site")]
    assert headers[0].startswith(BLACKHOLE)
    first = page.find("#signature-matrix tbody tr")
    assert first.find_element(By.CSS_SELECTOR, "td.signature").text.startswith(
        "Application Finished With Errors | Operation not permitted ( N :")
    link = first.find_element(By.CSS_SELECTOR, "td.cell a")
    assert link.text == "60"
    query = parse_qs(urlsplit(link.get_attribute("href")).query)
    assert query["site"] == [BLACKHOLE] and query["status"] == ["Failed"]
    keep(page, "insight-transformation")

    page.open("/productions/50/")
    page.wait_for("#site-hints")
    assert BLACKHOLE in page.find("#site-hints li.site-hint").text
    assert page.find("#forecast .forecast-line").text.startswith("Expected done ")
    assert page.find("#signature-matrix tbody tr td.cell a").text == "60"
    keep(page, "insight-production")

    page.open("/attention/?code=site_hint")
    page.wait_for("table.attention-table")
    assert "hour" in page.find("table.attention-table td.age").text
    keep(page, "insight-attention")
