"""Whole pages kept for each user (dashboard/pagecache.py, ``whole_page``): the overview, its polled
table, a transformation's page and the productions list come from the cache until a cycle, an
action, a proposal, an acknowledgement or a policy change moves the data version -- never a stale
page after one of those, never one user's page for another, and never a frozen age or a spent token."""

from __future__ import annotations

import re

import pytest
from django.test import Client, TestCase
from django.urls import reverse

from dashboard.views import (
    overview as overview_view,
    production as production_view,
    transformation as transformation_view,
)
from failover.models import ActionLog, Cycle, Policy, TransformationState
from failover.simulated.models import SimJob
from tests.factories import make_user, run_cycle

pytestmark = pytest.mark.django_db(databases="__all__")

PAGE = reverse("transformation", args=[4847])
OVERVIEW = reverse("overview")
TABLE = reverse("overview_table")
PRODUCTIONS = reverse("productions")


def text(response) -> str:
    assert response.status_code == 200
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.fixture
def computed(monkeypatch):
    """Which pages were computed (not taken whole from the cache), in order."""
    calls = []
    for module, name, label in ((overview_view, "overview_context", "overview"),
                                (transformation_view, "transformation_context", "transformation"),
                                (production_view, "production_rows", "productions")):
        real = getattr(module, name)

        def counting(*args, _real=real, _label=label, **kwargs):
            calls.append(_label)
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, counting)
    return calls


@pytest.fixture
def eager(settings):
    from dashboard.celery import app

    settings.FAILOVER_ACTION_LOCK_WAIT = 0
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = False


def reassign(client) -> None:
    """An operator's confirmed reassign of 4847, carried out at once (eager Celery)."""
    url = reverse("action", args=["reassign"])
    key = re.search(r'name="request_key" value="([0-9a-f]{32})"',
                    client.get(url, {"t": 4847}).content.decode()).group(1)
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert client.post(url, {"t": 4847, "request_key": key}).status_code == 302


def test_each_page_is_computed_once_then_kept(viewer_client, chain_synced, computed):
    for url in (OVERVIEW, TABLE, PAGE, PRODUCTIONS, f"{OVERVIEW}?sort=-failed"):
        first, second = text(viewer_client.get(url)), text(viewer_client.get(url))
        tokens = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
        assert tokens.sub("", first) == tokens.sub("", second)
    assert computed == ["overview", "overview", "transformation", "productions", "overview"]


