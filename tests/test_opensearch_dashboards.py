"""OpenSearch Dashboards saved objects: the export's structure, the import request, the Vega queries."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from reports import outbox
from reports.aggregation import AggregateRow
from reports.dashboards import failures_spec, job_states_spec, saved_objects, to_ndjson
from reports.opensearch_config import get_client
from reports.opensearch_store import OpenSearchAggregateStore
from reports.stores import SnapshotMeta

pytestmark = pytest.mark.opensearch


def export(tmp_path, *args) -> list[dict]:
    path = tmp_path / "dashboards.ndjson"
    out = StringIO()
    call_command("opensearch", "dashboards", "--export", str(path), *args, stdout=out)
    assert f"8 saved objects written to {path}" in out.getvalue()
    text = path.read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_the_export_is_valid_ndjson_whose_references_resolve(tmp_path, settings):
    settings.OPENSEARCH_INDEX_PREFIX = "failover"
    objects = export(tmp_path)
    by_id = {(o["type"], o["id"]): o for o in objects}
    assert len(by_id) == len(objects)  # ids unique
    assert {o["type"] for o in objects} == {"index-pattern", "visualization", "search", "dashboard"}
    for o in objects:
        assert set(o) >= {"id", "type", "attributes", "references", "migrationVersion"}
        for ref in o["references"]:
            assert (ref["type"], ref["id"]) in by_id, (o["id"], ref)
        meta = o["attributes"].get("kibanaSavedObjectMeta")
        if meta:
            source = json.loads(meta["searchSourceJSON"])
            if "indexRefName" in source:
                assert source["indexRefName"] in {r["name"] for r in o["references"]}
        if o["type"] == "visualization":
            state = json.loads(o["attributes"]["visState"])
            assert state["title"] == o["attributes"]["title"]
            if state["type"] == "vega":
                spec = json.loads(state["params"]["spec"])
                assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
                assert spec["data"]["url"]["index"] == "failover-wmshistory"
            if state["type"] == "input_control_vis":
                control = state["params"]["controls"][0]
                assert control["fieldName"] == "JobGroup"
                assert control["indexPatternRefName"] in {r["name"] for r in o["references"]}
        if o["type"] == "index-pattern":
            fields = {f["name"]: f for f in json.loads(o["attributes"]["fields"])}
            assert o["attributes"]["timeFieldName"] == "timestamp" and fields["timestamp"]["type"] == "date"
    pattern = by_id[("index-pattern", "failover-index-pattern-wmshistory")]["attributes"]
    assert pattern["title"] == "failover-wmshistory"
    assert {"Status", "MinorStatus", "ApplicationStatus", "Site", "JobGroup", "Jobs"} <= {
        f["name"] for f in json.loads(pattern["fields"])
    }
    dashboard = by_id[("dashboard", "failover-dashboard")]
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    refs = {r["name"]: r for r in dashboard["references"]}
    assert [p["panelRefName"] for p in panels] == list(refs)
    titles = {by_id[(r["type"], r["id"])]["attributes"]["title"] for r in refs.values()}
    assert titles == {
        "Failover: transformation", "Failover: job states over time", "Failover: failures by site and minor status",
        "Failover: report table", "Failover: actions",
    }
    table = json.loads(by_id[("visualization", "failover-report-table")]["attributes"]["visState"])
    assert [a["params"].get("field") for a in table["aggs"]] == [
        "Jobs", "timestamp", "JobGroup", "Status", "MinorStatus", "ApplicationStatus", "Site"]


def test_the_export_can_read_dirac_wmshistory(tmp_path):
    objects = export(tmp_path, "--index-pattern", "wmshistory_index-*")
    titles = [o["attributes"]["title"] for o in objects if o["type"] == "index-pattern"]
    assert "wmshistory_index-*" in titles
    vega = [json.loads(json.loads(o["attributes"]["visState"])["params"]["spec"]) for o in objects
            if o["type"] == "visualization" and '"vega"' in o["attributes"]["visState"]]
    assert {v["data"]["url"]["index"] for v in vega} == {"wmshistory_index-*"}


class Capture(BaseHTTPRequestHandler):
    requests: list[dict] = []
    answer: tuple[int, dict] = (200, {"success": True, "successCount": 8})

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Capture.requests.append({"method": "POST", "path": self.path, "headers": dict(self.headers), "body": body})
        status, answer = Capture.answer
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def dashboards_server():
    Capture.requests = []
    Capture.answer = (200, {"success": True, "successCount": 8})
    server = ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_import_posts_the_objects_to_the_saved_objects_api(dashboards_server, settings):
    settings.OPENSEARCH_USER, settings.OPENSEARCH_PASSWORD = "osd", "pw"
    out = StringIO()
    call_command("opensearch", "dashboards", "--import", dashboards_server + "/", stdout=out)
    assert f"8 saved objects imported into {dashboards_server}/" in out.getvalue()
    [request] = Capture.requests
    assert request["path"] == "/api/saved_objects/_import?overwrite=true"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["osd-xsrf"] == "true"
    assert headers["authorization"].startswith("Basic ")
    assert headers["content-type"].startswith("multipart/form-data; boundary=")
    message = email.message_from_bytes(
        b"Content-Type: " + headers["content-type"].encode() + b"\r\n\r\n" + request["body"], policy=email.policy.HTTP
    )
    [part] = list(message.iter_parts())
    assert part.get_param("name", header="content-disposition") == "file"
    assert part.get_filename().endswith(".ndjson")
    sent = [json.loads(line) for line in part.get_content().decode().splitlines()]
    assert sent == [json.loads(line) for line in to_ndjson(saved_objects("failover")).splitlines()]


def test_import_reports_a_refusal_in_one_line(dashboards_server):
    Capture.answer = (200, {"success": False, "successCount": 7, "errors": [
        {"id": "failover-dashboard", "type": "dashboard", "error": {"type": "missing_references"}}]})
    with pytest.raises(CommandError, match="refused part of the import: dashboard failover-dashboard: missing_refer"):
        call_command("opensearch", "dashboards", "--import", dashboards_server)
    Capture.answer = (403, {"statusCode": 403, "message": "no permissions"})
    with pytest.raises(CommandError, match="answered HTTP 403: no permissions"):
        call_command("opensearch", "dashboards", "--import", dashboards_server)
    with pytest.raises(CommandError, match="say --export"):
        call_command("opensearch", "dashboards")


def _resolve(value, bounds):
    """What Dashboards does to a Vega query before sending it (placeholders replaced)."""
    if isinstance(value, dict):
        if value.get("%autointerval%"):
            return "1h"
        if "%timefilter%" in value:
            return bounds[value["%timefilter%"]]
        return {k: _resolve(v, bounds) for k, v in value.items() if not k.startswith("%")}
    if isinstance(value, list):
        return [_resolve(v, bounds) for v in value]
    return value


@pytest.mark.django_db(databases="__all__")
def test_the_vega_queries_run_and_give_the_mean_per_snapshot(os_config):
    store = OpenSearchAggregateStore(os_config)
    start = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
    for n in range(3):  # three cycles ten minutes apart: Failed 2, 4, 6 at CNAF; Done 10 at GRIF
        rows = [AggregateRow("Failed", "Application Finished With Errors", "Unknown", "LCG.CNAF.it", 2 * (n + 1), 1),
                AggregateRow("Done", "Execution Complete", "Unknown", "LCG.GRIF.fr", 10, 2)]
        store.write(n + 1, start + timedelta(minutes=10 * n), SnapshotMeta(4846, 7, "DataReprocessing"), rows)
    outbox.drain(os_config)
    client = get_client(os_config)
    client.indices.refresh(index="t-wmshistory")
    bounds = {"min": int(start.timestamp() * 1000) - 3600_000, "max": int(start.timestamp() * 1000) + 3600_000}

    spec = job_states_spec("t-wmshistory")
    answer = client.search(index=spec["data"]["url"]["index"], body=_resolve(spec["data"]["url"]["body"], bounds))
    [bucket] = [b for b in answer["aggregations"]["t"]["buckets"] if b["doc_count"]]  # all in the 10:00 hour
    assert bucket["snapshots"]["value"] == 3
    means = {s["key"]: s["jobs"]["value"] / bucket["snapshots"]["value"] for s in bucket["states"]["buckets"]}
    assert means == {"Failed": 4.0, "Done": 10.0}  # not 12 and 30, the sums over snapshots

    spec = failures_spec("t-wmshistory")
    answer = client.search(index="t-wmshistory", body=_resolve(spec["data"]["url"]["body"], bounds))["aggregations"]
    assert spec["data"]["format"]["property"] == "aggregations"
    [cell] = answer["failed"]["cells"]["buckets"]
    assert cell["key"] == {"site": "LCG.CNAF.it", "minor": "Application Finished With Errors"}
    assert cell["jobs"]["value"] / answer["snapshots"]["value"] == 4.0
