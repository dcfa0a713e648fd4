"""``/health/`` and ``manage.py failover status``: each part of the system answers in words."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from failover.models import Cycle, Heartbeat
from failover.tasks import tick
from tests.factories import chain_scenario, load_scenario, seed_policy

pytestmark = pytest.mark.django_db(databases="__all__")


def test_it_is_open_without_login_and_says_what_is_missing(client):
    response = client.get("/health/?workers=0")
    assert response.status_code == 503  # no beat tick and no cycle yet
    data = response.json()
    names = {c["name"]: c for c in data["checks"]}
    assert set(names) == {"database", "broker", "beat", "dirac", "cycle", "mail"}
    assert names["mail"]["ok"]  # mail is optional; the test runner uses a local mailbox
    assert names["database"]["ok"] and names["dirac"]["ok"]
    assert not names["beat"]["ok"] and "no tick" in names["beat"]["detail"]
    assert not names["cycle"]["ok"] and "no finished cycle" in names["cycle"]["detail"]


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
    data = client.get("/health/?workers=0").json()
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