def test_a_kept_page_carries_a_valid_token_of_the_session(chain_synced, django_user_model, computed):
    """The cached copy holds no token: each response gets a fresh masking of this session's secret,
    which Django's CSRF check accepts (the acknowledge form and the sign-out form post with it)."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user(django_user_model, "otto", "operator"))
    client.get(PAGE)
    pages = [client.get(PAGE).content.decode() for _ in range(2)]
    assert computed == ["transformation"]
    found = [re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', p) for p in pages]
    assert found[0] and found[0][0] != found[1][0]  # masked anew on every response
    assert "<!--live:" not in pages[0] and "<!--live:" not in pages[1]
    ack = client.post(reverse("acknowledge", args=[4847]),
                      {"csrfmiddlewaretoken": found[1][0], "cycle": chain_synced.cycle_id})
    assert ack.status_code == 302
    refused = client.post(reverse("acknowledge", args=[4847]), {"cycle": chain_synced.cycle_id})
    assert refused.status_code == 403


def test_two_users_get_their_own_pages(chain_synced, django_user_model, computed):
    otto, vera = Client(), Client()
    otto.force_login(make_user(django_user_model, "otto", "operator"))
    vera.force_login(make_user(django_user_model, "vera", "viewer"))
    for _ in range(2):
        op, viewer = otto.get(PAGE).content.decode(), vera.get(PAGE).content.decode()
        assert "/actions/reassign/?t=4847" in op and "/actions/reassign/?t=4847" not in viewer
        assert "otto" in op and "otto" not in viewer and "vera" in viewer
    assert computed == ["transformation", "transformation"]


def test_a_new_role_is_a_new_page(chain_synced, django_user_model, computed):
    from django.contrib.auth.models import Group

    user = make_user(django_user_model, "otto", "operator")
    client = Client()
    client.force_login(user)
    assert "/actions/reassign/?t=4847" in client.get(PAGE).content.decode()
    user.groups.set([Group.objects.get(name="viewer")])
    assert "/actions/reassign/?t=4847" not in client.get(PAGE).content.decode()
    assert computed == ["transformation", "transformation"]


def test_a_cycle_shows_its_new_numbers_everywhere(viewer_client, chain_synced, computed):
    before = {url: text(viewer_client.get(url)) for url in (PAGE, OVERVIEW, TABLE, PRODUCTIONS)}
    for url in before:  # kept now
        viewer_client.get(url)
    assert "Total: Running" not in before[PAGE]
    SimJob.objects.filter(id=101).update(status="Running", minor_status="Application")
    cycle = run_cycle(["sync"])
    after = {url: text(viewer_client.get(url)) for url in before}
    assert computed.count("transformation") == 2 and computed.count("overview") == 4
    assert computed.count("productions") == 2
    assert f"Stored by <strong>cycle {cycle.cycle_id}</strong>" in after[PAGE] and "Total: Running" in after[PAGE]
    for url in (OVERVIEW, TABLE):
        assert "Running 1" in after[url] and "Running 1" not in before[url]
        assert f"Cycle {cycle.cycle_id} ·" in after[url] or url == TABLE
    assert after[PRODUCTIONS] != before[PRODUCTIONS]


def test_an_action_shows_its_outcome_at_once(operator_client, chain_synced, computed, eager):
    for url in (PAGE, OVERVIEW):
        assert "3 files reset to Unused" not in text(operator_client.get(url))
        operator_client.get(url)
    reassign(operator_client)
    page, overview = text(operator_client.get(PAGE)), text(operator_client.get(OVERVIEW))
    assert "3 files reset to Unused" in page and "3 files reset to Unused" in overview
    assert computed.count("transformation") == 2 and computed.count("overview") == 2


def test_a_proposal_and_its_rejection_show_at_once(operator_client, chain_proposed, computed):
    waiting = ActionLog.objects.filter(state=ActionLog.State.PROPOSED)
    n = waiting.count()
    assert n >= 2
    count = re.compile(r'Proposals <span class="count">([0-9]+)</span>')
    for url in (OVERVIEW, PAGE):
        assert count.search(text(operator_client.get(url))).group(1) == str(n)
        operator_client.get(url)
    first = waiting.order_by("id").first()
    operator_client.post(reverse("proposals_decide"), {"decision": "reject", "proposals": [first.pk],
                                                       "reason": "not now"})
    for url in (OVERVIEW, PAGE):
        assert count.search(text(operator_client.get(url))).group(1) == str(n - 1)
    # A new proposal (the next cycle proposes again what is still to do) shows too.
    operator_client.get(OVERVIEW)
    run_cycle()
    assert int(count.search(text(operator_client.get(OVERVIEW))).group(1)) == waiting.count() >= n - 1
    # The first overview after the rejection shows its flash message (so is not kept): 4, not 3.
    assert computed.count("overview") == 4 and computed.count("transformation") == 2


def test_a_policy_change_on_the_page_shows_at_once(admin_client, chain_synced, computed):
    from tests.test_policy_page import form_data

    policy = Policy.objects.get(name="default")
    assert policy.reassign_types
    assert "/actions/reassign/?t=4847" in admin_client.get(PAGE).content.decode()
    admin_client.get(PAGE)
    r = admin_client.post(reverse("policy"), form_data(policy, reassign_types=[]))
    assert r.status_code == 302
    assert "/actions/reassign/?t=4847" not in admin_client.get(PAGE).content.decode()
    assert computed == ["transformation", "transformation"]


def test_switching_the_policy_in_use_shows_at_once(operator_client, chain_synced, computed):
    """``failover import-config`` switches policies with an UPDATE (no ``updated`` stamp): it shows too."""
    assert "/actions/reassign/?t=4847" in operator_client.get(PAGE).content.decode()
    operator_client.get(PAGE)
    Policy.objects.create(name="other", reassign_types=[], enabled=False)
    page = operator_client.get(PAGE).content.decode()
    assert "/actions/reassign/?t=4847" in page  # a disabled policy changes nothing shown, but the version
    Policy.objects.filter(name="default").update(enabled=False)
    Policy.objects.filter(name="other").update(enabled=True)
    assert "/actions/reassign/?t=4847" not in operator_client.get(PAGE).content.decode()
    assert computed == ["transformation", "transformation", "transformation"]


def test_an_acknowledgement_and_its_message_show_once(operator_client, chain_synced, computed):
    operator_client.get(PAGE)
    operator_client.get(PAGE)
    r = operator_client.post(reverse("acknowledge", args=[4847]), {"cycle": chain_synced.cycle_id}, follow=True)
    shown = text(r)
    assert f"Report of cycle {chain_synced.cycle_id} acknowledged" in shown
    again = text(operator_client.get(PAGE))
    assert "acknowledged" in again and f"Report of cycle {chain_synced.cycle_id} acknowledged" not in again
    assert f"acknowledged cycle {chain_synced.cycle_id}" in again
    assert computed == ["transformation", "transformation", "transformation"]


def test_nothing_is_kept_while_a_cycle_runs(viewer_client, chain_synced, computed):
    running = Cycle.objects.create(trigger=Cycle.Trigger.BEAT)
    for _ in range(2):
        viewer_client.get(PAGE)
        viewer_client.get(OVERVIEW)
    assert computed == ["transformation", "overview"] * 2
    Cycle.objects.filter(pk=running.pk).update(state=Cycle.State.FINISHED)
    viewer_client.get(OVERVIEW)
    viewer_client.get(OVERVIEW)
    assert computed.count("overview") == 3


def test_a_page_showing_a_lock_is_not_kept(viewer_client, chain_synced, computed):
    from datetime import timedelta

    from django.utils import timezone

    TransformationState.objects.filter(transformation_id=4847).update(
        locked_by="cycle-gone", locked_until=timezone.now() + timedelta(minutes=5))
    assert "locked by cycle-gone" in text(viewer_client.get(PAGE))
    assert "locked by cycle-gone" in text(viewer_client.get(PAGE))
    assert computed == ["transformation", "transformation"]


def test_ages_and_the_time_are_filled_in_on_each_response(viewer_client, chain_synced, computed):
    first = text(viewer_client.get(TABLE))
    second = text(viewer_client.get(TABLE))
    assert computed == ["overview"]
    for page in (first, second):
        assert "<!--live:" not in page
        assert re.search(r"updated [0-9]{2}:[0-9]{2}:[0-9]{2} UTC", page)
        assert re.search(r"Copy job statuses · (now|[0-9]+\xa0seconds? ago|a minute ago)", page)
    page = text(viewer_client.get(PAGE))
    assert re.search(r"seen (now|[0-9]+\xa0seconds? ago|a minute ago)", page)
    assert re.search(r"Cycle [0-9]+ · (now|[0-9]+\xa0seconds? ago|a minute ago)", page)
