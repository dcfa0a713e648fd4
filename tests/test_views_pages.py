"""The read-only pages: who may see them, what they show, bad ids and bad input."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from dashboard.models import Acknowledgement
from failover import attention, blockers
from failover.blockers import Blocker
from failover.models import ActionLog, BlockerRecord, TransformationState
from tests.factories import make_user, run_cycle

pytestmark = pytest.mark.django_db(databases="__all__")

PAGES = [
    reverse("overview"),
    reverse("overview_table"),
    reverse("attention"),
    reverse("transformation", args=[4847]),
    reverse("transformation_jobs", args=[4847]),
    reverse("transformation_files", args=[4847]),
    reverse("productions"),
    reverse("production", args=[7]),
    reverse("proposals"),
    reverse("audit"),
    reverse("audit_csv"),
]


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.mark.parametrize("url", PAGES)
def test_it_sends_anonymous_users_to_login(anon_client, url):
    r = anon_client.get(url)
    assert r.status_code == 302
    assert r["Location"].startswith(reverse("login") + "?next=")


@pytest.mark.parametrize("url", PAGES)
def test_it_refuses_accounts_without_a_role(norole_client, url):
    r = norole_client.get(url)
    assert r.status_code == 403
    assert "no role" in text(r)


@pytest.mark.parametrize("url", PAGES)
def test_it_shows_every_page_to_viewers_and_operators(viewer_client, operator_client, chain_synced, url):
    assert viewer_client.get(url).status_code == 200
    assert operator_client.get(url).status_code == 200


@pytest.mark.parametrize("url", PAGES)
def test_it_answers_405_to_post_on_read_only_pages(operator_client, url):
    assert operator_client.post(url).status_code == 405


def test_it_shows_the_login_page(anon_client):
    r = anon_client.get(reverse("login"))
    assert r.status_code == 200
    assert 'name="username"' in text(r) and 'name="password"' in text(r)


def test_it_logs_in_with_the_form_and_lands_on_the_overview(anon_client, django_user_model, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = make_user(django_user_model, "pat", "viewer")
    user.set_password("s3cret-pass")
    user.save()
    r = anon_client.post(reverse("login"), {"username": "pat", "password": "s3cret-pass"})
    assert r.status_code == 302 and r["Location"] == reverse("overview")
    bad = Client().post(reverse("login"), {"username": "pat", "password": "wrong"})
    assert bad.status_code == 200 and "correct username and password" in text(bad)


def test_it_keeps_health_out_of_login(anon_client):
    # /health/ belongs to the operations side; whatever answers there, it is not the login page.
    r = anon_client.get("/health/")
    assert not (r.status_code == 302 and reverse("login") in r.get("Location", ""))


# -- overview -----------------------------------------------------------------------------------


def test_it_lists_the_transformations_with_their_columns(viewer_client, chain_synced):
    r = viewer_client.get(reverse("overview"))
    page = text(r)
    for tid in (4846, 4847, 4848):
        assert f'href="/transformations/{tid}/"' in page
    assert "step2" in page and "Merging" in page and "Active" in page
    # Files Processed/Total of 4847: 1 of 5 files.
    assert "<strong>1</strong> / 5" in page
    # Jobs by status and the failed share (1 Failed + 1 Killed of 3 jobs).
    assert "Failed 1" in page and "Killed 1" in page and "66.7%" in page
    # Last action, written by the sync.
    assert "Copy job statuses" in page


def test_it_filters_searches_and_sorts(viewer_client, chain_synced):
    ids = lambda r: [int(x) for x in re.findall(r'data-id="(\d+)"', r.content.decode())]  # noqa: E731
    url = reverse("overview_table")
    assert ids(viewer_client.get(url, {"type": "Merging"})) == [4847, 4848]
    assert ids(viewer_client.get(url, {"status": "Active", "type": "DataReprocessing"})) == [4846]
    assert ids(viewer_client.get(url, {"production": 7})) == [4846, 4847, 4848]
    assert ids(viewer_client.get(url, {"production": 8})) == []
    assert ids(viewer_client.get(url, {"q": "4848"})) == [4848]
    assert ids(viewer_client.get(url, {"q": "STEP2"})) == [4847]
    assert ids(viewer_client.get(url, {"sort": "-id"})) == [4848, 4847, 4846]
    assert ids(viewer_client.get(url, {"sort": "-failed"}))[0] == 4847
    assert ids(viewer_client.get(url, {"sort": "-files"}))[0] == 4846
    for key in ("name", "type", "status", "parent", "production", "jobs", "reassigned", "action", "attention"):
        assert sorted(ids(viewer_client.get(url, {"sort": key}))) == [4846, 4847, 4848]
        assert sorted(ids(viewer_client.get(url, {"sort": f"-{key}"}))) == [4846, 4847, 4848]


def test_it_filters_on_needs_attention(viewer_client, chain_synced):
    attention.save_blockers(4848, [Blocker(blockers.AT_CAP, "the words do not matter", count=2, limit=3)])
    r = viewer_client.get(reverse("overview_table"), {"attention": "on"})
    assert re.findall(r'data-id="(\d+)"', r.content.decode()) == ["4848"]
    assert "reassign cap" in text(r)


def test_it_shows_bad_filters_as_form_errors_and_applies_the_others(viewer_client, chain_synced):
    r = viewer_client.get(reverse("overview"), {"type": "Bogus", "production": "x", "sort": "nope", "status": "Active"})
    assert r.status_code == 200
    page = text(r)
    assert "Select a valid choice" in page and "Enter a whole number" in page
    assert re.findall(r'data-id="(\d+)"', r.content.decode()) == ["4846", "4847", "4848"]


def test_it_paginates_in_the_database(viewer_client, django_assert_max_num_queries):
    TransformationState.objects.bulk_create(
        TransformationState(transformation_id=i, name=f"t{i}", type="Merging", status="Active") for i in range(1, 131)
    )
    with django_assert_max_num_queries(25):
        r = viewer_client.get(reverse("overview"), {"page": 3})
    ids = re.findall(r'data-id="(\d+)"', r.content.decode())
    assert ids[0] == "101" and len(ids) == 30
    assert "page 3 of 3" in text(r)
    assert viewer_client.get(reverse("overview"), {"page": "zzz"}).status_code == 200


def test_it_refreshes_with_a_server_rendered_fragment(viewer_client, chain_synced):
    page = text(viewer_client.get(reverse("overview")))
    assert f'data-src="{reverse("overview_table")}"' in page
    fragment = viewer_client.get(reverse("overview_table"), {"type": "Merging"})
    assert fragment.status_code == 200 and fragment["Content-Type"].startswith("text/html")
    assert "<html" not in fragment.content.decode()


def test_it_hides_action_buttons_from_viewers(viewer_client, operator_client, chain_synced):
    for url in (reverse("overview"), reverse("transformation", args=[4847])):
        seen = viewer_client.get(url)
        # The viewer sees the page itself (a 500 would hide the buttons too), only not the buttons.
        assert seen.status_code == 200 and 'href="/transformations/4847/' in seen.content.decode()
        assert "/actions/flush/" not in seen.content.decode()
        assert "/actions/flush/" in operator_client.get(url).content.decode()


# -- transformation page --------------------------------------------------------------------------


def test_it_shows_the_report_like_the_agent_mail(viewer_client, chain_synced):
    r = viewer_client.get(reverse("transformation", args=[4847]))
    page = text(r)
    cycle = chain_synced.cycle_id
    assert f"Stored by <strong>cycle {cycle}</strong>" in page
    # Subtotal rows with percentages, in the seed mail's order, Done green and Failed red.
    assert "Total: Maximum of reschedulings reached" in page
    assert re.search(r'class="r-status st-done">.*?Total: Done.*?1 \(33\.3%\)', page)
    assert re.search(r'class="r-status st-failed">.*?Total: Failed.*?1 \(33\.3%\)', page)
    assert re.search(r'class="r-status st-failed">.*?Total: Killed.*?1 \(33\.3%\)', page)
    assert re.search(r"Total # tasks:.*?>3<", page)
    # Each row links to the jobs behind it.
    assert "/transformations/4847/jobs/?status=Failed&amp;minor_status=Maximum+of+reschedulings+reached" in page


def test_it_shows_file_counts_and_the_action_log(viewer_client, chain_synced):
    page = text(viewer_client.get(reverse("transformation", args=[4847])))
    assert "Files by status" in page and "Assigned</td>" in page
    assert "Copy job statuses" in page and "3 tasks set" not in page  # 4847 had 3 tasks behind, in 2 groups
    assert re.search(r"Copy job statuses.*?done.*?system", page)


def test_it_answers_404_with_a_message_for_unknown_ids(viewer_client, chain_synced):
    for url, words in [
        (reverse("transformation", args=[999]), "Transformation 999 is unknown"),
        (reverse("transformation_jobs", args=[999]), "Transformation 999 is unknown"),
        (reverse("transformation_files", args=[999]), "Transformation 999 is unknown"),
        (reverse("production", args=[99]), "Production 99 is unknown"),
        (reverse("audit_entry", args=[12345]), "Action 12345 does not exist"),
        (reverse("transformation", args=[4847]) + "?cycle=9999", "no report stored by cycle 9999"),
        ("/no/such/page/", "There is no page"),
    ]:
        r = viewer_client.get(url)
        assert r.status_code == 404, url
        assert words in text(r), url
        assert "Traceback" not in text(r)


def test_it_shows_a_past_report_by_permalink(viewer_client, chain_synced):
    first = chain_synced.cycle_id
    run_cycle(["sync"])
    page = text(viewer_client.get(reverse("transformation", args=[4847]), {"cycle": first}))
    assert f"Stored by <strong>cycle {first}</strong>" in page and "past report" in page
    bad = viewer_client.get(reverse("transformation", args=[4847]), {"cycle": "abc"})
    assert bad.status_code == 200 and "Enter a whole number" in text(bad)


def test_it_shows_the_charts_data_and_serves_plotly_locally(viewer_client, chain_synced):
    page = viewer_client.get(reverse("transformation", args=[4847])).content.decode()
    assert 'id="chart-states-data"' in page and 'id="chart-failures-data"' in page
    assert '"stackgroup": "jobs"' in page
    assert "/static/plotly/plotly-basic.min.js" in page and "cdn" not in page.lower()


def test_it_shows_the_difference_since_the_acknowledged_report(operator_client, chain_synced):
    first = chain_synced.cycle_id
    url = reverse("transformation", args=[4847])
    r = operator_client.post(reverse("acknowledge", args=[4847]), {"cycle": first})
    assert r.status_code == 302
    ack = Acknowledgement.objects.get()
    assert ack.cycle_id == first and ack.user.username == "otto"
    # The jobs move on: the Failed job is rescheduled and now Running.
    from failover.simulated.models import SimJob

    SimJob.objects.filter(id=101).update(status="Running", minor_status="Application")
    run_cycle(["sync"])
    page = text(operator_client.get(url))
    assert f"acknowledged cycle {first}" in page
    assert re.search(r"Failed.*?all.*?>1<.*?>0<.*?>-1<", page)
    assert re.search(r"Running.*?all.*?>0<.*?>1<.*?>\+1<", page)


def test_it_refuses_a_bad_acknowledgement(operator_client, viewer_client, chain_synced):
    url = reverse("acknowledge", args=[4847])
    r = operator_client.post(url, {"cycle": 9999})
    assert r.status_code == 400 and "no report stored by cycle 9999" in text(r)
    assert operator_client.post(url, {}).status_code == 400
    assert viewer_client.post(url, {"cycle": chain_synced.cycle_id}).status_code == 403
    assert operator_client.get(url).status_code == 405
    assert operator_client.post(reverse("acknowledge", args=[999]), {"cycle": 1}).status_code == 404
    assert not Acknowledgement.objects.exists()


def test_it_lists_the_jobs_and_files_behind_a_report_row(viewer_client, chain_synced):
    r = viewer_client.get(reverse("transformation_jobs", args=[4847]), {"status": "Failed"})
    page = text(r)
    assert "101" in page and "/p/a1.h5" in page and "/p/a2.h5" in page
    assert "/p/k1.h5" not in page  # the Killed job's file
    assert "1 job" in page


def test_it_shows_the_retry_history_of_reassigned_files(viewer_client, operator_user, chain_synced):
    from failover import actions

    actions.execute([4847], "reassign", user=operator_user, request_key="a" * 32)
    page = text(viewer_client.get(reverse("transformation", args=[4847])))
    assert "/p/a1.h5" in page and "task 1" in page and "task 2" in page
    files = text(viewer_client.get(reverse("transformation_files", args=[4847])))
    # Job and site of each reset come from DIRAC's tasks and jobs.
    assert "/p/k1.h5" in files and "102" in files and "LCG.GRIF.fr" in files and "Killed" in files


# -- production, attention, audit -----------------------------------------------------------------


def test_it_draws_the_production_chain_with_blockers_in_words(viewer_client, chain_synced):
    page = text(viewer_client.get(reverse("production", args=[7])))
    assert page.count('class="step ') == 3
    assert page.count('class="edge"') == 2
    # 4846 has all its files Processed but is not Completed yet; the others wait for their parent.
    assert "all files processed" in page
    assert "waiting for 4846 to complete" in page
    assert "waiting for 4847 to complete" in page


def test_it_lists_attention_items_with_their_fix(operator_client, viewer_client, chain_synced):
    attention.save_blockers(4848, [Blocker(blockers.FLUSH_LIMIT, "flush words", count=1, limit=2)])
    page = text(operator_client.get(reverse("attention")))
    assert "Flush limit reached" in page and "flush words" in page
    proposal = ActionLog.objects.create(transformation_id=4847, kind="reassign", state="proposed", reason="r")
    page = text(operator_client.get(reverse("attention")))
    assert "Proposal waiting" in page and "Review proposal" in page
    seen = viewer_client.get(reverse("attention"))
    assert seen.status_code == 200 and "Proposal waiting" in text(seen) and "Review proposal" not in text(seen)
    only = text(operator_client.get(reverse("attention"), {"code": "proposal"}))
    assert f'href="/transformations/{proposal.transformation_id}/"' in only
    assert "flush words" not in only


def test_it_filters_the_audit_log_and_exports_csv(viewer_client, chain_synced):
    r = viewer_client.get(reverse("audit"), {"transformation": 4847, "kind": "sync"})
    assert r.status_code == 200 and "Copy job statuses" in text(r)
    assert "1 action" in text(r)
    none = viewer_client.get(reverse("audit"), {"kind": "flush"})
    assert "0 actions" in text(none)
    bad = viewer_client.get(reverse("audit"), {"since": "2024-13-40", "transformation": "x"})
    assert bad.status_code == 200 and "Enter a valid date" in text(bad) and "Enter a whole number" in text(bad)
    csv = viewer_client.get(reverse("audit_csv"), {"transformation": 4847})
    body = b"".join(csv.streaming_content).decode()
    assert csv["Content-Type"].startswith("text/csv") and "attachment" in csv["Content-Disposition"]
    lines = body.strip().splitlines()
    assert lines[0].startswith("id,created,finished,transformation,kind,state,actor")
    assert len(lines) == 2 and ",4847,sync,done,system," in lines[1]


def test_it_shows_one_audit_entry(viewer_client, chain_synced):
    action = ActionLog.objects.filter(transformation_id=4847).first()
    page = text(viewer_client.get(reverse("audit_entry", args=[action.pk])))
    assert f"Action {action.pk}" in page and "Copy job statuses" in page and "&quot;tasks&quot;" in page


def test_it_says_when_the_stored_reports_cannot_be_read(viewer_client, chain_synced, monkeypatch):
    from reports.stores import AggregateStoreError

    class Broken:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise AggregateStoreError("OpenSearch at https://os.example does not answer")
            return fail

    monkeypatch.setattr("dashboard.views.transformation.get_store", lambda: Broken())
    monkeypatch.setattr("reports.stores.get_store", lambda: Broken())
    r = viewer_client.get(reverse("transformation", args=[4847]))
    assert r.status_code == 200
    assert "The stored reports cannot be read now: OpenSearch at https://os.example does not answer" in text(r)
    assert "Files by status" in text(r)  # the rest of the page is still there
    api = viewer_client.get(reverse("api_report", args=[4847]))
    assert api.status_code == 502 and "does not answer" in api.json()["error"]


def test_it_paginates_the_attention_list_in_the_database(viewer_client, django_assert_max_num_queries):
    TransformationState.objects.bulk_create(
        TransformationState(transformation_id=i, status="Active") for i in range(1, 121)
    )
    BlockerRecord.objects.bulk_create(
        BlockerRecord.of(i, 0, Blocker(blockers.AT_CAP, f"{i} files", count=i, limit=3)) for i in range(1, 121)
    )
    with django_assert_max_num_queries(30):
        r = viewer_client.get(reverse("attention"), {"page": 3, "code": "at_cap"})
    page = text(r)
    assert "page 3 of 3" in page and 'href="/transformations/101/"' in page and 'href="/transformations/1/"' not in page
    assert "Files at their reassign cap <span class=\"count\">120</span>" in page
    api = viewer_client.get(reverse("api_attention"), {"page": 2, "page_size": 100}).json()
    assert api["count"] == 120 and api["pages"] == 2 and len(api["results"]) == 20


def test_it_lets_administrators_edit_policies_in_the_admin(admin_client, operator_client, chain_synced):
    from failover.models import Policy

    policy = Policy.objects.get()
    r = admin_client.get(reverse("admin:failover_policy_change", args=[policy.pk]))
    assert r.status_code == 200 and "MaxFlush" in r.content.decode()
    assert operator_client.get(reverse("admin:failover_policy_change", args=[policy.pk])).status_code == 302
