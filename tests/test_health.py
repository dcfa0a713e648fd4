"""``/health/`` and ``manage.py failover status``: each part of the system answers in words."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from failover.models import Cycle, Heartbeat
from failover.tasks import tick
from tests.factories import chain_scenario, load_scenario, seed_policy

pytestmark = pytest.mark.django_db(databases="__all__")


def test_it_is_open_without_login_and_says_what_is_missing(client):
    response = client.get("/health/?workers=0&format=json")
    assert response.status_code == 503  # no beat tick and no cycle yet
    data = response.json()
    names = {c["name"]: c for c in data["checks"]}
    assert set(names) == {"database", "broker", "beat", "dirac", "cycle", "mirror", "mail"}  # no OpenSearch configured
    assert names["mail"]["ok"]  # mail is optional; the test runner uses a local mailbox
    assert names["database"]["ok"] and names["dirac"]["ok"]
    assert not names["beat"]["ok"] and "no tick" in names["beat"]["detail"]
    assert not names["cycle"]["ok"] and "no finished cycle" in names["cycle"]["detail"]
    assert names["mirror"]["ok"] and "no transformation mirrored yet" in names["mirror"]["detail"]


def test_it_is_healthy_after_a_tick_and_a_cycle(client, settings):
    settings.FAILOVER_FANOUT = False
    settings.CELERY_TASK_ALWAYS_EAGER = True
    seed_policy()
    load_scenario(chain_scenario())
    from dashboard.celery import app

    app.conf.task_always_eager = True
    try:
        tick()
    finally:
        app.conf.task_always_eager = False
    assert Cycle.objects.filter(state="finished").count() == 1
    data = client.get("/health/?workers=0&format=json").json()
    assert data["ok"], data
    assert "last cycle" in {c["name"]: c for c in data["checks"]}["cycle"]["detail"]


def test_a_stuck_cycle_is_visible_and_replaced(settings, time_machine):
    seed_policy(polling_time=60)
    settings.FAILOVER_STUCK_SECONDS = 120
    load_scenario(chain_scenario())
    time_machine.move_to("2026-11-25 10:00:00Z", tick=False)
    stuck = Cycle.objects.create(trigger="beat")
    stuck.items.create(transformation_id=4847)
    time_machine.move_to("2026-11-25 10:05:00Z", tick=False)
    from failover.health import check_last_cycle

    assert "stuck" in check_last_cycle().detail
    from failover import cycles

    due, why = cycles.is_due()
    assert due and "stuck" in why
    stuck.refresh_from_db()
    assert stuck.state == "failed" and "never reported" in stuck.message
    assert stuck.items.get().state == "lost"


def test_the_tick_waits_for_polling_time(time_machine):
    seed_policy(polling_time=600)
    from failover import cycles

    time_machine.move_to("2026-11-25 10:00:00Z", tick=False)
    Cycle.objects.create(trigger="beat", state="finished")
    time_machine.move_to("2026-11-25 10:05:00Z", tick=False)
    due, why = cycles.is_due()
    assert not due and "next cycle in 300 s" in why
    time_machine.move_to("2026-11-25 10:10:01Z", tick=False)
    assert cycles.is_due()[0]


def test_status_command_reports_and_fails_when_something_is_down():
    Heartbeat.beat("beat")
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("failover", "status", "--json", "--no-workers", stdout=out)
    assert exit_info.value.code == 1  # no cycle finished yet
    data = json.loads(out.getvalue())
    assert {c["name"] for c in data["checks"]} >= {"database", "broker", "beat", "dirac", "cycle"}
    assert {c["name"]: c["ok"] for c in data["checks"]}["beat"] is True


# -- heartbeats, HTML and JSON ------------------------------------------------------------------


def checks_of(response) -> dict:
    return {c["name"]: c for c in response.json()["checks"]}


def healthy_now(settings) -> None:
    """Everything healthy: a finished cycle, beat's tick and a worker heartbeat just now."""
    from failover.heartbeats import record

    seed_policy(polling_time=60)
    Cycle.objects.create(trigger="beat", state="finished", finished=timezone.now())
    Heartbeat.beat("beat")
    record("w1@host", "pid 1")


