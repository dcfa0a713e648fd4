"""The API's contract as scripts see it: every URL, its status, content type, headers, and the exact
field set (names, order and value types) of every answer and error.

Written from the hand-written API before it moved to Django REST framework, and kept unchanged
since: a script written against the old API must keep working.
"""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db(databases="__all__")

# DjangoJSONEncoder's form, which the old API wrote: milliseconds at most, UTC as "Z".
DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")

PAGE = ["count", "page", "pages", "results"]
# "since" and "details" were added by the insight work (fields are only ever added).
ATTENTION_ITEM = ["transformation_id", "code", "text", "count", "fix", "title", "since", "details"]
TRANSFORMATION = [
    "id", "name", "type", "status", "production", "parent", "group_size", "files", "files_total",
    "files_processed", "progress", "jobs", "jobs_total", "jobs_failed", "failed_share", "reassigned_files",
    "flush_count", "last_action", "last_action_at", "last_cycle", "last_seen", "attention",
]
ACTION = ["id", "created", "finished", "transformation", "kind", "state", "actor", "cycle", "reason", "details",
          "outcome", "error"]
REPORT = ["transformation", "total", "statuses"]
REPORT_STATUS = ["status", "count", "percent", "minor_statuses"]
REPORT_MINOR = ["minor_status", "count", "percent", "rows"]
REPORT_ROW = ["application_status", "site", "count"]

URLS = {
    "/api/transformations/": "api_transformations",
    "/api/transformations/4847/": "api_transformation",
    "/api/transformations/4847/report/": "api_report",
    "/api/transformations/4847/report.csv": "api_report_download",
    "/api/transformations/4847/report.json": "api_report_download",
    "/api/attention/": "api_attention",
    "/api/actions/": "api_actions",
    "/api/proposals/": "api_proposals",
    "/api/openapi.json": "api_openapi",
}


def get(client, url, params=None, status=200):
    r = client.get(url, params or {})
    assert r.status_code == status, (url, params, r.status_code, r.content[:300])
    return r


def check_transformation(t: dict) -> None:
    assert list(t) == TRANSFORMATION
    assert all(isinstance(t[k], int) for k in ("id", "files_total", "files_processed", "jobs_total", "jobs_failed",
                                               "reassigned_files", "flush_count"))
    assert all(isinstance(t[k], str) for k in ("name", "type", "status", "last_action"))
    assert all(isinstance(t[k], float) for k in ("group_size", "progress", "failed_share"))
    assert all(t[k] is None or isinstance(t[k], int) for k in ("production", "parent", "last_cycle"))
    for k in ("files", "jobs"):
        assert isinstance(t[k], dict) and all(isinstance(v, int) for v in t[k].values())
    for k in ("last_action_at", "last_seen"):
        assert t[k] is None or DATETIME.match(t[k]), t[k]
    for item in t["attention"]:
        check_attention_item(item)


def check_attention_item(item: dict) -> None:
    assert list(item) == ATTENTION_ITEM
    assert isinstance(item["transformation_id"], int) and isinstance(item["code"], str)
    assert isinstance(item["text"], str) and isinstance(item["title"], str)
    assert item["count"] is None or isinstance(item["count"], int)
    assert item["fix"] is None or isinstance(item["fix"], str)


def check_action(a: dict) -> None:
    assert list(a) == ACTION
    assert isinstance(a["id"], int) and isinstance(a["transformation"], int)
    assert DATETIME.match(a["created"]) and (a["finished"] is None or DATETIME.match(a["finished"]))
    assert a["cycle"] is None or isinstance(a["cycle"], int)
    assert all(isinstance(a[k], str) for k in ("kind", "state", "actor", "reason", "outcome", "error"))
    assert isinstance(a["details"], dict)


def check_page(data: dict, check_item) -> None:
    assert list(data) == PAGE
    assert all(isinstance(data[k], int) for k in ("count", "page", "pages"))
    assert data["results"], "the scenario gives every list something to show"
    for item in data["results"]:
        check_item(item)


def check_report(rep: dict) -> None:
    assert list(rep) == REPORT and isinstance(rep["transformation"], int) and isinstance(rep["total"], int)
    assert rep["statuses"]
    for s in rep["statuses"]:
        assert list(s) == REPORT_STATUS and isinstance(s["percent"], float)
        for m in s["minor_statuses"]:
            assert list(m) == REPORT_MINOR
            for row in m["rows"]:
                assert list(row) == REPORT_ROW and isinstance(row["count"], int)


def test_every_url_is_where_it_was():
    assert reverse("api_transformations") == "/api/transformations/"
    assert reverse("api_transformation", args=[4847]) == "/api/transformations/4847/"
    assert reverse("api_report", args=[4847]) == "/api/transformations/4847/report/"
    assert reverse("api_report_download", args=[4847, "csv"]) == "/api/transformations/4847/report.csv"
    assert reverse("api_report_download", args=[4847, "json"]) == "/api/transformations/4847/report.json"
    assert reverse("api_attention") == "/api/attention/"
    assert reverse("api_actions") == "/api/actions/"
    assert reverse("api_proposals") == "/api/proposals/"
    assert reverse("api_openapi") == "/api/openapi.json"


