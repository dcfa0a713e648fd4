"""A readable overview: names wrap at separators, the last action says what happened (from the
action's numbers), the failed share tells waiting failures from recovered ones, buttons only where
the action can apply, and a reason for every transformation that is not moving."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from failover import rules
from failover.models import ActionLog, TransformationState
from failover.outcomes import count, phrase, reassign_result
from tests.factories import run_cycle

pytestmark = pytest.mark.django_db(databases="__all__")


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def row_of(page: str, tid: int) -> str:
    return re.search(rf'<tr class="[^"]*" data-id="{tid}">(.*?)</tr>', page, re.S).group(1)


def test_names_wrap_at_their_separators_only(viewer_client, chain_synced):
    TransformationState.objects.filter(pk=4847).update(name="Prod5b_LaPalma-merging.DL2/<b>")
    page = text(viewer_client.get(reverse("overview_table")))
    assert "Prod5b_<wbr>LaPalma-<wbr>merging.<wbr>DL2/<wbr>&lt;b&gt;" in page  # escaped, then wrappable


def test_the_last_action_says_what_happened(viewer_client, chain_synced):
    row = row_of(text(viewer_client.get(reverse("overview_table"))), 4847)
    # The sync: one task of each status, in the singular.
    assert "1 task set Done, 1 task set Failed, 1 task set Killed" in row and "Copy job statuses" in row
    run_cycle([rules.REASSIGN])
    row = row_of(text(viewer_client.get(reverse("overview_table"))), 4847)
    assert '<span class="what">3 files reset to Unused</span>' in row and "Reassign failed" in row
    state = TransformationState.objects.get(pk=4847)
    assert state.last_action_log.kind == "reassign" and state.last_action_log.result["unused"] == 3


def test_the_sentence_is_built_from_numbers():
    result = reassign_result(["/a", "/b", "/c", "/d"], {"/a": "Unused", "/b": "Unused", "/c": "MaxReset"})
    assert result == {"files": 4, "unused": 2, "became": {"MaxReset": 1}, "unchanged": 1}
    assert phrase("reassign", result) == "2 files reset to Unused; 1 became MaxReset; 1 left unchanged by DIRAC"
    assert phrase("reassign", {"unused": 1225}) == "1,225 files reset to Unused"
    assert phrase("sync", {"tasks": {"Failed": 1}}) == "1 task set Failed"
    assert phrase("complete", {"from": "Active", "to": "Completed"}) == "status Active to Completed"
    assert phrase("flush", {}) == ""
    assert count(1, "file") == "1 file" and count(2, "task") == "2 tasks"


def test_the_failed_share_tells_waiting_failures_from_recovered_ones(viewer_client, chain_synced):
    row = row_of(text(viewer_client.get(reverse("overview_table"))), 4847)
    assert "66.7%" in row and '<span class="waiting"' in row and "2 waiting" in row and "recovered" not in row
    assert "failed-share bad" in row
    run_cycle([rules.REASSIGN])  # the files of both failed tasks go back to Unused, for later tasks
    row = row_of(text(viewer_client.get(reverse("overview_table"))), 4847)
    assert "66.7%" in row and "2 recovered" in row and "waiting" not in row
    assert "failed-share bad" not in row


def test_buttons_only_where_the_action_can_apply(operator_client, chain_synced):
    page = text(operator_client.get(reverse("transformation", args=[4847])))
    for label in ("Flush…", "Reassign failed…", "Complete…", "Copy job statuses…"):
        assert label in page
    page = text(operator_client.get(reverse("transformation", args=[4848])))  # no failed job, one Unused file
    assert "Flush…" in page and "Reassign failed…" not in page
    run_cycle([rules.COMPLETE])
    page = text(operator_client.get(reverse("transformation", args=[4846])))
    assert 'class="actions"' not in page
    for label in ("Flush…", "Reassign failed…", "Complete…", "Copy job statuses…"):
        assert label not in page


def test_a_completed_transformation_says_by_which_cycle_and_when(operator_client, chain_synced):
    page = text(operator_client.get(reverse("action", args=["reassign"]), {"t": 4846}))
    assert "Nothing to do now.</strong> No Assigned file belongs to a Failed or Killed task." in page
    cycle = run_cycle([rules.COMPLETE])
    done = ActionLog.objects.get(transformation_id=4846, kind="complete", state="done")
    expected = f"Completed by cycle {cycle.cycle_id} at {done.finished:%Y-%m-%d %H:%M} UTC"
    assert expected in row_of(text(operator_client.get(reverse("overview_table"))), 4846)
    assert expected in text(operator_client.get(reverse("transformation", args=[4846])))
    # The previews of actions that find nothing to do give their reason, a Completed one included.
    assert f"Nothing to do now.</strong> {expected}." in text(operator_client.get(reverse("action", args=["flush"]),
                                                                          {"t": 4846}))


def test_a_transformation_the_policy_does_not_treat_says_so(viewer_client, chain_synced):
    TransformationState.objects.filter(pk=4848).update(status="Stopped")
    row = row_of(text(viewer_client.get(reverse("overview_table"))), 4848)
    assert "Stopped: the policy treats Active transformations only" in row
