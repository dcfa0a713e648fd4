"""``/policy/``: everyone with a role reads the policy, administrators change it, every change audited."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from dashboard.models import PolicyChange
from dashboard.policy_form import snapshot
from failover.models import Policy

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def policy(chain_synced):
    return Policy.objects.get(name="default")


def form_data(policy: Policy, **changes) -> dict:
    """What the page posts for ``policy`` as it is, with ``changes``."""
    data = {**snapshot(policy), "version": policy.updated.isoformat() if policy.updated else ""}
    data["mail_to"] = ", ".join(data["mail_to"])
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_it_shows_the_policy_and_the_roles_to_every_role(viewer_client, operator_client, admin_client, policy):
    for client in (viewer_client, operator_client, admin_client):
        r = client.get(reverse("policy"))
        assert r.status_code == 200
        html = r.content.decode()
        assert "Policy: default" in html and 'id="policy-in-use"' in html
        assert 'id="roles"' in html and all(f"<dt>{role}</dt>" in html for role in ("viewer", "operator", "admin"))
        # Multi-selects, with the policy's values selected.
        assert re.search(r'<select name="flush_types"[^>]*multiple', html)
        assert re.search(r'<option value="Merging" selected>', html)
        assert re.search(r'<select name="transformation_statuses"[^>]*multiple', html)


def test_viewers_and_operators_read_it_without_a_save_button(viewer_client, operator_client, policy):
    for client in (viewer_client, operator_client):
        html = client.get(reverse("policy")).content.decode()
        assert 'id="policy-read-only"' in html and 'id="policy-save"' not in html
        assert re.search(r'<select name="flush_types"[^>]*disabled', html)


def test_it_wants_a_signed_in_account_with_a_role(anon_client, norole_client, policy):
    r = anon_client.get(reverse("policy"))
    assert r.status_code == 302 and r["Location"].startswith(reverse("login"))
    assert norole_client.get(reverse("policy")).status_code == 403


def test_only_administrators_may_change_it(viewer_client, operator_client, anon_client, policy):
    before = snapshot(policy)
    for client in (viewer_client, operator_client):
        r = client.post(reverse("policy"), form_data(policy, max_reassign="7"))
        assert r.status_code == 403 and "Only administrators may change the policy" in r.content.decode()
    assert anon_client.post(reverse("policy"), form_data(policy, max_reassign="7")).status_code == 302
    policy.refresh_from_db()
    assert snapshot(policy) == before and not PolicyChange.objects.exists()


def test_an_administrators_change_is_saved_and_audited(admin_client, policy):
    before = snapshot(policy)
    r = admin_client.post(reverse("policy"), form_data(
        policy, max_reassign="5", flush_types=["Merging"], transformation_statuses=["Active", "Flush"],
        mode="propose", mail_to="a@example.org, b@example.org"), follow=True)
    assert r.status_code == 200
    assert "MaxReassign" in r.content.decode() and "saved" in r.content.decode()
    policy.refresh_from_db()
    assert policy.max_reassign == 5 and policy.flush_types == ["Merging"] and policy.mode == "propose"
    assert policy.transformation_statuses == ["Active", "Flush"]
    assert policy.mail_to == ["a@example.org", "b@example.org"]
    change = PolicyChange.objects.get()
    assert change.actor == "ada" and change.user.username == "ada" and change.policy == policy
    assert change.before == before and change.after == snapshot(policy)
    assert change.changed == ["mode", "transformation_statuses", "flush_types", "max_reassign", "mail_to"]


def test_the_change_is_in_the_audit_log_with_before_and_after(admin_client, viewer_client, policy):
    admin_client.post(reverse("policy"), form_data(policy, max_flush="4"))
    change = PolicyChange.objects.get()
    audit = viewer_client.get(reverse("audit")).content.decode()
    assert 'id="policy-changes"' in audit and reverse("audit_policy_change", args=[change.pk]) in audit
    page = viewer_client.get(reverse("audit_policy_change", args=[change.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    row = re.search(r'<tr data-option="MaxFlush" class="row-changed">(.*?)</tr>', html, re.S).group(1)
    assert re.search(r"<td>2</td>\s*<td>4</td>", row)
    assert '<tr data-option="MaxReassign" class="row-same">' in html
    assert "by ada" in html
    # Filtering the audit log by what a policy change has not (a kind) leaves it out.
    assert 'id="policy-changes"' not in viewer_client.get(reverse("audit"), {"kind": "flush"}).content.decode()
    assert 'id="policy-changes"' not in viewer_client.get(reverse("audit"), {"actor": "otto"}).content.decode()
    assert viewer_client.get(reverse("audit_policy_change", args=[change.pk + 100])).status_code == 404


@pytest.mark.parametrize("changes, field, message", [
    ({"max_reassign": "abc"}, "MaxReassign", "Enter a whole number, digits 0-9 only: abc is not a MaxReassign."),
    ({"max_reassign": "-1"}, "MaxReassign", "is not a MaxReassign"),
    ({"max_flush": "1001"}, "MaxFlush", "1001 is too large for a MaxFlush (at most 1000)."),
    ({"polling_time": "0"}, "PollingTime", "A PollingTime in seconds is at least 1; 0 is not."),
    ({"polling_time": ""}, "PollingTime", "Give a PollingTime in seconds: a whole number."),
    ({"transformation_statuses": []}, "TransformationStatus", "Select at least one status"),
    ({"transformation_statuses": ["Bogus"]}, "TransformationStatus", "Select a valid choice. Bogus"),
    ({"transformation_types": ["Merging"], "flush_types": ["DataReprocessing", "Merging"]}, "Flush",
     "DataReprocessing is not in TransformationTypes, so never treated"),
    ({"mail_to": "ops@example.org, not-an-address"}, "MailTo", "Not an e-mail address: not-an-address."),
    ({"mode": "sometimes"}, "Mode", "Select a valid choice"),
])
def test_it_refuses_bad_values_with_a_clear_message(admin_client, policy, changes, field, message):
    before = snapshot(policy)
    r = admin_client.post(reverse("policy"), form_data(policy, **changes))
    assert r.status_code == 200
    html = r.content.decode()
    errors = re.search(r'<div class="form-errors" role="alert" id="policy-errors">(.*?)</div>', html, re.S).group(1)
    assert f"<strong>{field}</strong>" in errors and message in html.replace("&quot;", '"'), errors
    policy.refresh_from_db()
    assert snapshot(policy) == before and not PolicyChange.objects.exists()


def test_saving_the_same_values_writes_no_audit_entry(admin_client, policy):
    r = admin_client.post(reverse("policy"), form_data(policy), follow=True)
    assert "Nothing changed" in r.content.decode() and not PolicyChange.objects.exists()
    # A multi-select sends its options in their own order: the same types in another order are no change.
    assert policy.complete_types == ["DataReprocessing", "Merging", "Training", "ApplyModel"]
    r = admin_client.post(reverse("policy"), form_data(policy, complete_types=sorted(policy.complete_types)),
                          follow=True)
    assert "Nothing changed" in r.content.decode() and not PolicyChange.objects.exists()
    policy.refresh_from_db()
    assert policy.complete_types == ["DataReprocessing", "Merging", "Training", "ApplyModel"]


def test_a_save_over_someone_elses_change_is_refused(admin_client, policy):
    data = form_data(policy, max_reassign="9")
    admin_client.post(reverse("policy"), form_data(policy, max_flush="5"))  # another tab, saved first
    r = admin_client.post(reverse("policy"), data)
    assert r.status_code == 200 and "since you opened this page" in r.content.decode()
    policy.refresh_from_db()
    assert policy.max_reassign == 3 and policy.max_flush == 5 and PolicyChange.objects.count() == 1


def test_it_edits_another_stored_policy_by_its_number(admin_client, policy):
    other = Policy.objects.create(name="night", enabled=False, max_flush=1, flush_types=["Merging"])
    html = admin_client.get(reverse("policy")).content.decode()
    assert reverse("policy_edit", args=[other.pk]) in html
    assert "not in use" in admin_client.get(reverse("policy_edit", args=[other.pk])).content.decode()
    admin_client.post(reverse("policy_edit", args=[other.pk]), form_data(other, max_flush="3"))
    other.refresh_from_db()
    policy.refresh_from_db()
    assert other.max_flush == 3 and policy.max_flush == 2
    assert PolicyChange.objects.get().policy_name == "night"
    assert admin_client.get(reverse("policy_edit", args=[other.pk + 100])).status_code == 404


def test_with_no_policy_stored_the_first_save_stores_the_defaults_changed(admin_client):
    assert not Policy.objects.exists()
    html = admin_client.get(reverse("policy")).content.decode()
    assert "Policy: default" in html
    default = Policy(name="default")
    r = admin_client.post(reverse("policy"), form_data(default, max_reassign="4"))
    assert r.status_code == 302
    stored = Policy.objects.get()
    assert stored.max_reassign == 4 and PolicyChange.objects.get().before["max_reassign"] == 2


def test_the_audit_entry_shows_its_details_as_a_table(viewer_client, chain_proposed):
    from failover.models import ActionLog

    action = ActionLog.objects.get(kind="reassign")
    html = viewer_client.get(reverse("audit_entry", args=[action.pk])).content.decode()
    table = re.search(r'<div class="table-wrap" id="details">(.*?)</div>', html, re.S).group(1)
    assert '<th scope="row">tasks</th>' in table and "<li>/p/a1.h5</li>" in table
    # The jobs of the tasks: one row each, a column per field.
    assert '<th scope="col">minor status</th>' in table and "Received Kill signal" in table
    assert "<details" in html  # the raw JSON only folded away, for experts



def test_the_top_bar_marks_the_policy_page_only_on_it(admin_client, policy):
    active = re.compile(r'<a href="/policy/" class="active">Policy</a>')
    assert active.search(admin_client.get(reverse("policy")).content.decode())
    admin_client.post(reverse("policy"), form_data(policy, max_flush="4"))
    change = PolicyChange.objects.get()
    html = admin_client.get(reverse("audit_policy_change", args=[change.pk])).content.decode()
    assert not active.search(html) and '<a href="/policy/">Policy</a>' in html


def test_the_change_is_in_the_audit_csv_with_what_changed(admin_client, viewer_client, policy):
    import csv
    import io

    admin_client.post(reverse("policy"), form_data(policy, max_flush="4", flush_types=["Merging"]))
    change = PolicyChange.objects.get()
    r = viewer_client.get(reverse("audit_csv"))
    rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode())))
    actions = [row for row in rows if row["entry"] == "action"]
    [row] = [row for row in rows if row["entry"] == "policy_change"]
    assert actions and all(row["kind"] != "policy" for row in actions)  # the cycle's sync, as before
    assert (row["id"], row["kind"], row["state"], row["actor"], row["policy"]) == (
        str(change.pk), "policy", "done", "ada", "default")
    assert row["transformation"] == "" and row["created"] == change.created.isoformat()
    assert row["reason"] == "policy default edited on the policy page"
    assert row["outcome"] == "changed Flush, MaxFlush"
    assert row["changes"] == "Flush: [DataReprocessing, Merging] -> [Merging]; MaxFlush: 2 -> 4"
    assert rows[0]["entry"] == "policy_change"  # newest first, merged with the actions by time
    # Filtered as on the page: by a kind or a transformation, the policy changes are left out; by actor, kept.
    for params in ({"kind": "sync"}, {"transformation": 4847}):
        body = b"".join(viewer_client.get(reverse("audit_csv"), params).streaming_content).decode()
        assert "policy_change" not in body
    body = b"".join(viewer_client.get(reverse("audit_csv"), {"actor": "ada"}).streaming_content).decode()
    assert [r["entry"] for r in csv.DictReader(io.StringIO(body))] == ["policy_change"]
