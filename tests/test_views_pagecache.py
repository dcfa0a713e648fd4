"""The transformation page's cached parts (dashboard/pagecache.py): kept until a cycle or an action
changes them, and never one user's forms or tokens served to another."""

from __future__ import annotations

import re

import pytest
from django.test import Client, TestCase
from django.urls import reverse

from dashboard.views import transformation as view
from failover.simulated.models import SimJob
from tests.factories import make_user, run_cycle

pytestmark = pytest.mark.django_db(databases="__all__")

URL = reverse("transformation", args=[4847])


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.fixture
def computed(monkeypatch):
    """How often the page computed its stored part instead of taking it from the cache."""
    calls = []
    real = view.stored_part

    def counting(*args, **kwargs):
        calls.append(args[0].transformation_id)
        return real(*args, **kwargs)

    monkeypatch.setattr(view, "stored_part", counting)
    return calls


@pytest.fixture
def eager(settings):
    from dashboard.celery import app

    settings.FAILOVER_ACTION_LOCK_WAIT = 0
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = False


def test_it_computes_the_stored_part_once_between_two_cycles(viewer_client, chain_synced, computed):
    first, second = text(viewer_client.get(URL)), text(viewer_client.get(URL))
    assert computed == [4847]
    tokens = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')  # masked anew on every response
    assert tokens.sub("", first) == tokens.sub("", second)
    assert f"Stored by <strong>cycle {chain_synced.cycle_id}</strong>" in second


def test_a_new_cycle_shows_its_new_numbers(viewer_client, chain_synced, computed):
    before = text(viewer_client.get(URL))
    assert re.search(r'class="r-status st-failed">.*?Total: Failed.*?1 \(33\.3%\)', before)
    assert "Total: Running" not in before
    # DIRAC moves on: the Failed job is rescheduled and now Running; the next cycle stores it.
    SimJob.objects.filter(id=101).update(status="Running", minor_status="Application")
    cycle = run_cycle(["sync"])
    after = text(viewer_client.get(URL))
    assert computed == [4847, 4847]
    assert f"Stored by <strong>cycle {cycle.cycle_id}</strong>" in after
    assert re.search(r'class="r-status st-other">.*?Total: Running.*?1 \(33\.3%\)', after)
    assert "Total: Failed" not in after


def test_an_action_shows_its_outcome(operator_client, chain_synced, computed, eager):
    before = text(operator_client.get(URL))
    assert "No file of this transformation was reassigned." in before
    url = reverse("action", args=["reassign"])
    key = re.search(r'name="request_key" value="([0-9a-f]{32})"',
                    operator_client.get(url, {"t": 4847}).content.decode()).group(1)
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert operator_client.post(url, {"t": 4847, "request_key": key}).status_code == 302
    after = text(operator_client.get(URL))
    assert len(computed) == 2
    assert "3 files reset to Unused" in after  # the action log
    assert "No file of this transformation was reassigned." not in after
    assert '<th class="num">resets</th>' in after  # the retries table, with the files it moved


def test_two_users_never_see_each_others_forms(chain_synced, computed, django_user_model):
    otto = Client()
    otto.force_login(make_user(django_user_model, "otto", "operator"))
    olga = Client()
    olga.force_login(make_user(django_user_model, "olga", "operator"))
    vera = Client()
    vera.force_login(make_user(django_user_model, "vera", "viewer"))

    def token(page: str) -> str:
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    otto_page = otto.get(URL).content.decode()
    olga_page = olga.get(URL).content.decode()
    vera_page = vera.get(URL).content.decode()
    assert computed == [4847]  # one computation served all three
    # Each operator's acknowledge form carries a token of their own session.
    assert token(otto_page) != token(olga_page)
    assert token(otto_page) not in olga_page and token(otto_page) not in vera_page
    assert otto.cookies["csrftoken"].value != olga.cookies["csrftoken"].value
    # The viewer gets neither the operators' form nor their buttons, from the same cached report.
    ack = f'action="{reverse("acknowledge", args=[4847])}"'
    assert ack in otto_page and ack in olga_page and ack not in vera_page
    assert "/actions/reassign/?t=4847" in otto_page and "/actions/reassign/?t=4847" not in vera_page
    assert "Total: Failed" in vera_page and "Total: Failed" in otto_page


def test_an_outage_of_the_store_is_not_kept(viewer_client, chain_synced, monkeypatch):
    from reports.stores import AggregateStoreError

    class Broken:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise AggregateStoreError("OpenSearch at https://os.example does not answer")
            return fail

    with monkeypatch.context() as m:
        m.setattr("dashboard.views.transformation.get_store", lambda: Broken())
        m.setattr("reports.stores.get_store", lambda: Broken())
        down = text(viewer_client.get(URL))
    assert "The stored reports cannot be read now" in down and "Total: Failed" not in down
    back = text(viewer_client.get(URL))  # the store answers again: the same version, the report shown
    assert "The stored reports cannot be read now" not in back
    assert f"Stored by <strong>cycle {chain_synced.cycle_id}</strong>" in back and "Total: Failed" in back


# -- the overview's rows ----------------------------------------------------------------------------


@pytest.fixture
def rendered(monkeypatch):
    """How often the overview rendered its rows instead of taking them from the cache."""
    from dashboard.views import overview

    calls = []
    real = overview.render_to_string

    def counting(name, *args, **kwargs):
        calls.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(overview, "render_to_string", counting)
    return calls


def row_of(page: str, tid: int) -> str:
    return re.search(rf'<tr class="[^"]*" data-id="{tid}">.*?</tr>', page).group(0)


def test_the_overview_rows_change_with_a_cycle_and_an_action(operator_client, chain_synced, rendered, eager):
    overview = reverse("overview")
    first = text(operator_client.get(overview))
    assert "Copy job statuses" in row_of(first, 4847)
    text(operator_client.get(overview))
    assert rendered == ["dashboard/_overview_rows.html"]  # the second one came from the cache
    # An action: 4847's last action becomes the reassign, at once.
    url = reverse("action", args=["reassign"])
    key = re.search(r'name="request_key" value="([0-9a-f]{32})"',
                    operator_client.get(url, {"t": 4847}).content.decode()).group(1)
    with TestCase.captureOnCommitCallbacks(execute=True):
        operator_client.post(url, {"t": 4847, "request_key": key})
    after_action = text(operator_client.get(overview))
    assert "3 files reset to Unused" in row_of(after_action, 4847)
    # A cycle: 4847's Failed job is Running again, and its row says so.
    SimJob.objects.filter(id=101).update(status="Running", minor_status="Application")
    run_cycle(["sync"])
    after_cycle = text(operator_client.get(overview))
    assert "Running 1" in row_of(after_cycle, 4847) and "Running 1" not in row_of(first, 4847)
    assert len(rendered) == 3


def test_the_overview_rows_keep_each_role_its_own_and_fresh_ages(chain_synced, django_user_model, rendered):
    otto = Client()
    otto.force_login(make_user(django_user_model, "otto", "operator"))
    vera = Client()
    vera.force_login(make_user(django_user_model, "vera", "viewer"))
    overview = reverse("overview")
    op, viewer = otto.get(overview).content.decode(), vera.get(overview).content.decode()
    assert 'name="t" value="4847"' in op and 'name="t" value="4847"' not in viewer
    assert len(rendered) == 2  # one rendering per role, never the operator's rows for the viewer
    assert "<!--age:" not in op and "<!--age:" not in viewer
    assert re.search(r"Copy job statuses · (now|[0-9]+\xa0seconds? ago|a minute ago)", text(vera.get(overview)))
