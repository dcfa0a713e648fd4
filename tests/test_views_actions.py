"""Operators' actions and approvals: preview, confirm, once only, roles, bad input."""

from __future__ import annotations

import re

import pytest
from django.test import TestCase
from django.urls import reverse

from failover import actions, locks
from failover.models import ActionLog, ReassignCounter, TransformationState
from failover.simulated.models import SimFile, SimTransformation

pytestmark = pytest.mark.django_db(databases="__all__")

FAILED_LFNS = ["/p/a1.h5", "/p/a2.h5", "/p/k1.h5"]


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def key_of(response) -> str:
    return re.search(r'name="request_key" value="([0-9a-f]{32})"', response.content.decode()).group(1)


def file_status(lfn: str) -> str:
    return SimFile.objects.get(transformation=4847, lfn=lfn).status


@pytest.fixture(autouse=True)
def eager(settings):
    """A confirmed request is carried out by the task it enqueues: here, in this process."""
    from dashboard.celery import app

    settings.FAILOVER_ACTION_LOCK_WAIT = 0
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = False


def confirm(client, url, data, follow: bool = False):
    """POST a confirmation, run what it enqueues after its commit (the request's task), then
    (``follow``) open the result page it redirects to."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(url, data)
    if follow and response.status_code == 302:
        return client.get(response["Location"])
    return response


# -- roles and methods: answered before any data is read, so no cycle is needed ------------------


@pytest.mark.parametrize("kind", actions.BUTTONS)
def test_it_sends_anonymous_users_to_login(anon_client, kind):
    for response in (anon_client.get(reverse("action", args=[kind]), {"t": 4847}),
                     anon_client.post(reverse("action", args=[kind]), {"t": 4847})):
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("kind", actions.BUTTONS)
def test_it_refuses_viewers(viewer_client, kind):
    url = reverse("action", args=[kind])
    assert viewer_client.get(url, {"t": 4847}).status_code == 403
    r = viewer_client.post(url, {"t": 4847, "request_key": "b" * 32})
    assert r.status_code == 403 and "Only operators" in text(r)
    assert not ActionLog.objects.exists()  # refused before anything was read or written


def test_it_answers_405_to_other_methods(operator_client):
    url = reverse("action", args=["flush"])
    assert operator_client.put(url).status_code == 405
    assert operator_client.delete(url).status_code == 405
    assert operator_client.get(reverse("proposals_decide")).status_code == 405


def test_it_answers_404_for_an_unknown_action(operator_client):
    r = operator_client.get(reverse("action", args=["explode"]), {"t": 4847})
    assert r.status_code == 404 and "There is no action" in text(r)
    r = operator_client.get(reverse("action_result", args=["flush", "nokey"]))
    assert r.status_code == 404


# -- preview then confirm -------------------------------------------------------------------------


def test_it_previews_a_reassign_without_changing_anything(operator_client, chain_synced):
    r = operator_client.get(reverse("action", args=["reassign"]), {"t": 4847})
    assert r.status_code == 200
    page = text(r)
    assert "3 Assigned files of 2 failed or killed tasks" in page
    for lfn in FAILED_LFNS:
        assert lfn in page
    assert 'method="post"' in page and "Confirm: Reassign failed" in page
    assert [file_status(lfn) for lfn in FAILED_LFNS] == ["Assigned"] * 3
    assert not ActionLog.objects.filter(kind="reassign").exists()


def test_it_carries_out_on_post_once_whatever_the_submits(operator_client, chain_synced):
    url = reverse("action", args=["reassign"])
    key = key_of(operator_client.get(url, {"t": 4847}))
    first = confirm(operator_client, url, {"t": 4847, "request_key": key})
    assert first.status_code == 302 and first["Location"] == reverse("action_result", args=["reassign", key])
    assert [file_status(lfn) for lfn in FAILED_LFNS] == ["Unused"] * 3
    action = ActionLog.objects.get(kind="reassign")
    assert action.state == "done" and action.actor == "otto" and action.user.username == "otto"
    assert action.request_key == f"{key}:4847"
    # DIRAC moves on: the files are Assigned to failed tasks again; a double submit must not act.
    SimFile.objects.filter(transformation=4847, lfn__in=FAILED_LFNS).update(status="Assigned")
    second = confirm(operator_client, url, {"t": 4847, "request_key": key}, follow=True)
    assert "already confirmed" in text(second)
    assert ActionLog.objects.filter(kind="reassign").count() == 1
    assert [file_status(lfn) for lfn in FAILED_LFNS] == ["Assigned"] * 3
    assert set(ReassignCounter.objects.values_list("count", flat=True)) == {1}
    # The result page lists what the request did, and is safe to reload.
    result = text(operator_client.get(first["Location"]))
    assert "Reassign failed" in result and "3 files reset to Unused" in result and "Finished" in result


def test_it_completes_and_flushes_a_selection(operator_client, chain_synced):
    url = reverse("action", args=["complete"])
    preview = operator_client.get(url, {"t": [4846, 4848]})
    page = text(preview)
    assert "all 3 files Processed and no parent step to wait for" in page
    assert "Nothing to do now." in page  # 4848
    confirm(operator_client, url, {"t": [4846, 4848], "request_key": key_of(preview)})
    assert SimTransformation.objects.get(id=4846).status == "Completed"
    assert SimTransformation.objects.get(id=4848).status == "Active"
    # 4846 is now Completed, so 4847 may be flushed (1 Unused file < group size 50).
    url = reverse("action", args=["flush"])
    preview = operator_client.get(url, {"t": "4847"})
    assert "1 Unused file, fewer than the group size 50" in text(preview)
    r = confirm(operator_client, url, {"t": "4847", "request_key": key_of(preview)}, follow=True)
    assert SimTransformation.objects.get(id=4847).status == "Flush"
    assert "status Active to Flush" in text(r)
    assert TransformationState.objects.get(pk=4847).flush_count == 1


def test_it_copies_job_statuses_on_demand(operator_client, chain_synced):
    from failover.simulated.models import SimJob, SimTask

    SimJob.objects.filter(id=103).update(status="Failed", minor_status="Stalled")
    url = reverse("action", args=["sync"])
    preview = operator_client.get(url, {"t": 4847})
    assert "1 task behind its job: 1 to Failed" in text(preview)
    confirm(operator_client, url, {"t": 4847, "request_key": key_of(preview)})
    assert SimTask.objects.get(transformation=4847, task=3).status == "Failed"


def test_it_says_when_there_is_nothing_to_do(operator_client, chain_synced):
    r = operator_client.get(reverse("action", args=["flush"]), {"t": 4848})
    page = text(r)
    assert "Nothing to do now." in page and "waiting for 4847 to complete" in page
    assert "Confirm:" not in page
    post = confirm(operator_client, reverse("action", args=["flush"]), {"t": 4848, "request_key": "c" * 32},
                   follow=True)
    assert "nothing to do: " in text(post) and "waiting for 4847 to complete" in text(post)
    assert not ActionLog.objects.filter(kind="flush").exists()


def test_it_does_not_act_while_another_holds_the_lock(operator_client, chain_synced):
    assert locks.acquire(4847, "cycle-elsewhere")
    r = confirm(operator_client, reverse("action", args=["reassign"]), {"t": 4847, "request_key": "d" * 32},
                follow=True)
    assert "locked by cycle-elsewhere" in text(r)
    assert [file_status(lfn) for lfn in FAILED_LFNS] == ["Assigned"] * 3


@pytest.mark.parametrize("params, message", [
    ({}, "This field is required"),
    ({"t": "abc"}, "abc is not"),
    ({"t": "999"}, "Unknown transformation: 999"),
    ({"t": [str(i) for i in range(300)]}, "Select at most 200"),
])
def test_it_shows_bad_selections_as_form_errors(operator_client, chain_synced, params, message):
    r = operator_client.get(reverse("action", args=["flush"]), params)
    assert r.status_code == 400 and message in text(r)


def test_it_refuses_a_confirmation_without_a_valid_key(operator_client, chain_synced):
    url = reverse("action", args=["reassign"])
    for data in ({"t": 4847}, {"t": 4847, "request_key": "not-a-key"}):
        r = operator_client.post(url, data)
        assert r.status_code == 400 and "open the preview again" in text(r)
    assert not ActionLog.objects.filter(kind="reassign").exists()


def test_it_requires_csrf_for_actions(operator_user, chain_synced):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(operator_user)
    r = client.post(reverse("action", args=["reassign"]), {"t": 4847, "request_key": "e" * 32})
    assert r.status_code == 403 and "This form has expired" in text(r)
    assert not ActionLog.objects.filter(kind="reassign").exists()


# -- proposals --------------------------------------------------------------------------------------


def proposal(kind: str) -> ActionLog:
    return ActionLog.objects.get(state="proposed", kind=kind)


def test_it_lists_proposals_with_their_reason(viewer_client, chain_proposed):
    page = text(viewer_client.get(reverse("proposals")))
    assert "3 Assigned files of 2 failed or killed tasks" in page
    assert "all 3 files Processed" in page
    assert "Approve selected" not in page  # viewers see no buttons


def page_key(client) -> str:
    """The one-time key of the proposals page's form."""
    return key_of(client.get(reverse("proposals")))