@pytest.mark.parametrize("how", [{"HTTP_ACCEPT": "application/json"}, {"data": {"format": "json"}}])
def test_it_answers_json_to_machines(client, settings, how):
    healthy_now(settings)
    r = client.get("/health/", **how)
    assert r.status_code == 200 and r["Content-Type"] == "application/json"
    data = r.json()
    assert data["ok"] is True
    names = checks_of(r)
    assert set(names) == {"database", "broker", "workers", "beat", "dirac", "cycle", "mirror", "mail"}
    assert all(c["explanation"] for c in data["checks"])
    assert "w1@host" in names["workers"]["detail"] and names["workers"]["age"] < 5


def test_it_renders_html_for_a_browser_with_the_same_checks(client, settings):
    healthy_now(settings)
    browser_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    for accept in (browser_accept, "*/*"):  # a browser, and curl's default
        r = client.get("/health/", HTTP_ACCEPT=accept)
        assert r.status_code == 200 and r["Content-Type"].startswith("text/html")
        page = r.content.decode()
        assert '<link rel="stylesheet"' in page  # the site's own layout (templates/base.html)
        assert 'id="health-ok"' in page and "all healthy" in page
        for name in ("database", "broker", "workers", "beat", "dirac", "cycle", "mail"):
            assert f'data-check="{name}"' in page
        assert "recorded a heartbeat recently" in page  # the explanation of the workers check


def test_html_and_json_keep_the_status_codes(client, caplog):
    # Nothing ran yet: beat, workers and cycle are failing; both forms answer 503.
    caplog.set_level("WARNING", logger="django.request")
    html = client.get("/health/")
    assert html.status_code == 503 and "something is wrong" in html.content.decode()
    assert 'class="check-fail"' in html.content.decode()
    js = client.get("/health/?format=json")
    assert js.status_code == 503 and js.json()["ok"] is False
    assert not checks_of(js)["workers"]["ok"]
    assert "no worker heartbeat yet" in checks_of(js)["workers"]["detail"]
    assert not caplog.records  # a 503 here is an answer: no "Service Unavailable" error line per poll


def test_heartbeat_ages_and_a_stale_worker_or_beat_is_unhealthy(client, settings, time_machine):
    from failover.heartbeats import record

    settings.FAILOVER_HEARTBEAT_SECONDS = 10  # a worker is dead after 3 x 10 + 1 s
    settings.FAILOVER_TICK_SECONDS = 10  # beat is late after max(60, 6 x 10) s
    seed_policy(polling_time=600)
    time_machine.move_to("2026-11-25 10:00:00Z", tick=False)
    Cycle.objects.create(trigger="beat", state="finished", finished=timezone.now())
    record("w1@host")
    record("w2@host")
    Heartbeat.beat("beat")

    time_machine.move_to("2026-11-25 10:00:25Z", tick=False)
    record("w2@host")
    r = client.get("/health/?format=json")
    checks = checks_of(r)
    assert r.status_code == 200
    assert checks["beat"]["age"] == 25 and checks["beat"]["ok"]
    assert checks["workers"]["age"] == 0  # the youngest live worker's heartbeat
    assert "2 alive" in checks["workers"]["detail"] and "w1@host (25 s ago)" in checks["workers"]["detail"]
    assert checks["cycle"]["age"] == 25

    # w1 missed three heartbeats: gone, while w2 still beats.
    time_machine.move_to("2026-11-25 10:00:50Z", tick=False)
    record("w2@host")
    checks = checks_of(client.get("/health/?format=json"))
    assert checks["workers"]["ok"] and "gone: w1@host last seen 50 s ago" in checks["workers"]["detail"]

    # Every worker stale: unhealthy, and so is beat, whose last tick is more than a minute old.
    time_machine.move_to("2026-11-25 10:01:30Z", tick=False)
    r = client.get("/health/?format=json")
    checks = checks_of(r)
    assert r.status_code == 503
    assert not checks["workers"]["ok"] and checks["workers"]["age"] == 40
    assert checks["workers"]["detail"] == "no live worker: w1@host last seen 90 s ago; w2@host last seen 40 s ago"
    assert not checks["beat"]["ok"] and checks["beat"]["age"] == 90 and "last tick 90 s ago" in checks["beat"]["detail"]

    # Beat ticks again and a worker comes back: healthy.
    Heartbeat.beat("beat")
    record("w1@host")
    assert client.get("/health/?format=json").status_code == 200


