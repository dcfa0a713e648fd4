"""A confirmed action in a real headless Chromium, carried out by a real Celery worker (in this
process, on the configured broker): the result page shows the request's progress, polled, and
ends with its outcome without a reload."""

from __future__ import annotations

import pytest

from failover import locks, rules
from failover.models import ActionLog
from failover.simulated.models import SimFile
from tests.factories import chain_scenario, load_scenario, run_cycle, seed_policy

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__", serialized_rollback=True)


def test_the_result_page_follows_the_request_to_its_outcome(page, accounts, worker):
    seed_policy()
    load_scenario(chain_scenario())
    run_cycle([rules.SYNC])
    page.login("otto")
    page.open("/actions/reassign/?t=4846&t=4847")
    assert "3 Assigned files of 2 failed or killed tasks" in page.text()
    # A cycle holds 4847 for a few seconds: the request treats 4846, then waits for the lock.
    assert locks.acquire(4847, "cycle-elsewhere", 10)
    page.click("#confirm", shows="#action-progress")
    page.d.execute_script("window.sameDocument = true")
    page.wait(lambda d: "1 of 2 transformations treated; now 4847, waiting for its lock (held by cycle-elsewhere)"
              in page.text(), "the progress to say it treated 4846 and waits for 4847's lock")
    page.shot("action-progress")
    page.wait_for("#action-progress[data-final]")
    text = page.text()
    assert "Finished: 2 transformations treated" in text and "3 files reset to Unused" in text
    assert page.d.execute_script("return window.sameDocument") is True  # polled, not reloaded
    page.shot("action-outcome")
    assert set(SimFile.objects.filter(transformation=4847, task__in=[1, 2]).values_list("status", flat=True)) == {
        "Unused"}
    action = ActionLog.objects.get(kind="reassign")
    assert action.actor == "otto" and action.state == "done"