def decide(client, data, follow: bool = True):
    """Submit the proposals page's form (with its key unless given), run what an approval
    enqueues after its commit, then (``follow``) open the page it redirects to."""
    if "request_key" not in data:
        data = {**data, "request_key": page_key(client)}
    return confirm(client, reverse("proposals_decide"), data, follow=follow)


def test_it_approves_one_proposal_in_the_background(operator_client, chain_proposed):
    from failover.models import ActionRequest

    p = proposal("reassign")
    r = decide(operator_client, {"decision": "approve", "proposals": [p.pk]}, follow=False)
    req = ActionRequest.objects.get()
    assert r.status_code == 302 and r["Location"] == reverse("approval_result", args=[req.key])
    assert (req.kind, req.proposal_ids, req.transformation_ids, req.actor) == ("approve", [p.pk], [4847], "otto")
    p.refresh_from_db()
    assert p.state == "done" and p.user.username == "otto" and p.request_key == f"{req.key}:p{p.pk}"
    assert [file_status(lfn) for lfn in FAILED_LFNS] == ["Unused"] * 3
    page = text(operator_client.get(r["Location"]))
    assert "Finished: 1 proposal treated" in page and "data-final" in page
    assert "3 files reset to Unused" in page and f'href="/audit/{p.pk}/"' in page
    assert proposal("complete").state == "proposed"


