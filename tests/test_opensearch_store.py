"""The OpenSearch aggregate store against a real OpenSearch-compatible server (osmem-server)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from django.core.management import CommandError, call_command

from reports import outbox
from reports.aggregation import AggregateRow, build_report
from reports.models import Outbox
from reports.opensearch_config import ROWS, SNAPSHOTS, ensure_templates, get_client
from reports.opensearch_documents import job_group
from reports.opensearch_store import OpenSearchAggregateStore
from reports.stores import AggregateStoreError, SnapshotMeta, SqlAggregateStore, get_store
from tests.opensearch_support import closed_port_url, count, make_config

pytestmark = [pytest.mark.opensearch, pytest.mark.django_db(databases="__all__")]

T0 = datetime(2026, 11, 24, 23, 58, 30, 123456, tzinfo=timezone.utc)  # cycles cross midnight UTC


def row(status, minor, app, site, n, first):
    return AggregateRow(status, minor, app, site, n, first)


def history() -> list[tuple[int, datetime, SnapshotMeta, list[AggregateRow]]]:
    """Four cycles of three transformations: changes, repeats, an empty snapshot, a retried write."""
    m1 = SnapshotMeta(4846, 7, "DataReprocessing")
    m2 = SnapshotMeta(4847, 7, "Merging")
    m3 = SnapshotMeta(12, None, "MCSimulation")
    a = [
        row("Done", "Execution Complete", "Unknown", "LCG.GRIF.fr", 5, 100),
        row("Failed", "Maximum of reschedulings reached", "Unknown", "LCG.CNAF.it", 2, 103),
        row("Done", "Execution Complete", "Unknown", "LCG.CNAF.it", 1, 104),
        row("Killed", "Received Kill signal", "Unknown", "LCG.GRIF.fr", 1, 107),
    ]
    b = [
        row("Running", "Application", "Running", "LCG.DESY.de", 3, 200),
        row("Failed", "Application Finished With Errors", "Error 2", "LCG.DESY.de", 4, 201),
    ]
    writes = []
    for n in range(4):
        ts = T0 + timedelta(minutes=2 * n, microseconds=n)
        cycle = 10 + n
        writes.append((cycle, ts, m1, a[: 2 + n % 3]))
        writes.append((cycle, ts, m2, b if n != 2 else []))
        if n % 2 == 0:
            writes.append((cycle, ts, m3, [row("Waiting", "Pilot Agent Submission", "Unknown", "ANY", n + 1, 300)]))
    # A retried task: cycle 13 writes 4846 again with other rows; the second write must win.
    writes.append((13, T0 + timedelta(minutes=6, microseconds=3), m1, [a[3], a[0]]))
    return writes


def write_all(store, writes) -> None:
    for cycle, ts, meta, rows in writes:
        store.write(cycle, ts, meta, rows)


def test_it_answers_like_the_sql_store(os_config):
    sql, osr = SqlAggregateStore(), OpenSearchAggregateStore(os_config)
    writes = history()
    write_all(sql, writes)
    write_all(osr, writes)
    result = outbox.drain(os_config)
    assert result.error == "" and result.refused == 0
    assert Outbox.objects.count() == 0
    for tid in (4846, 4847, 12, 999):
        assert osr.latest(tid) == sql.latest(tid), tid
        for cycle in range(9, 15):
            assert osr.at_cycle(tid, cycle) == sql.at_cycle(tid, cycle), (tid, cycle)
        assert osr.series(tid) == sql.series(tid), tid
        assert osr.series(tid, limit=2) == sql.series(tid, limit=2), tid
    # The report built from either store is the same, number for number.
    for tid in (4846, 4847, 12):
        assert build_report(tid, osr.latest(tid).rows).as_json() == build_report(tid, sql.latest(tid).rows).as_json()
        assert build_report(tid, osr.at_cycle(tid, 12).rows).table_rows() == build_report(
            tid, sql.at_cycle(tid, 12).rows
        ).table_rows()
    # The retried write of 4846 in cycle 13 left no row of the first try behind (dashboards sum them).
    assert count(os_config, ROWS, CycleID=13, TransformationID=4846) == 2
    assert osr.at_cycle(4847, 12).rows == []  # an empty snapshot is a snapshot
    # Another try of the same snapshot after the first went out: its stale rows are deleted too.
    cycle, ts, meta, rows = writes[-1]
    for store in (sql, osr):
        store.write(cycle, ts, meta, rows[1:])
    result = outbox.drain(os_config)
    assert result.pruned == 1 and Outbox.objects.count() == 0
    assert count(os_config, ROWS, CycleID=13, TransformationID=4846) == 1
    assert osr.latest(4846) == sql.latest(4846) and len(osr.latest(4846).rows) == 1
    assert osr.series(4846) == sql.series(4846)


def test_it_writes_wmshistory_documents_to_daily_indices_behind_aliases(os_config):
    store = OpenSearchAggregateStore(os_config)
    write_all(store, history())
    outbox.drain(os_config)
    client = get_client(os_config)
    indices = sorted(client.indices.get_alias(name=os_config.alias(ROWS)))
    assert indices == ["t-wmshistory-2026-11-24", "t-wmshistory-2026-11-25"]
    mapping = client.indices.get_mapping(index="t-wmshistory-2026-11-24")["t-wmshistory-2026-11-24"]["mappings"]
    props = mapping["properties"]
    assert props["timestamp"] == {"type": "date", "format": "epoch_millis"}
    assert {props[f]["type"] for f in ("Status", "MinorStatus", "ApplicationStatus", "Site", "JobGroup")} == {"keyword"}
    assert props["Jobs"]["type"] == "integer"
    key = hashlib.sha1("\x1f".join(("Done", "Execution Complete", "Unknown", "LCG.GRIF.fr")).encode()).hexdigest()
    doc = client.get(index="t-wmshistory-2026-11-24", id=f"10-4846-{key}")
    src = doc["_source"]
    assert src["timestamp"] == int(T0.timestamp() * 1000)
    assert (src["JobGroup"], src["Jobs"], src["Status"], src["Site"]) == ("00004846", 5, "Done", "LCG.GRIF.fr")
    assert (src["TransformationID"], src["ProductionID"], src["TransformationType"], src["CycleID"]) == (
        4846, 7, "DataReprocessing", 10)
    assert count(os_config, SNAPSHOTS) == 10  # one manifest per (cycle, transformation)


def test_it_installs_templates_idempotently(os_config):
    client = get_client(os_config)
    assert ensure_templates(client, os_config) == ["t-wmshistory", "t-snapshots", "t-actions"]
    assert ensure_templates(client, os_config) == []  # once per process...
    assert len(ensure_templates(client, os_config, force=True)) == 3  # ...and harmless again
    template = client.indices.get_index_template(name="t-wmshistory")["index_templates"][0]["index_template"]
    assert template["index_patterns"] == ["t-wmshistory-*"]
    assert template["template"]["aliases"] == {"t-wmshistory": {}}


def test_it_reads_dirac_wmshistory_as_a_source(os_config):
    client = get_client(os_config)
    # DIRAC's documents split by dimensions the report does not show (User, UserGroup, JobSplitType).
    stamps = [1764028800000, 1764029700000]  # 2025-11-25 00:00 and 00:15 UTC
    docs = []
    for ts in stamps:
        for user, jobs in (("alice", 3), ("bob", 4)):
            docs.append({"timestamp": ts, "Status": "Failed", "MinorStatus": "Application Finished With Errors",
                         "ApplicationStatus": "Unknown", "Site": "LCG.CNAF.it", "JobGroup": "00004846",
                         "User": user, "UserGroup": "cta_prod", "JobSplitType": "MCSimulation", "Jobs": jobs})
        docs.append({"timestamp": ts, "Status": "Done", "MinorStatus": "Execution Complete",
                     "ApplicationStatus": "Unknown", "Site": "LCG.GRIF.fr", "JobGroup": "00004846",
                     "User": "alice", "Jobs": 10 if ts == stamps[0] else 12})
        docs.append({"timestamp": ts, "Status": "Done", "MinorStatus": "Execution Complete",
                     "ApplicationStatus": "Unknown", "Site": "LCG.GRIF.fr", "JobGroup": "00000012", "Jobs": 1})
    mapping = {"properties": {"timestamp": {"type": "date"}, "Jobs": {"type": "long"},
                              **{k: {"type": "keyword"} for k in ("Status", "MinorStatus", "ApplicationStatus",
                                                                   "Site", "JobGroup", "User", "UserGroup",
                                                                   "JobSplitType")}}}
    client.indices.create(index="wmshistory_index-2025-11-25", body={"mappings": mapping})
    for n, doc in enumerate(docs):
        client.index(index="wmshistory_index-2025-11-25", id=str(n), body=doc)
    client.indices.refresh(index="wmshistory_index-2025-11-25")
    config = make_config(os_config.url, wmshistory_source="wmshistory_index-*")
    store = OpenSearchAggregateStore(config)
    latest = store.latest(4846)
    assert latest.cycle_id == 0 and latest.timestamp == datetime(2025, 11, 25, 0, 15, tzinfo=timezone.utc)
    rows = [(r.status, r.site, r.count) for r in latest.rows]
    assert rows == [("Done", "LCG.GRIF.fr", 12), ("Failed", "LCG.CNAF.it", 7)]
    report = build_report(4846, latest.rows)
    assert report.total == 19 and report.count("Failed") == 7
    series = store.series(4846)
    assert [sum(r.count for r in s.rows) for s in series] == [17, 19]
    assert [s.timestamp.minute for s in series] == [0, 15]
    assert len(store.series(4846, limit=1)) == 1 and store.series(4846, limit=1)[0].timestamp.minute == 15
    assert store.latest(4847) is None and store.series(4847) == []
    # Writes still go to our own indices; at_cycle reads them.
    store.write(1, T0, SnapshotMeta(4846, 7, "DataReprocessing"), [row("Done", "x", "y", "z", 1, 1)])
    outbox.drain(config)
    assert store.at_cycle(4846, 1).rows == [row("Done", "x", "y", "z", 1, 1)]
    assert job_group(4846) == "00004846"


def test_it_raises_a_clear_error_when_opensearch_is_unreachable(clean_state, settings):
    url = closed_port_url()
    store = OpenSearchAggregateStore(make_config(url.replace("http://", "http://reader:s3cret@")))
    for read in (lambda: store.latest(1), lambda: store.at_cycle(1, 1), lambda: store.series(1)):
        with pytest.raises(AggregateStoreError) as caught:
            read()
        message = str(caught.value)
        assert message.startswith(f"the stored aggregates cannot be read: cannot connect to OpenSearch at {url}")
        assert "s3cret" not in message and "Traceback" not in message
    # At the edge (the CLI) it is one line, not a traceback.
    settings.OPENSEARCH_URL = url
    settings.OPENSEARCH_INDEX_PREFIX = "t"
    assert get_store().name == "opensearch"
    with pytest.raises(CommandError, match="cannot connect to OpenSearch"):
        call_command("report", "4846", "--stored")


def test_it_never_fails_a_write_when_opensearch_is_down(clean_state):
    store = OpenSearchAggregateStore(make_config(closed_port_url()))
    for cycle, ts, meta, rows in history():
        store.write(cycle, ts, meta, rows)
    assert Outbox.objects.filter(kind="snapshot").count() == 10  # 11 writes, one replaced
    result = outbox.drain(store.config)
    assert "cannot connect" in result.error and result.sent == 0
    assert Outbox.objects.count() == sum(1 for r in Outbox.objects.all())  # all still there
    assert outbox.breaker_open(store.config)


def test_health_says_whether_opensearch_answers_and_what_waits(os_config):
    up = outbox.health(os_config)
    assert up["ok"] and up["waiting"] == 0 and "answers" in up["detail"]
    down_config = make_config(closed_port_url())
    OpenSearchAggregateStore(down_config).write(1, T0, SnapshotMeta(1, None, "MCSimulation"), [])
    down = outbox.health(down_config)
    assert not down["ok"] and "cannot connect" in down["detail"]
    assert down["waiting"] == 1 and down["by_kind"] == {"snapshot": 1} and down["oldest"] is not None


def test_the_settings_are_checked_strictly(settings, monkeypatch, tmp_path):
    from django.core.exceptions import ImproperlyConfigured

    from dashboard.env import env_float
    from reports.checks import opensearch_settings

    monkeypatch.setenv("OPENSEARCH_TIMEOUT", "ten")
    with pytest.raises(ImproperlyConfigured, match="OPENSEARCH_TIMEOUT='ten' is not a number"):
        env_float("OPENSEARCH_TIMEOUT", 10.0, minimum=0.1)
    settings.OPENSEARCH_URL = ""
    assert opensearch_settings() == []
    settings.OPENSEARCH_URL = "opensearch:9200"
    assert [e.id for e in opensearch_settings()] == ["reports.E001"]
    settings.OPENSEARCH_URL = "https://opensearch:9200"
    settings.OPENSEARCH_INDEX_PREFIX = "Failover Prod"
    assert "OPENSEARCH_INDEX_PREFIX='Failover Prod'" in opensearch_settings()[0].msg
    settings.OPENSEARCH_INDEX_PREFIX = "failover"
    settings.OPENSEARCH_CA_CERTS = str(tmp_path / "missing.pem")
    settings.OPENSEARCH_USER = "admin"
    settings.OPENSEARCH_PASSWORD = ""
    assert [e.id for e in opensearch_settings()] == ["reports.E002", "reports.E003"]
