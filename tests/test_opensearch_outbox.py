"""The outbox: OpenSearch down and back with nothing lost or doubled; a full cycle; action-log entries."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone as dj_timezone

from failover.engine import Engine
from failover.models import ActionLog, Cycle
from failover.simulated.backend import SimulatedDirac
from reports import outbox, tasks
from reports.aggregation import AggregateRow, build_report
from reports.models import Outbox
from reports.opensearch_config import ACTIONS, ROWS, SNAPSHOTS, get_client
from reports.opensearch_store import OpenSearchAggregateStore
from reports.recording import StoreRecorder
from reports.signals import action_finished
from reports.stores import AggregateStoreError, SnapshotMeta, SqlAggregateStore
from tests.factories import chain_scenario, load_scenario, seed_policy
from tests.opensearch_support import SwitchableProxy, count, make_config

pytestmark = pytest.mark.opensearch
TS = datetime(2026, 11, 25, 10, 0, 0, 250000, tzinfo=timezone.utc)
ROWS_A = [
    AggregateRow("Done", "Execution Complete", "Unknown", "LCG.GRIF.fr", 4, 1),
    AggregateRow("Failed", "Maximum of reschedulings reached", "Unknown", "LCG.CNAF.it", 2, 2),
]


class Tee:
    """Writes to several stores: the same cycle feeds SQL and OpenSearch."""

    name = "tee"

    def __init__(self, *stores):
        self.stores = stores

    def write(self, *args) -> None:
        for store in self.stores:
            store.write(*args)


@pytest.fixture
def proxy(osmem_url):
    proxy = SwitchableProxy(osmem_url).start()
    yield proxy
    proxy.stop()


def snapshot_rows() -> list[dict]:
    return list(Outbox.objects.values("index", "doc_id", "version", "document", "kind", "snapshot"))


@pytest.mark.django_db(databases="__all__")
def test_it_keeps_documents_while_opensearch_is_down_and_sends_each_once_when_back(proxy, clean_state):
    config = make_config(proxy.url)
    store = OpenSearchAggregateStore(config)
    store.write(1, TS, SnapshotMeta(4846, 7, "DataReprocessing"), ROWS_A)
    assert outbox.drain(config).sent == 3  # two rows and the manifest
    assert store.latest(4846).rows == ROWS_A

    proxy.stop()
    for tid in (4846, 4847, 4848):
        store.write(2, TS.replace(minute=2), SnapshotMeta(tid, 7, "Merging"), ROWS_A)  # never raises
    waiting = Outbox.objects.count()
    assert waiting == 9
    result = outbox.drain(config)
    assert result.sent == 0 and "cannot connect to OpenSearch" in result.error
    assert Outbox.objects.count() == waiting  # nothing lost
    assert set(Outbox.objects.values_list("claimed_by", flat=True)) == {""}  # released for the next drain
    with pytest.raises(AggregateStoreError, match="cannot connect"):
        store.latest(4846)

    proxy.start()  # back, on the same address, with what it had
    copies = snapshot_rows()
    result = outbox.drain(config)
    assert (result.sent, result.error, Outbox.objects.count()) == (9, "", 0)
    assert outbox.drain(config).sent == 0  # nothing left, nothing sent again
    assert count(config, ROWS) == 2 + 6 and count(config, SNAPSHOTS) == 1 + 3
    # A drainer that died after OpenSearch took its batch, before deleting the rows: the batch goes
    # again, and the deterministic ids overwrite instead of doubling.
    Outbox.objects.bulk_create(Outbox(**row) for row in copies)
    again = outbox.drain(config)
    assert again.sent + again.superseded == 9 and Outbox.objects.count() == 0
    assert count(config, ROWS) == 8 and count(config, SNAPSHOTS) == 4
    for tid in (4846, 4847, 4848):
        assert store.latest(tid).cycle_id == 2 and store.latest(tid).rows == ROWS_A


@pytest.mark.django_db(databases="__all__")
def test_an_older_write_arriving_late_never_overwrites_a_newer_one(os_config):
    store = OpenSearchAggregateStore(os_config)
    meta = SnapshotMeta(4846, 7, "DataReprocessing")
    store.write(3, TS, meta, ROWS_A)
    first_try = snapshot_rows()
    newer = [AggregateRow("Done", "Execution Complete", "Unknown", "LCG.GRIF.fr", 6, 1)]
    store.write(3, TS, meta, newer)  # a retried task replaces the waiting rows
    assert Outbox.objects.count() == 2
    outbox.drain(os_config)
    # A stalled drainer now sends the first try: the external version refuses what is older.
    Outbox.objects.bulk_create(Outbox(**row) for row in first_try)
    result = outbox.drain(os_config)
    assert result.superseded == 2 and result.sent == 1  # the first try's Failed row has its own id
    assert store.latest(4846).rows == newer  # reads follow the newest manifest
    assert Outbox.objects.count() == 0


@pytest.mark.django_db(databases="__all__")
def test_two_drainers_never_claim_the_same_row(os_config):
    store = OpenSearchAggregateStore(os_config)
    for tid in range(1, 5):
        store.write(1, TS, SnapshotMeta(tid, None, "MCSimulation"), ROWS_A)
    a = outbox._claim("a", 5, force=False, pks=None, after=0)
    b = outbox._claim("b", 100, force=False, pks=None, after=0)
    assert len(a) == 5 and len(b) == 7 and not {r.pk for r in a} & {r.pk for r in b}
    assert outbox._claim("c", 100, force=False, pks=None, after=0) == []  # leased


@pytest.mark.django_db(databases="__all__")
def test_a_refused_document_waits_with_backoff_and_the_others_go(os_config):
    store = OpenSearchAggregateStore(os_config)
    store.write(1, TS, SnapshotMeta(1, None, "MCSimulation"), ROWS_A)
    bad = Outbox.objects.filter(kind="row").first()
    bad.document = {**bad.document, "Jobs": "many"}  # not an integer: OpenSearch refuses it
    bad.save()
    result = outbox.drain(os_config)
    assert (result.sent, result.refused) == (2, 1)
    bad.refresh_from_db()
    assert bad.attempts == 1 and "400" in bad.last_error and bad.available_at > dj_timezone.now()
    assert outbox.drain(os_config).refused == 0  # waits for its backoff
    assert outbox.drain(os_config, force=True).refused == 1  # flush-outbox tries it anyway


@pytest.mark.django_db(databases="__all__")
def test_action_log_entries_reach_opensearch_when_final(os_settings, os_config, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        pending = ActionLog.objects.create(transformation_id=4847, kind="flush", details={"status": "Flush"})
        done = ActionLog.objects.create(
            transformation_id=4847, kind="reassign", state="done", finished=dj_timezone.now(), outcome="2 files",
            details={"tasks": {"1": ["/a", "/b"]}, "moved": ["/a", "/b"]},
        )
    assert list(Outbox.objects.values_list("doc_id", flat=True)) == []  # sent at once after the commit
    client = get_client(os_config)
    doc = client.get(index=os_config.index(ACTIONS, done.created), id=str(done.pk))["_source"]
    fields = (doc["State"], doc["Kind"], doc["JobGroup"], doc["Files"], doc["Moved"])
    assert fields == ("done", "reassign", "00004847", 2, 2)
    # Settled with a conditional UPDATE (as the engine does): no post_save...
    ActionLog.objects.filter(pk=pending.pk).update(state="failed", error="DIRAC refused", finished=dj_timezone.now())
    assert not Outbox.objects.filter(doc_id=str(pending.pk)).exists()
    # ...so the engine may send action_finished; without it, the drain task's sweep finds it.
    action_finished.send(sender=ActionLog, action_id=pending.pk)
    assert Outbox.objects.filter(doc_id=str(pending.pk)).count() == 1
    Outbox.objects.all().delete()
    tasks._last_sweep = None
    assert "1 document sent" in tasks.drain_outbox()
    doc = client.get(index=os_config.index(ACTIONS, pending.created), id=str(pending.pk))["_source"]
    assert (doc["State"], doc["Error"]) == ("failed", "DIRAC refused")
    assert "0 documents sent" in tasks.drain_outbox()  # the sweep sends nothing twice


@pytest.mark.django_db(databases="__all__")
def test_flush_outbox_command(os_settings, os_config, settings, proxy):
    store = OpenSearchAggregateStore(make_config(proxy.url))
    store.write(1, TS, SnapshotMeta(1, None, "MCSimulation"), ROWS_A)
    settings.OPENSEARCH_URL = proxy.url
    proxy.stop()
    with pytest.raises(CommandError, match="cannot connect to OpenSearch"):
        call_command("opensearch", "flush-outbox", "--actions-since", "0")
    assert Outbox.objects.count() == 3
    proxy.start()
    from io import StringIO

    out = StringIO()
    call_command("opensearch", "flush-outbox", stdout=out)
    assert "3 documents sent" in out.getvalue() and "0 documents wait" in out.getvalue()
    out = StringIO()
    call_command("opensearch", "setup", stdout=out)
    assert "t-wmshistory, t-snapshots, t-actions" in out.getvalue()


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_a_cycle_writes_to_opensearch_as_to_sql(os_settings, os_config):
    seed_policy()
    load_scenario(chain_scenario())
    sql, osr = SqlAggregateStore(), OpenSearchAggregateStore(os_config)
    result = Engine(SimulatedDirac(), recorder=StoreRecorder(Tee(sql, osr)), retries=0, backoff=0).run_cycle()
    assert result.errors == 0
    # Sent right after each transformation's commit: nothing waits.
    assert Outbox.objects.count() == 0
    for tid in (4846, 4847, 4848):
        assert osr.latest(tid) == sql.latest(tid)
        assert build_report(tid, osr.latest(tid).rows).as_json() == build_report(tid, sql.latest(tid).rows).as_json()
    assert build_report(4847, osr.latest(4847).rows).count("Failed") == 1
    # The engine settles actions with UPDATEs; the drain task's sweep exports them.
    tasks._last_sweep = None
    tasks.drain_outbox()
    finished = ActionLog.objects.filter(state__in=outbox.FINAL_ACTION_STATES).count()
    assert finished == 3 and count(os_config, ACTIONS) == finished


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_the_cycle_runs_on_while_opensearch_is_down(os_settings, os_config, proxy, settings):
    settings.OPENSEARCH_URL = proxy.url
    config = make_config(proxy.url)
    seed_policy()
    load_scenario(chain_scenario())
    proxy.stop()
    started = time.monotonic()
    recorder = StoreRecorder(OpenSearchAggregateStore(config))
    result = Engine(SimulatedDirac(), recorder=recorder, retries=0, backoff=0).run_cycle()
    elapsed = time.monotonic() - started
    assert result.errors == 0 and Cycle.objects.get(pk=result.cycle_id).state == "finished"
    assert outbox.breaker_open(config)  # after the first refused connection, the cycle stops trying
    waiting = Outbox.objects.count()
    # 4846: 1 row, 4847: 3 rows, 4848: no jobs; one manifest each; and the engine's 3 settled
    # actions (action_finished, sent inside their settling transaction).
    assert waiting == 4 + 3 + 3
    assert Outbox.objects.filter(kind="action").count() == 3
    assert elapsed < 5, elapsed
    proxy.start()
    tasks._last_sweep = None
    tasks.drain_outbox()
    assert Outbox.objects.count() == 0
    assert count(config, ROWS) == 4 and count(config, SNAPSHOTS) == 3 and count(config, ACTIONS) == 3
    assert OpenSearchAggregateStore(config).latest(4848).rows == []


@pytest.mark.django_db(databases="__all__")
def test_sending_on_commit_can_be_left_to_the_drain(os_config, django_capture_on_commit_callbacks):
    from dataclasses import replace

    with django_capture_on_commit_callbacks() as callbacks:
        OpenSearchAggregateStore(replace(os_config, send_on_commit=False)).write(
            1, TS, SnapshotMeta(1, None, "MCSimulation"), ROWS_A
        )
    assert callbacks == [] and Outbox.objects.count() == 3
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        OpenSearchAggregateStore(os_config).write(1, TS, SnapshotMeta(2, None, "MCSimulation"), ROWS_A)
    assert len(callbacks) == 1 and Outbox.objects.count() == 3  # the second write went out at once