def test_an_approval_waits_for_a_worker_and_the_result_page_follows_it(operator_client, chain_proposed):
    from failover.models import ActionRequest
    from failover.tasks import run_action_request

    key = page_key(operator_client)
    with TestCase.captureOnCommitCallbacks(execute=False) as enqueued:
        r = operator_client.post(reverse("proposals_decide"), {"decision": "approve_all", "request_key": key})
    assert r.status_code == 302 and len(enqueued) == 1  # one task, sent after the commit
    req = ActionRequest.objects.get(key=key)
    ids = sorted(ActionLog.objects.filter(state="proposed").values_list("pk", flat=True))
    assert req.proposal_ids == ids and req.state == "queued"
    progress = reverse("approval_progress", args=[key])
    page = text(operator_client.get(r["Location"]))
    assert "Waiting for a worker to take it: 2 proposals" in page and f'data-src="{progress}"' in page
    assert "data-final" not in text(operator_client.get(progress))
    assert [file_status(lfn) for lfn in FAILED_LFNS] == ["Assigned"] * 3  # not approved yet
    # A second submit of the same page enqueues nothing more and shows the same request.
    with TestCase.captureOnCommitCallbacks(execute=False) as again:
        second = operator_client.post(reverse("proposals_decide"), {"decision": "approve_all", "request_key": key})
    assert again == [] and second["Location"] == r["Location"] and ActionRequest.objects.count() == 1
    assert run_action_request(req.pk) == f"action request {req.pk}: 2 of 2 treated"
    fragment = text(operator_client.get(progress))
    assert "data-final" in fragment and "Finished: 2 proposals treated" in fragment
    assert fragment.count('<tr class="result-done">') == 2 and "3 files reset to Unused" in fragment
    assert SimTransformation.objects.get(id=4846).status == "Completed"
    assert not ActionLog.objects.filter(state="proposed").exists()
    # A redelivered message: the request is over, nothing is approved twice.
    assert "over" in run_action_request(req.pk)
    assert ActionLog.objects.filter(kind="reassign", state="done").count() == 1


