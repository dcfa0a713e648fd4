"""In a real headless Chromium: a superseding proposal on the proposals page, and stable colours
(the same minor status drawn in the same colour by plotly on two transformations)."""

from __future__ import annotations

import pytest

from failover import rules
from failover.models import ActionLog, Policy
from failover.simulated.models import SimFile, SimJob
from reports import colours
from tests.factories import chain_scenario, job, load_scenario, run_cycle, seed_policy

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__", serialized_rollback=True)


def test_a_new_decision_supersedes_the_waiting_proposal(page, accounts, worker):
    seed_policy(mode=Policy.Mode.PROPOSE)
    load_scenario(chain_scenario())
    run_cycle()
    first = ActionLog.objects.get(state="proposed", kind="reassign")
    page.login("otto")
    page.open("/proposals/?t=4847")
    assert "3 Assigned files of 2 failed or killed tasks" in page.text()
    # Task 3 of 4847 fails too, holding one more file: the next cycle decides again.
    SimJob.objects.filter(id=103).update(status="Failed", minor_status="Application Finished With Errors")
    SimFile.objects.create(transformation=4847, lfn="/p/d2.h5", status="Assigned", task=3)
    run_cycle()
    second = ActionLog.objects.get(state="proposed", kind="reassign")
    page.open("/proposals/?t=4847")
    waiting = page.find("#proposals-form").text
    assert "4 Assigned files of 3 failed or killed tasks" in waiting and "3 Assigned files" not in waiting
    assert len(page.all('input[name=proposals]')) == 1  # one live proposal, not two stacked
    page.shot("proposals-superseded")
    # The handled list says which one replaced the old one, and links it.
    page.click(f'a[href="/audit/{second.pk}/"]', url=f"/audit/{second.pk}/")
    assert "4 Assigned files of 3 failed or killed tasks" in page.text()
    first.refresh_from_db()
    assert first.state == "superseded" and first.superseded_by_id == second.pk
    # Approving the live one carries out what it says.
    page.open("/proposals/?t=4847")
    page.tick(f'input[name=proposals][value="{second.pk}"]')
    page.click('button[value="approve"]', url="/proposals/approved/")
    page.wait_for("#action-progress[data-final]")  # a worker approves it; the page polls to the outcome
    text = page.text()
    assert "Finished: 1 proposal treated" in text and "4 files reset to Unused" in text


def drawn_colours(page, tid: int) -> dict[str, str]:
    """Each bar trace's legend name and the fill plotly drew it with, from the page's SVG."""
    page.open(f"/transformations/{tid}/")
    page.wait_for(".chart[data-chart='chart-failures-data'] .main-svg g.trace.bars path")
    return page.d.execute_script("""
        var el = document.querySelector(".chart[data-chart='chart-failures-data']");
        var names = el.data.map(t => t.name.replace(/&amp;/g, '&'));
        var fills = Array.from(el.querySelectorAll('g.trace.bars')).map(
            g => window.getComputedStyle(g.querySelector('path')).fill);
        var out = {}; names.forEach((n, i) => out[n] = fills[i]); return out;""")


def rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def test_the_same_minor_status_is_drawn_in_the_same_colour_on_two_transformations(page, accounts):
    seed_policy()
    data = chain_scenario()
    # 4847: one Failed (application errors) and one Killed. 4848: mostly kills, and another
    # failure first in the legend, so the kill's rank differs between the two charts.
    data["jobs"] = [job(100, "Done"), job(101, "Failed", minor="Application Finished With Errors"),
                    job(102, "Killed"), job(103, "Done")]
    data["tasks"] += [{"transformation": 4848, "task": k, "job": 200 + k, "status": "Running"} for k in range(1, 6)]
    data["jobs"] += [job(201, "Failed", minor="Job stalled: pilot not running"),
                     job(202, "Failed", minor="Job stalled: pilot not running"),
                     job(203, "Failed", minor="Job stalled: pilot not running"),
                     job(204, "Killed"), job(205, "Killed")]
    load_scenario(data)
    run_cycle([rules.SYNC])
    page.login("vera")
    a, b = drawn_colours(page, 4847), drawn_colours(page, 4848)
    kill, errors = "Killed: Received Kill signal", "Failed: Application Finished With Errors"
    assert list(b)[0] == "Failed: Job stalled: pilot not running"  # the kills come second here
    assert a[kill] == b[kill] == rgb(colours.minor_colour("Killed", "Received Kill signal"))
    assert a[errors] == rgb(colours.minor_colour("Failed", "Application Finished With Errors"))
    assert a[errors] != a[kill]
    page.shot("failures-colours-4848")


def test_the_overview_offers_only_the_actions_that_apply_to_the_selection(page, accounts):
    seed_policy()
    load_scenario(chain_scenario())
    run_cycle([rules.SYNC])
    page.login("otto")
    page.wait_for("tbody tr[data-id]")

    def enabled() -> list[str]:
        return page.d.execute_script(
            "return Array.from(document.querySelectorAll('#selection-bar [data-kind]'))"
            ".filter(b => !b.disabled).map(b => b.getAttribute('data-kind'))")

    assert enabled() == []
    page.tick('input[name=t][value="4846"]')  # all files Processed, no failed job: complete it, nothing to flush
    page.wait(lambda d: enabled() == ["complete", "sync"], "the buttons for 4846 alone")
    page.tick('input[name=t][value="4847"]')  # failed jobs and an Unused file: every action
    page.wait(lambda d: enabled() == ["flush", "reassign", "complete", "sync"], "the buttons for 4846 and 4847")
