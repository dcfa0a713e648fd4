"""The policy page and the API's description in a real headless Chromium.

An administrator changes the policy with its multi-selects, is told clearly what was wrong, saves,
and finds the change (before and after) in the audit log; a viewer reads the same page without a
save button. Swagger UI renders the generated OpenAPI document with every asset loaded
from the dashboard itself. Screenshots go under var/screenshots/.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from dashboard.models import PolicyChange
from failover import rules
from failover.models import Policy
from tests.factories import chain_scenario, load_scenario, make_user, run_cycle, seed_policy

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__", serialized_rollback=True)

ADMIN_PASSWORD = "admin-pass-for-browser"


@pytest.fixture
def production():
    seed_policy()
    load_scenario(chain_scenario())
    run_cycle([rules.SYNC])


@pytest.fixture
def admin_account(django_user_model, settings, accounts):
    user = make_user(django_user_model, "ada", "admin")
    user.is_staff = True
    user.set_password(ADMIN_PASSWORD)
    user.save()
    return user


def sign_in_as_admin(page) -> None:
    page.d.delete_all_cookies()
    page.open("/accounts/login/")
    page.find("#id_username").send_keys("ada")
    page.find("#id_password").send_keys(ADMIN_PASSWORD)
    page.click("button[type=submit]", shows=".topbar .who")


def test_an_administrator_changes_the_policy_and_finds_it_audited(page, admin_account, production):
    sign_in_as_admin(page)
    page.click_link("Policy", shows="#policy-form")
    assert "Who may do what" in page.text()
    page.shot("policy")

    # A wrong number and a type left out of TransformationTypes: both said, nothing saved.
    flush = Select(page.find("select[name=flush_types]"))
    assert [o.get_attribute("value") for o in flush.all_selected_options] == ["DataReprocessing", "Merging"]
    types = Select(page.find("select[name=transformation_types]"))
    types.select_by_value("Merging")
    page.find("#id_max_reassign").clear()
    page.find("#id_max_reassign").send_keys("1001")
    page.click("#policy-save", shows="#policy-errors")
    errors = page.find("#policy-errors").text
    assert "1001 is too large for a MaxReassign (at most 1000)." in errors
    assert "DataReprocessing is not in TransformationTypes" in errors
    assert Policy.objects.get().max_reassign == 3 and not PolicyChange.objects.exists()
    page.shot("policy-errors")

    # Fixed: the number, and TransformationTypes back to none selected (every type).
    types = Select(page.find("select[name=transformation_types]"))
    assert [o.get_attribute("value") for o in types.all_selected_options] == ["Merging"]  # as posted
    types.deselect_all()
    page.find("#id_max_reassign").clear()
    page.find("#id_max_reassign").send_keys("5")
    propose = page.find("input[name=mode][value=propose]")
    page.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", propose)  # not under the sticky bar
    propose.click()
    page.click("#policy-save", shows=".msg-success")
    assert "Mode, MaxReassign changed" in page.find(".msg-success").text
    policy = Policy.objects.get()
    assert policy.max_reassign == 5 and policy.mode == "propose" and policy.transformation_types == []

    # The audit log lists it; its page shows before and after.
    page.click_link("Audit log", shows="#policy-changes")
    change = PolicyChange.objects.get()
    page.click(f'#policy-changes a[href="/audit/policy/{change.pk}/"]', shows="#policy-diff")
    row = page.find('#policy-diff tr[data-option="MaxReassign"]')
    cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
    assert cells[1:] == ["3", "5"] and "changed" in cells[0]
    assert "changed" not in page.find('#policy-diff tr[data-option="MaxFlush"]').text
    assert "by ada" in page.text()
    page.shot("policy-change")


def test_a_viewer_reads_the_policy_without_changing_it(page, accounts, production):
    page.login("vera")
    page.click_link("Policy", shows="#policy-read-only")
    assert not page.all("#policy-save")
    assert page.find("select[name=flush_types]").get_attribute("disabled") is not None
    assert "only administrators may change it" in page.text()
    page.shot("policy-viewer")


def resources_from_elsewhere(page) -> list[str]:
    here = urlsplit(page.base).netloc
    loaded = page.d.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).concat([location.href])")
    return [u for u in loaded if urlsplit(u).netloc != here]


def test_the_api_description_renders_with_our_own_assets(page, accounts):
    page.login("vera")
    page.click_link("API", shows=".swagger-ui .opblock-summary-path")
    text = page.text()
    assert "Failover Dashboard API" in text and "/api/transformations/" in text
    assert not resources_from_elsewhere(page), resources_from_elsewhere(page)
    statics = page.d.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('/static/'))")
    assert any("drf_spectacular_sidecar" in s for s in statics), statics
    # Every operation of the generated document is there.
    paths = {e.text.replace("\u200b", "") for e in page.all(".opblock-summary-path")}
    assert {"/api/transformations/", "/api/transformations/{tid}/report.csv", "/api/actions/"} <= paths, paths
    page.shot("api-docs")