def test_it_approves_all_and_a_second_approval_does_nothing(operator_client, chain_proposed):
    decide(operator_client, {"decision": "approve_all"})
    assert not ActionLog.objects.filter(state="proposed").exists()
    assert SimTransformation.objects.get(id=4846).status == "Completed"
    again = decide(operator_client, {"decision": "approve_all"})
    assert "There was no proposal waiting: nothing was done." in text(again)


def test_a_redelivered_approval_approves_each_proposal_once(chain_proposed, operator_user):
    """A worker died after approving the proposal but before recording it: the next one finds it
    claimed by this request and carried out, and says so."""
    from datetime import timedelta

    from django.utils import timezone

    from failover.models import ActionRequest

    p = proposal("reassign")
    req, created = actions.request_approval([p], user=operator_user, request_key="e" * 32)
    assert created
    assert actions.claim_proposal(p, req.key)[0]
    actions.approve([p], user=operator_user)
    ActionRequest.objects.filter(pk=req.pk).update(state="running", lease_until=timezone.now() - timedelta(seconds=1))
    SimFile.objects.filter(transformation=4847, lfn__in=FAILED_LFNS).update(status="Assigned")
    actions.run_request(req.pk)
    req.refresh_from_db()
    assert req.state == "finished" and [(r["proposal"], r["state"]) for r in req.results] == [(p.pk, "duplicate")]
    assert req.results[0]["message"] == "this request already approved it: done: 3 files reset to Unused"
    assert [file_status(lfn) for lfn in FAILED_LFNS] == ["Assigned"] * 3
    assert ActionLog.objects.filter(kind="reassign").count() == 1


def test_two_approvals_of_one_proposal_carry_it_out_once(chain_proposed, operator_user, django_user_model):
    from tests.factories import make_user

    admin_user = make_user(django_user_model, "ada", "admin")
    p = proposal("reassign")
    first, _ = actions.request_approval([p], user=operator_user, request_key="1" * 32)
    second, _ = actions.request_approval([p], user=admin_user, request_key="2" * 32)
    assert actions.claim_proposal(p, first.key)[0]  # the first one's worker took it, still running
    ActionRequest = type(first)
    ActionRequest.objects.filter(pk=first.pk).update(state="running")
    actions.run_request(second.pk)
    second.refresh_from_db()
    assert [r["state"] for r in second.results] == ["skipped"]
    assert "another approval, by otto, is carrying it out" in second.results[0]["message"]
    p.refresh_from_db()
    assert p.state == "proposed"
    # The first request stopped before approving it: a new approval takes the proposal over.
    ActionRequest.objects.filter(pk=first.pk).update(state="failed")
    third, _ = actions.request_approval([p], user=admin_user, request_key="3" * 32)
    actions.run_request(third.pk)
    third.refresh_from_db()
    p.refresh_from_db()
    assert [r["state"] for r in third.results] == ["done"] and p.state == "done"
    assert p.request_key == f"{third.key}:p{p.pk}" and p.actor == admin_user.username


def test_an_approval_waits_for_the_lock_of_a_cycle_then_says_it_was_locked(chain_proposed, operator_user):
    assert locks.acquire(4847, "cycle-elsewhere")
    p = proposal("reassign")
    req, _ = actions.request_approval([p], user=operator_user, request_key="4" * 32)
    actions.run_request(req.pk)
    req.refresh_from_db()
    assert req.results[0]["proposal"] == p.pk and "locked by cycle-elsewhere" in req.results[0]["message"]
    assert [file_status(lfn) for lfn in FAILED_LFNS] == ["Assigned"] * 3


def test_it_refuses_an_approval_without_the_page_s_key(operator_client, chain_proposed):
    p = proposal("reassign")
    for data in ({"decision": "approve", "proposals": [p.pk]},
                 {"decision": "approve_all", "request_key": "not-a-key"}):
        r = operator_client.post(reverse("proposals_decide"), data)
        assert r.status_code == 400 and "open the proposals page again" in text(r)
    assert ActionLog.objects.filter(state="proposed").count() == 2


def test_the_result_page_of_an_unknown_approval_is_404(operator_client, viewer_client):
    assert operator_client.get(reverse("approval_result", args=["0" * 32])).status_code == 404
    assert operator_client.get(reverse("approval_progress", args=["bad"])).status_code == 404
    assert viewer_client.get(reverse("approval_progress", args=["0" * 32])).status_code == 403


