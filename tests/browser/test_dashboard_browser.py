"""The dashboard in a real headless Chromium, as a production manager uses it.

An operator logs in, filters the overview, opens a transformation and finds the numbers of
``manage.py report --format json``, completes and flushes through the confirmation pages,
approves a proposal and finds both in the audit log; a viewer sees no action buttons. Every page
visited is saved under var/screenshots/.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from failover import rules
from failover.models import ActionLog, Policy
from failover.simulated.models import SimFile, SimTransformation
from tests.factories import chain_scenario, load_scenario, run_cycle, seed_policy

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__", serialized_rollback=True)

@pytest.fixture
def production():
    """Production 7 after a cycle that only copied job statuses (see tests/conftest.py)."""
    seed_policy()
    load_scenario(chain_scenario())
    run_cycle([rules.SYNC])


def report_json(tid: int) -> dict:
    out = io.StringIO()
    call_command("report", str(tid), "--format", "json", stdout=out)
    return json.loads(out.getvalue())


def test_an_operator_works_through_the_dashboard(page, accounts, production, worker):
    page.open("/")
    assert "/accounts/login/" in page.d.current_url
    page.shot("login")
    page.login("otto")

    # The overview, then filtered to the merging steps.
    page.wait_for("table.overview tbody tr[data-id]")
    assert set(page.attributes("tbody tr[data-id]", "data-id")) == {"4846", "4847", "4848"}
    page.shot("overview")
    Select(page.find("#id_type")).select_by_value("Merging")
    page.click("#filters button[type=submit]", url="type=Merging")
    assert "type=Merging" in page.d.current_url
    assert page.attributes("tbody tr[data-id]", "data-id") == ["4847", "4848"]
    page.shot("overview-filtered")

    # Open 4847: the report's numbers are those of `manage.py report 4847 --format json`.
    page.click('a[href="/transformations/4847/"]', shows="table#report")
    expected = report_json(4847)
    rows = [[c.text.strip() for c in tr.find_elements(By.TAG_NAME, "td")] for tr in page.all("table#report tbody tr")]
    for status in expected["statuses"]:
        assert [f"Total: {status['status']}", "-", "-", "-", f"{status['count']} ({status['percent']}%)"] in rows
        for minor in status["minor_statuses"]:
            assert [status["status"], f"Total: {minor['minor_status']}", "-", "-",
                    f"{minor['count']} ({minor['percent']}%)"] in rows
            for r in minor["rows"]:
                assert [status["status"], minor["minor_status"], r["application_status"], r["site"],
                        str(r["count"])] in rows
    assert rows[-1] == ["Total # tasks:", "-", "-", "-", str(expected["total"])]
    failed_cell = page.find("table#report tr.r-status.st-failed td")
    assert failed_cell.value_of_css_property("color") == "rgba(192, 57, 43, 1)"  # red, as in the mail
    page.wait_for(".chart .main-svg")  # plotly drew the charts from the local plotly.min.js
    page.shot("transformation")

    # A report row leads to its jobs and their files.
    page.click('table#report tr.r-data.st-failed td.num a', url="/transformations/4847/jobs/")
    assert "101" in page.text() and "/p/a1.h5" in page.text()
    page.shot("transformation-jobs")

    # Complete the parent 4846 through its confirmation...
    page.open("/transformations/4846/")
    page.click_link("Complete…", shows="#confirm")
    assert "all 3 files Processed" in page.text()
    page.shot("action-preview-complete")
    page.click("#confirm", url="/done/")
    page.wait_for("#action-progress[data-final]")  # a worker carried it out; the page followed it
    assert "status Active to Completed" in page.text()
    assert SimTransformation.objects.get(id=4846).status == "Completed"

    # ... then flush 4847: the preview says what will happen, the confirmation does it.
    page.open("/transformations/4847/")
    page.click_link("Flush…", shows="#confirm")
    assert "1 Unused file, fewer than the group size 50" in page.text()
    assert SimTransformation.objects.get(id=4847).status == "Active"
    page.shot("action-preview-flush")
    page.click("#confirm", url="/done/")
    page.wait_for("#action-progress[data-final]")
    assert "status Active to Flush" in page.text()
    page.shot("action-result")
    assert SimTransformation.objects.get(id=4847).status == "Flush"

    # Propose mode: the cycle proposes reassigning 4847's failed files; the operator approves.
    page.open("/audit/")  # no polling page open while the cycle writes
    # DIRAC moves on: its TransformationAgent put the last Unused file in a task and set 4847 Active.
    SimFile.objects.filter(transformation=4847, status="Unused").delete()
    SimTransformation.objects.filter(id=4847).update(status="Active")
    Policy.objects.update(mode=Policy.Mode.PROPOSE)
    run_cycle()
    proposal = ActionLog.objects.get(state="proposed", kind="reassign")
    page.open("/proposals/")
    assert "3 Assigned files of 2 failed or killed tasks" in page.text()
    page.shot("proposals")
    page.tick(f'input[name=proposals][value="{proposal.pk}"]')
    page.click('button[value="approve"]', url="/proposals/approved/")
    # A worker approves it in the background; the result page follows it to the outcome.
    page.wait_for("#action-progress[data-final]")
    assert "Finished: 1 proposal treated" in page.text() and "3 files reset to Unused" in page.text()
    page.shot("approval-result")
    proposal.refresh_from_db()
    assert proposal.state == "done" and proposal.actor == "otto"

    # The audit log shows both, with the operator's name, filtered by actor.
    page.open("/audit/?actor=otto")
    text = page.text()
    assert "Flush" in text and "Reassign failed" in text and "otto" in text and "3 actions" in text
    page.shot("audit")

    for path, name in (("/attention/", "attention"), ("/productions/7/", "production"),
                       ("/productions/", "productions"), ("/transformations/4847/files/", "transformation-files"),
                       ("/transformations/999/", "not-found")):
        page.open(path)
        page.shot(name)


def test_a_viewer_sees_no_action_buttons(page, accounts, production):
    page.login("vera")
    page.wait_for("table.overview tbody tr[data-id]")
    assert not page.all("#selection-bar") and not page.all('input[name="t"]')
    page.open("/transformations/4847/")
    assert not page.all(".actions a") and "Flush…" not in page.text()
    assert "Acknowledge" not in page.text()
    page.shot("viewer-transformation")
    page.open("/actions/flush/?t=4847")
    assert "Only operators may do this" in page.text()
    page.shot("viewer-forbidden")


def test_the_overview_refreshes_itself(page, accounts, production):
    page.login("otto")
    page.wait_for("tbody tr[data-id]")
    # The live region's HTML is replaced every 5 s: it is read in one script, never through an
    # element found earlier, and the refresh is known by its own stamp, not by the old one's staleness.
    stamp = page.d.execute_script("return document.querySelector('.updated').textContent")
    page.tick('input[name=t][value="4847"]')
    page.wait(lambda d: d.execute_script("return document.querySelector('.updated').textContent") != stamp,
              "the overview to refresh")
    selected, counter, enabled = page.d.execute_script(
        "return [document.querySelector('input[name=t][value=\"4847\"]').checked,"
        " document.getElementById('n-selected').textContent,"
        " !document.querySelector('[data-needs-selection]').disabled]")
    # The selection survives the refresh and keeps the buttons enabled.
    assert selected and counter == "1" and enabled