def test_a_worker_that_stopped_cleanly_says_so(settings):
    from failover import heartbeats
    from failover.health import check_workers

    heartbeats.record("w1@host", "pid 1")
    heartbeats.record("w2@host", heartbeats.STOPPED)
    check = check_workers()
    assert check.ok and "1 alive: w1@host" in check.detail and "w2@host stopped 0 s ago" in check.detail
    heartbeats.record("w1@host", heartbeats.STOPPED)
    assert not check_workers().ok


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_the_worker_heartbeat_thread_beats_until_stopped(settings):
    """The thread a worker starts on worker_ready (the signal handler), with its own connection."""
    import threading
    import time

    from celery.signals import worker_ready, worker_shutdown

    class Consumer:
        hostname = "w9@host"

    from django.db import OperationalError

    def detail_now():
        # The test database is SQLite's shared-cache memory database, where a read that meets
        # the thread's write fails at once ("table is locked") instead of waiting as a file
        # database does (WAL + timeout); such a read is simply made again.
        try:
            row = Heartbeat.objects.filter(name="worker:w9@host").first()
        except OperationalError:
            return None
        return row.detail if row else None

    worker_ready.send(sender=Consumer())
    try:
        deadline = time.monotonic() + 30
        while (detail := detail_now()) is None:
            assert time.monotonic() < deadline, "no heartbeat within 30 s"
            time.sleep(0.05)
        assert detail.startswith("pid ")
    finally:
        worker_shutdown.send(sender=None)
    # stop() waited for the thread, so nothing writes any more and "stopped" is the last word.
    assert not any(t.name == "heartbeat w9@host" and t.is_alive() for t in threading.enumerate())
    assert Heartbeat.objects.get(name="worker:w9@host").detail == "stopped"


def test_a_check_that_raises_is_shown_failed_not_crashed(client):
    from failover import health

    def broken():
        raise RuntimeError("boom")

    health.register("broken", explanation="a test check")(broken)
    try:
        checks = checks_of(client.get("/health/?format=json"))
        assert not checks["broken"]["ok"] and "RuntimeError: boom" in checks["broken"]["detail"]
    finally:
        health._registry.pop("broken")


def test_each_app_registers_its_own_checks_and_failover_imports_no_other_app():
    import ast
    from pathlib import Path

    from failover.health import registered

    by_module = {r.name: r.func.__module__ for r in registered()}
    assert by_module["mail"] == "reports.digests.health"
    assert by_module["opensearch"] == by_module["outbox"] == "reports.health"
    assert by_module["workers"] == by_module["beat"] == "failover.health"
    for name in ("health.py", "heartbeats.py"):
        tree = ast.parse((Path(__file__).parents[1] / "failover" / name).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
            a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not {m for m in imported if m and m.split(".")[0] in ("reports", "dashboard")}, (name, imported)


def test_opensearch_and_outbox_checks_with_opensearch_configured(settings, time_machine):
    from reports.health import check_opensearch, check_outbox
    from reports.models import Outbox

    assert check_opensearch() is None and check_outbox() is None  # not configured: not shown
    settings.OPENSEARCH_URL = f"http://127.0.0.1:{closed_port()}"  # nothing listens there
    down = check_opensearch()
    assert not down.ok and "127.0.0.1" in down.detail
    assert check_outbox().ok and check_outbox().detail == "nothing waits"
    time_machine.move_to("2026-11-25 10:00:00Z", tick=False)
    Outbox.objects.create(kind="row", index="failover-wmshistory-2026-11-25", doc_id="1", version=1, document={})
    time_machine.move_to("2026-11-25 10:10:00Z", tick=False)
    waiting = check_outbox()
    assert waiting.ok and waiting.age == 600 and "1 document waits" in waiting.detail
    time_machine.move_to("2026-11-25 10:20:00Z", tick=False)
    assert not check_outbox().ok  # more than 15 min: OpenSearch has not taken it


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