def test_it_refuses_a_stale_proposal_with_the_reason(operator_client, chain_proposed):
    p = proposal("complete")
    SimTransformation.objects.filter(id=4846).update(status="Stopped")
    SimFile.objects.filter(transformation=4846).update(status="Unused")
    r = decide(operator_client, {"decision": "approve", "proposals": [p.pk]})
    p.refresh_from_db()
    assert p.state == "stale" and p.outcome.startswith("not carried out")
    assert SimTransformation.objects.get(id=4846).status == "Stopped"
    assert '<tr class="result-stale">' in text(r) and "not carried out" in text(r)


def test_it_rejects_proposals_with_a_reason(operator_client, chain_proposed):
    ids = list(ActionLog.objects.filter(state="proposed").values_list("pk", flat=True))
    operator_client.post(reverse("proposals_decide"), {"decision": "reject", "proposals": ids, "reason": "not now"})
    assert set(ActionLog.objects.filter(pk__in=ids).values_list("state", flat=True)) == {"rejected"}
    assert ActionLog.objects.get(pk=ids[0]).outcome == "rejected by otto: not now"
    assert [file_status(lfn) for lfn in FAILED_LFNS] == ["Assigned"] * 3
    # Approving a rejected proposal is a form error, not an action.
    r = operator_client.post(reverse("proposals_decide"), {"decision": "approve", "proposals": ids[:1],
                                                           "request_key": "5" * 32})
    assert r.status_code == 400 and "not waiting for approval" in text(r)


@pytest.mark.parametrize("data, message", [
    ({"decision": "approve"}, "Select at least one proposal"),
    ({"decision": "maybe"}, "Select a valid choice"),
    ({"decision": "approve", "proposals": ["x"]}, "is not a proposal number"),
])
def test_it_shows_bad_decisions_as_form_errors(operator_client, chain_proposed, data, message):
    r = operator_client.post(reverse("proposals_decide"), data)
    assert r.status_code == 400 and message in text(r)
    assert ActionLog.objects.filter(state="proposed").count() == 2


def test_it_refuses_decisions_from_viewers_and_anonymous_users(viewer_client, anon_client, chain_proposed):
    assert viewer_client.post(reverse("proposals_decide"), {"decision": "approve_all"}).status_code == 403
    r = anon_client.post(reverse("proposals_decide"), {"decision": "approve_all"})
    assert r.status_code == 302 and r["Location"].startswith(reverse("login"))
    assert ActionLog.objects.filter(state="proposed").count() == 2


# -- in the background: the request, its progress, its outcome -------------------------------------


def test_it_enqueues_the_confirmed_action_and_the_result_page_follows_it(operator_client, chain_synced):
    from failover.models import ActionRequest
    from failover.tasks import run_action_request

    url = reverse("action", args=["reassign"])
    key = key_of(operator_client.get(url, {"t": [4846, 4847]}))
    with TestCase.captureOnCommitCallbacks(execute=False) as enqueued:
        r = operator_client.post(url, {"t": [4846, 4847], "request_key": key})
    assert r.status_code == 302 and len(enqueued) == 1  # one task, sent after the commit
    req = ActionRequest.objects.get(key=key)
    assert (req.kind, req.transformation_ids, req.actor, req.state) == ("reassign", [4846, 4847], "otto", "queued")
    # Not carried out yet: the page says it waits for a worker, and keeps polling.
    progress = reverse("action_progress", args=["reassign", key])
    page = text(operator_client.get(r["Location"]))
    assert "Waiting for a worker to take it: 2 transformations" in page and f'data-src="{progress}"' in page
    assert "data-final" not in text(operator_client.get(progress))
    assert [file_status(lfn) for lfn in FAILED_LFNS] == ["Assigned"] * 3
    # A second submit of the form enqueues nothing more.
    with TestCase.captureOnCommitCallbacks(execute=False) as again:
        operator_client.post(url, {"t": [4846, 4847], "request_key": key})
    assert again == [] and ActionRequest.objects.count() == 1
    # The worker's task: the polled fragment then ends with the outcome and stops the polling.
    assert run_action_request(req.pk) == f"action request {req.pk}: 2 of 2 treated"
    fragment = text(operator_client.get(progress))
    assert "data-final" in fragment and "Finished: 2 transformations treated" in fragment
    assert "3 files reset to Unused" in fragment and "nothing to do" in fragment
    action = ActionLog.objects.get(kind="reassign")
    assert action.request_key == f"{key}:4847" and action.actor == "otto"
    assert f'href="/audit/{action.pk}/"' in fragment
    # Run again (a redelivered message): the request is over, nothing is done twice.
    assert "over" in run_action_request(req.pk)
    assert ActionLog.objects.filter(kind="reassign").count() == 1


