"""The jobs drill-down in headless Chromium: from a report row to its jobs, filters, sort, and back."""

from __future__ import annotations

import pytest
from selenium.webdriver.support.ui import Select

from tests.factories import load_scenario, run_cycle, seed_policy
from tests.test_views_jobs import many_jobs

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__", serialized_rollback=True)


@pytest.fixture
def many():
    """Transformation 5000: 120 jobs over three sites, a quarter of them Failed (tests/test_views_jobs.py)."""
    seed_policy()
    load_scenario(many_jobs())
    run_cycle(["sync"])


def job_ids(page) -> list[str]:
    return [i.removeprefix("job-") for i in page.attributes("table.jobs tbody tr", "id")]


def test_a_viewer_filters_sorts_and_goes_back_to_the_report(page, accounts, many):
    page.login("vera")
    page.open("/transformations/5000/")
    # A report row's count opens its jobs, with the row's filters on the page.
    page.click('table#report a[href="/transformations/5000/jobs/?status=Failed"]', shows="form#job-filters")
    assert Select(page.find("select[name=status]")).first_selected_option.get_attribute("value") == "Failed"
    assert "30 jobs" in page.text()
    assert len(job_ids(page)) == 30
    page.shot("jobs-failed")

    # Narrow to one site with the page's own filter.
    Select(page.find("select[name=site]")).select_by_value("LCG.GRIF.fr")
    page.click("form#job-filters button[type=submit]", url="site=LCG.GRIF.fr")
    assert "10 jobs" in page.text()
    assert all((int(j) - 1000) % 3 == 1 and (int(j) - 1000) % 4 == 1 for j in job_ids(page))

    # Sorted by job by default; its header sorts descending, keeping the filters.
    page.click('th a[href*="sort=-job"]', url="sort=-job")
    ids = [int(j) for j in job_ids(page)]
    assert ids == sorted(ids, reverse=True) and len(ids) == 10

    # Drop the status filter: the site one stays.
    page.click('a.drop[aria-label="drop the Status filter"]', shows='select[name=status] option[value=""][selected]')
    assert "40 jobs" in page.text()

    # And back to the report this came from.
    page.click_link("job report", shows="table#report")
    assert page.d.current_url.endswith("/transformations/5000/#report")
