"""One live proposal per transformation and kind: a new decision supersedes the waiting one; a
proposal's text and its outcome give the same numbers; approval re-checks against DIRAC."""

from __future__ import annotations

import re

import pytest
from django.db import IntegrityError, transaction
from django.test import TestCase
from django.urls import reverse

from failover import actions
from failover.errors import StaleProposal
from failover.models import ActionLog
from failover.simulated.models import SimFile, SimJob
from tests.factories import run_cycle

pytestmark = pytest.mark.django_db(databases="__all__")


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def waiting(kind: str = "reassign") -> list[ActionLog]:
    return list(ActionLog.objects.filter(transformation_id=4847, kind=kind, state="proposed"))


def one_more_failure() -> None:
    """Task 3 of 4847 (job 103) fails while still holding an Assigned file."""
    SimJob.objects.filter(id=103).update(status="Failed", minor_status="Application Finished With Errors")
    SimFile.objects.create(transformation=4847, lfn="/p/d2.h5", status="Assigned", task=3)


def test_it_supersedes_the_waiting_proposal_of_the_same_kind(chain_proposed):
    [first] = waiting()
    assert first.reason == "3 Assigned files of 2 failed or killed tasks"
    one_more_failure()
    run_cycle()
    [second] = waiting()
    first.refresh_from_db()
    assert second.pk != first.pk and second.reason == "4 Assigned files of 3 failed or killed tasks"
    assert first.state == "superseded" and first.superseded_by_id == second.pk and first.finished
    assert first.outcome == f"superseded by proposal {second.pk}: 4 Assigned files of 3 failed or killed tasks"
    # The other kind's proposal (complete 4846) is left alone, and nothing was stacked.
    assert ActionLog.objects.filter(state="proposed").count() == 2
    # The same decision again keeps the waiting proposal: no churn.
    run_cycle()
    assert waiting() == [second]
    # Approving the superseded one is refused with the reason; the live one is not touched.
    with pytest.raises(StaleProposal, match=f"superseded by proposal {second.pk}"):
        actions.approve_proposal(None, first)
    assert waiting() == [second]


def test_the_database_holds_one_live_proposal_per_kind(chain_proposed):
    [p] = waiting()
    with pytest.raises(IntegrityError), transaction.atomic():
        ActionLog.objects.create(transformation_id=4847, kind="reassign", state="proposed", reason="stacked")
    assert waiting() == [p]


def test_the_proposals_page_shows_the_live_proposal_and_the_superseded_one(operator_client, chain_proposed):
    [first] = waiting()
    one_more_failure()
    run_cycle()
    [second] = waiting()
    page = text(operator_client.get(reverse("proposals")))
    waiting_part, handled = page.split("Recently handled")
    assert "4 Assigned files of 3 failed or killed tasks" in waiting_part
    assert "3 Assigned files of 2" not in waiting_part
    assert f'superseded by <a href="/audit/{second.pk}/">proposal {second.pk}</a>' in handled
    # The form refuses the superseded one as not waiting.
    r = operator_client.post(reverse("proposals_decide"), {"decision": "approve", "proposals": [first.pk]})
    assert r.status_code == 400 and "not waiting for approval" in text(r)
    assert [f.status for f in SimFile.objects.filter(transformation=4847, task__in=[1, 2])] == ["Assigned"] * 3


@pytest.fixture
def eager(settings):
    from dashboard.celery import app

    settings.FAILOVER_ACTION_LOCK_WAIT = 0
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = False


def test_a_proposal_and_its_outcome_give_the_same_numbers(operator_client, chain_proposed, eager):
    """The finding: "40 Assigned files" proposed, "10 files set Unused" done. Files that left
    their failed task meanwhile are not carried out, and the reason now says what is."""
    [p] = waiting()
    SimFile.objects.filter(transformation=4847, lfn="/p/a2.h5").update(status="Processed")
    with TestCase.captureOnCommitCallbacks(execute=True):  # the approval's task, eager here
        r = operator_client.post(reverse("proposals_decide"), {"decision": "approve", "proposals": [p.pk],
                                                               "request_key": "a" * 32})
    r = operator_client.get(r["Location"])  # the result page, once the worker's task has run
    p.refresh_from_db()
    assert p.state == "done"
    assert p.reason == ("2 Assigned files of 2 failed or killed tasks "
                        "(of the 3 files proposed; 1 no longer qualifies)")
    assert p.outcome == "2 files reset to Unused"
    assert p.result == {"files": 2, "unused": 2, "became": {}, "unchanged": 0}
    assert p.details["proposed"]["reason"] == "3 Assigned files of 2 failed or killed tasks"
    assert "Finished: 1 proposal treated" in text(r) and "2 files reset to Unused" in text(r)