def test_a_redelivered_request_acts_once_per_transformation(chain_synced, operator_user):
    """A worker died after acting on 4847 but before recording it: the next one finds the key taken."""
    from datetime import timedelta

    from django.utils import timezone

    from failover.models import ActionRequest

    req, created = actions.request_action([4847], "reassign", user=operator_user, request_key="f" * 32)
    assert created
    actions.execute([4847], "reassign", user=operator_user, request_key=req.key)
    ActionRequest.objects.filter(pk=req.pk).update(state="running", lease_until=timezone.now() - timedelta(seconds=1))
    SimFile.objects.filter(transformation=4847, lfn__in=FAILED_LFNS).update(status="Assigned")
    actions.run_request(req.pk)
    req.refresh_from_db()
    assert req.state == "finished" and req.attempts == 1
    assert [r["state"] for r in req.results] == ["duplicate"]
    assert [file_status(lfn) for lfn in FAILED_LFNS] == ["Assigned"] * 3
    assert ActionLog.objects.filter(kind="reassign").count() == 1


def test_a_running_request_under_a_live_lease_is_not_taken_twice(chain_synced, operator_user):
    from datetime import timedelta

    from django.utils import timezone

    from failover.models import ActionRequest

    req, _ = actions.request_action([4847], "reassign", user=operator_user, request_key="a" * 32)
    ActionRequest.objects.filter(pk=req.pk).update(state="running", lease_until=timezone.now() + timedelta(minutes=1))
    assert actions.run_request(req.pk) == actions.HELD
    assert not ActionLog.objects.filter(kind="reassign").exists()


def test_the_result_page_of_an_unknown_request_is_404(operator_client, viewer_client):
    assert operator_client.get(reverse("action_result", args=["flush", "0" * 32])).status_code == 404
    assert operator_client.get(reverse("action_progress", args=["flush", "0" * 32])).status_code == 404
    assert viewer_client.get(reverse("action_progress", args=["flush", "0" * 32])).status_code == 403


def test_a_request_whose_account_was_deleted_is_not_carried_out(chain_synced, operator_user):

    req, _ = actions.request_action([4847], "reassign", user=operator_user, request_key="9" * 32)
    operator_user.delete()
    actions.run_request(req.pk)
    req.refresh_from_db()
    assert req.state == "failed"
    assert req.message == "not carried out: the account otto that confirmed it no longer exists"
    assert [file_status(lfn) for lfn in FAILED_LFNS] == ["Assigned"] * 3


def test_beat_s_tick_puts_a_stalled_request_back_on_the_queue_once_per_lease(chain_synced, operator_user):
    """The confirmation's message was lost (the broker was down): the tick sends it again."""
    from datetime import timedelta

    from django.utils import timezone

    from failover import health, tasks
    from failover.models import ActionRequest

    req, _ = actions.request_action([4847], "reassign", user=operator_user, request_key="7" * 32)
    assert health.check_action_requests().ok  # just confirmed: about to be carried out
    ActionRequest.objects.filter(pk=req.pk).update(created=timezone.now() - timedelta(minutes=5))
    check = health.check_action_requests()
    assert not check.ok and f"action request {req.pk} (reassign, by otto) has waited" in check.detail
    sent = []
    assert actions.requeue_stalled(sent.append) == [req.pk] and sent == [req.pk]
    assert actions.requeue_stalled(sent.append) == [] and sent == [req.pk]  # not again within a lease
    ActionRequest.objects.filter(pk=req.pk).update(requeued_at=None)
    tasks.tick()  # eager here: the request is carried out by the task the tick sends
    req.refresh_from_db()
    assert req.state == "finished" and [r["state"] for r in req.results] == ["done"]
    assert health.check_action_requests() is None  # nothing waits: the check does not apply
    assert [file_status(lfn) for lfn in FAILED_LFNS] == ["Unused"] * 3