def test_every_answer_keeps_its_fields(viewer_client, chain_proposed):
    for url in URLS:
        r = get(viewer_client, url)
        if url.endswith(".csv"):
            assert r["Content-Type"] == "text/csv; charset=utf-8"
            assert r.content.decode().splitlines()[0] == (
                "transformation,status,minor_status,application_status,site,count")
            continue
        assert r["Content-Type"].startswith("application/json"), (url, r["Content-Type"])
    check_page(get(viewer_client, "/api/transformations/").json(), check_transformation)
    detail = get(viewer_client, "/api/transformations/4847/").json()
    # The detail adds the last recovery check's findings (issue 16) after the list's fields.
    assert list(detail).pop() == "recovery"
    check_transformation({k: v for k, v in detail.items() if k != "recovery"})
    check_page(get(viewer_client, "/api/attention/").json(), check_attention_item)
    check_page(get(viewer_client, "/api/actions/").json(), check_action)
    check_page(get(viewer_client, "/api/proposals/").json(), check_action)
    report = get(viewer_client, "/api/transformations/4847/report/")
    check_report(report.json())
    assert report["X-Report-Cycle"] == str(chain_proposed.cycle_id)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$", report["X-Report-Time"])
    check_report(get(viewer_client, "/api/transformations/4847/report/", {"source": "live"}).json())
    download = get(viewer_client, "/api/transformations/4847/report.json")
    check_report(json.loads(download.content))
    assert download["Content-Disposition"] == (
        f'attachment; filename="report-4847-cycle{chain_proposed.cycle_id}.json"')
    assert download["X-Report-Cycle"] == str(chain_proposed.cycle_id)


def test_the_values_are_the_old_ones(viewer_client, chain_proposed):
    t = get(viewer_client, "/api/transformations/4847/").json()
    assert (t["id"], t["name"], t["type"], t["status"], t["production"], t["parent"]) == (
        4847, "step2", "Merging", "Active", 7, 4846)
    assert t["files"] == {"Assigned": 3, "Processed": 1, "Unused": 1} and t["files_total"] == 5
    assert t["jobs"] == {"Done": 1, "Failed": 1, "Killed": 1} and t["jobs_failed"] == 2
    assert t["failed_share"] == 66.7 and t["progress"] == 20.0 and t["group_size"] == 50.0
    assert [(i["code"], i["fix"]) for i in t["attention"]] == [("proposal", "approve")]
    proposal = next(a for a in get(viewer_client, "/api/proposals/").json()["results"] if a["kind"] == "reassign")
    assert proposal["details"]["tasks"] == {"1": ["/p/a1.h5", "/p/a2.h5"], "2": ["/p/k1.h5"]}
    assert proposal["state"] == "proposed" and proposal["actor"] == "system" and proposal["finished"] is None


ERRORS = [
    # (url, params, status, the answer's keys)
    ("/api/transformations/", {"type": "Bogus"}, 400, ["error", "fields"]),
    ("/api/transformations/", {"production": "x"}, 400, ["error", "fields"]),
    ("/api/transformations/", {"page": "x"}, 400, ["error"]),
    ("/api/transformations/", {"page_size": "0"}, 400, ["error"]),
    ("/api/transformations/", {"page": "99"}, 404, ["error"]),
    ("/api/transformations/999/", {}, 404, ["error"]),
    ("/api/transformations/4847/report/", {"source": "both"}, 400, ["error"]),
    ("/api/transformations/4847/report/", {"cycle": "x"}, 400, ["error"]),
    ("/api/transformations/4847/report/", {"cycle": "9999"}, 404, ["error"]),
    ("/api/transformations/999/report.csv", {}, 404, ["error"]),
    ("/api/attention/", {"code": "bogus"}, 400, ["error", "codes"]),
    ("/api/attention/", {"transformation": "x"}, 400, ["error", "fields"]),
    ("/api/actions/", {"since": "yesterday"}, 400, ["error", "fields"]),
    ("/api/actions/", {"kind": "nope"}, 400, ["error", "fields"]),
    ("/api/proposals/", {"page": "5"}, 404, ["error"]),
]


@pytest.mark.parametrize("url, params, status, keys", ERRORS)
def test_every_error_keeps_its_shape(viewer_client, chain_proposed, url, params, status, keys):
    r = get(viewer_client, url, params, status)
    data = r.json()
    assert list(data) == keys and isinstance(data["error"], str) and data["error"]
    if "fields" in data:
        assert all(isinstance(v, list) and all(isinstance(m, str) for m in v) for v in data["fields"].values())
        assert set(data["fields"]) <= set(params) | {"__all__"}


def test_the_error_texts_scripts_match_on(viewer_client, chain_proposed):
    assert get(viewer_client, "/api/transformations/", {"page": "99"}, 404).json()["error"] == (
        "page 99 does not exist (there are 1)")
    assert get(viewer_client, "/api/transformations/", {"page_size": "501"}, 400).json()["error"] == (
        "page_size must be between 1 and 500")
    assert get(viewer_client, "/api/transformations/", {"type": "Bogus"}, 400).json()["error"] == "invalid parameters"
    assert get(viewer_client, "/api/transformations/4847/report/", {"source": "both"}, 400).json()["error"] == (
        "source is stored or live")
    unknown = get(viewer_client, "/api/attention/", {"code": "bogus"}, 400).json()
    assert unknown["error"] == "unknown code bogus" and "proposal" in unknown["codes"]


def test_anonymous_and_roleless_answers_keep_their_shape(anon_client, norole_client, operator_client):
    for url in URLS:
        r = anon_client.get(url)
        assert r.status_code == 401 and list(r.json()) == ["error"], url
        assert r["WWW-Authenticate"].startswith("Basic"), url
        r = norole_client.get(url)
        assert r.status_code == 403 and r.json() == {"error": "your account has no role: ask an administrator"}, url
        r = operator_client.post(url)
        assert r.status_code == 405 and list(r.json()) == ["error"] and r["Allow"] == "GET, HEAD", url
        assert r.json()["error"] == "POST is not allowed here: the API is read-only"


def test_head_answers_like_get(viewer_client, chain_proposed):
    for url in URLS:
        assert viewer_client.head(url).status_code == 200, url
