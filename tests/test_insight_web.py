"""Insight on the pages and in the API, after real engine cycles on the simulated DIRAC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from failover.models import TransformationState
from tests.factories import BLACKHOLE, BLACKHOLE_TID, blackhole_scenario, load_scenario, run_cycle, seed_policy

pytestmark = pytest.mark.django_db(databases="__all__")

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SIGNATURE = ("Application Finished With Errors | "
             "Operation not permitted ( N : cta-prod-setup-software Exited With Status N)")


@pytest.fixture
def blackhole(time_machine):
    """Three cycles an hour apart while jobs finish: the black-hole site fails 60 % of them."""
    seed_policy(reassign_types=[])
    for i, final in enumerate((60, 80, 100)):
        time_machine.move_to(T0 + timedelta(hours=i), tick=False)
        load_scenario(blackhole_scenario(per_site=200, final=final))
        run_cycle(["sync"])
    return TransformationState.objects.get(pk=BLACKHOLE_TID)


def test_the_transformation_page_shows_the_matrix_linked_to_the_jobs_the_hint_and_the_forecast(viewer_client,
                                                                                               blackhole):
    html = unescape(viewer_client.get(reverse("transformation", args=[BLACKHOLE_TID])).content.decode())
    assert "Failures by signature and site" in html and SIGNATURE in html
    matrix = html[html.index('id="signature-matrix"'):]
    matrix = matrix[:matrix.index("</table>")]
    link = next(part.split('"', 1)[0] for part in matrix.split('href="')[1:]
                if part.startswith(f"/transformations/{BLACKHOLE_TID}/jobs/?") and BLACKHOLE in part.split('"')[0])
    query = parse_qs(urlsplit(link).query)
    assert query["status"] == ["Failed"] and query["site"] == [BLACKHOLE]
    assert query["minor_status"] == ["Application Finished With Errors"]
    assert query["application_status"][0].startswith("Operation not permitted (")
    assert "Site failing far more" in html and f"site {BLACKHOLE} failed 60/100" in html
    assert "Expected done " in html and blackhole.eta is not None
    assert f"Expected done {blackhole.eta:%Y-%m-%d %H:%M} UTC" in html


def test_the_api_gives_the_forecast_the_matrix_and_the_hint_as_data(viewer_client, blackhole):
    data = viewer_client.get(reverse("api_transformation_insight", args=[BLACKHOLE_TID])).json()
    assert data["forecast"]["basis"] == "forecast"
    assert data["forecast"]["eta"].startswith(f"{blackhole.eta:%Y-%m-%dT%H:%M}")
    sites = data["signatures"]["sites"]
    assert sites[0]["site"] == BLACKHOLE and sites[0]["failed"] == 60 and sites[0]["finished"] == 100
    top = data["signatures"]["signatures"][0]
    assert top["signature"] == SIGNATURE and top["sites"][BLACKHOLE]["count"] == 60
    assert top["sites"][BLACKHOLE]["filters"]["site"] == BLACKHOLE and top["sites"][BLACKHOLE]["variants"] == 3
    (hint,) = [a for a in data["alerts"] if a["code"] == "site_hint"]
    assert hint["details"]["site"] == BLACKHOLE and hint["details"]["rest_total"] == 300
    assert hint["since"].startswith("2026-03-01T12:00")
    assert viewer_client.get(reverse("api_transformation_insight", args=[999])).status_code == 404


def test_the_production_page_and_api_show_its_last_steps_forecast_and_the_site_across_steps(viewer_client,
                                                                                            blackhole):
    html = unescape(viewer_client.get(reverse("production", args=[50])).content.decode())
    assert "Completion forecast" in html and f"Expected done {blackhole.eta:%Y-%m-%d %H:%M} UTC" in html
    assert "Across the steps" in html and BLACKHOLE in html and "Failures by signature and site, all steps" in html
    data = viewer_client.get(reverse("api_production_insight", args=[50])).json()
    assert data["forecast"]["step"] == BLACKHOLE_TID
    assert [h["site"] for h in data["site_hints"]] == [BLACKHOLE]
    assert data["site_hints"][0]["steps"] == [{"transformation": BLACKHOLE_TID, "failed": 60}]
    assert viewer_client.get(reverse("api_production_insight", args=[51])).status_code == 404


def test_the_overview_sorts_by_forecast_and_the_attention_list_shows_ages(viewer_client, blackhole, time_machine):
    TransformationState.objects.create(transformation_id=1, name="no basis yet", status="Active",
                                       eta_basis="no_basis", eta_note="no basis: 1 of 3 cycles needed in the last 24 h")
    TransformationState.objects.create(transformation_id=2, name="soon", status="Active", eta=T0,
                                       eta_low=T0, eta_high=T0, eta_basis="forecast")
    page = viewer_client.get(reverse("overview"), {"sort": "forecast"}).content.decode()
    assert page.index('data-id="2"') < page.index(f'data-id="{BLACKHOLE_TID}"') < page.index('data-id="1"')
    assert "no basis: 1 of 3 cycles" in page
    page = viewer_client.get(reverse("overview"), {"sort": "-forecast"}).content.decode()
    assert page.index(f'data-id="{BLACKHOLE_TID}"') < page.index('data-id="2"') < page.index('data-id="1"')
    time_machine.move_to(T0 + timedelta(hours=5), tick=False)
    html = unescape(viewer_client.get(reverse("attention"), {"code": "site_hint"}).content.decode())
    assert "Site failing far more" in html and "5\xa0hours" in html
