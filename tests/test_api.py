"""The JSON API: roles, filters, the report contract, downloads, errors, OpenAPI."""

from __future__ import annotations

import base64
import io
import json

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, get_resolver, reverse

from failover.models import ActionLog
from tests.factories import make_user

pytestmark = pytest.mark.django_db(databases="__all__")

ENDPOINTS = [
    reverse("api_transformations"),
    reverse("api_transformation", args=[4847]),
    reverse("api_report", args=[4847]),
    reverse("api_report_download", args=[4847, "csv"]),
    reverse("api_report_download", args=[4847, "json"]),
    reverse("api_attention"),
    reverse("api_actions"),
    reverse("api_proposals"),
    reverse("api_openapi"),
]


def manage_report_json(tid: int, *args: str) -> dict:
    out = io.StringIO()
    call_command("report", str(tid), "--format", "json", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.parametrize("url", ENDPOINTS)
def test_it_answers_401_to_anonymous_users(anon_client, url):
    r = anon_client.get(url)
    assert r.status_code == 401 and "authentication required" in r.json()["error"]
    assert r["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize("url", ENDPOINTS)
def test_it_answers_403_to_accounts_without_a_role(norole_client, url):
    assert norole_client.get(url).status_code == 403


@pytest.mark.parametrize("url", ENDPOINTS)
def test_it_answers_viewers(viewer_client, chain_synced, url):
    assert viewer_client.get(url).status_code == 200


@pytest.mark.parametrize("url", ENDPOINTS)
def test_it_is_read_only(operator_client, url):
    r = operator_client.post(url)
    assert r.status_code == 405 and "read-only" in r.json()["error"]


def test_it_accepts_http_basic_authentication(django_user_model, chain_synced, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = make_user(django_user_model, "script", "viewer")
    user.set_password("pw-for-scripts")
    user.save()
    auth = "Basic " + base64.b64encode(b"script:pw-for-scripts").decode()
    assert Client().get(reverse("api_transformations"), HTTP_AUTHORIZATION=auth).status_code == 200
    wrong = "Basic " + base64.b64encode(b"script:nope").decode()
    assert Client().get(reverse("api_transformations"), HTTP_AUTHORIZATION=wrong).status_code == 401
    assert Client().get(reverse("api_transformations"), HTTP_AUTHORIZATION="Basic ###").status_code == 401


def test_it_lists_transformations_with_filters_and_pages(viewer_client, chain_synced):
    data = viewer_client.get(reverse("api_transformations"), {"type": "Merging", "sort": "-id"}).json()
    assert data["count"] == 2 and [t["id"] for t in data["results"]] == [4848, 4847]
    t = data["results"][1]
    assert t["files"] == {"Assigned": 3, "Processed": 1, "Unused": 1} and t["files_processed"] == 1
    assert t["jobs"] == {"Done": 1, "Failed": 1, "Killed": 1} and t["failed_share"] == 66.7
    assert t["parent"] == 4846 and t["production"] == 7
    page = viewer_client.get(reverse("api_transformations"), {"page_size": 1, "page": 3}).json()
    assert page["pages"] == 3 and [t["id"] for t in page["results"]] == [4848]


@pytest.mark.parametrize("params, status", [
    ({"type": "Bogus"}, 400), ({"production": "x"}, 400), ({"sort": "size"}, 400),
    ({"page": "x"}, 400), ({"page_size": 0}, 400), ({"page_size": 501}, 400), ({"page": 99}, 404),
])
def test_it_refuses_bad_parameters_with_400(viewer_client, chain_synced, params, status):
    r = viewer_client.get(reverse("api_transformations"), params)
    assert r.status_code == status and r.json()["error"]


def test_it_names_the_bad_fields(viewer_client, chain_synced):
    r = viewer_client.get(reverse("api_transformations"), {"type": "Bogus"})
    assert "type" in r.json()["fields"]


def test_it_answers_404_for_unknown_ids(viewer_client, chain_synced):
    for url in (reverse("api_transformation", args=[999]), reverse("api_report", args=[999])):
        r = viewer_client.get(url)
        assert r.status_code == 404 and "999" in r.json()["error"]
    r = viewer_client.get(reverse("api_report", args=[999]), {"source": "live"})
    assert r.status_code == 404 and "does not exist" in r.json()["error"]
    r = viewer_client.get(reverse("api_report", args=[4847]), {"cycle": 9999})
    assert r.status_code == 404 and "cycle 9999" in r.json()["error"]


def test_it_gives_the_report_json_of_manage_py_report(viewer_client, chain_synced):
    stored = viewer_client.get(reverse("api_report", args=[4847]))
    assert stored.json() == manage_report_json(4847) == manage_report_json(4847, "--stored")
    assert stored["X-Report-Cycle"] == str(chain_synced.cycle_id)
    live = viewer_client.get(reverse("api_report", args=[4847]), {"source": "live"})
    assert live.json() == manage_report_json(4847)
    cycle = chain_synced.cycle_id
    past = viewer_client.get(reverse("api_report", args=[4847]), {"cycle": cycle})
    assert past.json() == manage_report_json(4847, "--stored", "--cycle", str(cycle))
    for params in ({"source": "both"}, {"cycle": "x"}, {"cycle": 1, "source": "live"}):
        assert viewer_client.get(reverse("api_report", args=[4847]), params).status_code == 400


def test_it_downloads_the_report_as_csv_and_json(viewer_client, chain_synced):
    cycle = chain_synced.cycle_id
    csv = viewer_client.get(reverse("api_report_download", args=[4847, "csv"]))
    # The file is named after the cycle whose aggregates it holds.
    assert csv["Content-Disposition"] == f'attachment; filename="report-4847-cycle{cycle}.csv"'
    out = io.StringIO()
    call_command("report", "4847", "--format", "csv", stdout=out)
    assert csv.content.decode() == out.getvalue()
    js = viewer_client.get(reverse("api_report_download", args=[4847, "json"]), {"cycle": cycle})
    assert js["Content-Disposition"] == f'attachment; filename="report-4847-cycle{cycle}.json"'
    assert json.loads(js.content) == manage_report_json(4847)


def test_it_lists_attention_items_actions_and_proposals(viewer_client, chain_proposed):
    items = viewer_client.get(reverse("api_attention")).json()
    assert {(i["transformation_id"], i["code"], i["fix"]) for i in items["results"]} >= {
        (4846, "proposal", "approve"), (4847, "proposal", "approve")}
    only = viewer_client.get(reverse("api_attention"), {"code": "proposal", "transformation": 4847}).json()
    assert [i["transformation_id"] for i in only["results"]] == [4847]
    assert viewer_client.get(reverse("api_attention"), {"code": "bogus"}).status_code == 400
    assert viewer_client.get(reverse("api_attention"), {"transformation": "x"}).status_code == 400
    proposals = viewer_client.get(reverse("api_proposals")).json()
    assert proposals["count"] == 2
    assert {p["kind"] for p in proposals["results"]} == {"complete", "reassign"}
    actions = viewer_client.get(reverse("api_actions"), {"state": "proposed", "kind": "reassign"}).json()
    assert actions["count"] == 1 and actions["results"][0]["details"]["tasks"] == {"1": ["/p/a1.h5", "/p/a2.h5"],
                                                                                   "2": ["/p/k1.h5"]}
    assert viewer_client.get(reverse("api_actions"), {"since": "yesterday"}).status_code == 400
    assert ActionLog.objects.count() >= 2


def test_it_describes_every_endpoint_in_openapi(viewer_client):
    spec = viewer_client.get(reverse("api_openapi")).json()
    assert spec["openapi"].startswith("3.")
    documented = set(spec["paths"])
    api = next(p for p in get_resolver().url_patterns if str(p.pattern) == "api/")
    for pattern in api.url_patterns:
        assert isinstance(pattern, URLPattern)
        route = "/api/" + str(pattern.pattern).lstrip("^").rstrip("$").replace("<id:tid>", "{tid}")
        route = route.replace("<id:pid>", "{pid}")
        route = route.replace(r"(?P<tid>[0-9]{1,10})", "{tid}").replace(r"\.(?P<fmt>csv|json)", ".csv")
        assert route in documented, route
