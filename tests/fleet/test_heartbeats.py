"""Real worker processes record heartbeats; the health check reads them (no broadcast ping)."""

from __future__ import annotations

import json
import signal

import pytest

from tests.factories import SEED_POLICY, chain_scenario
from tests.fleet.harness import Fleet

pytestmark = pytest.mark.fleet


@pytest.fixture
def fleet(tmp_path):
    f = Fleet(tmp_path / "var", FAILOVER_HEARTBEAT_SECONDS="0.5")  # dead after 3 x 0.5 + 1 s
    f.setup(chain_scenario(), SEED_POLICY)
    yield f
    f.stop()


def workers_check(fleet) -> dict:
    out = fleet.manage("failover", "status", "--json", check=False)
    assert out.stderr == "", out.stderr  # no library warnings
    return {c["name"]: c for c in json.loads(out.stdout)["checks"]}["workers"]


def test_a_worker_beats_is_seen_dead_when_killed_and_stopped_when_stopped(fleet):
    fleet.start_worker("w1")
    fleet.wait_for(lambda: workers_check(fleet)["ok"], timeout=90, what="w1's heartbeat")
    assert "1 alive: w1@" in workers_check(fleet)["detail"]

    fleet.kill("w1", signal.SIGKILL)  # no goodbye: its heartbeat just ages
    fleet.wait_for(lambda: not workers_check(fleet)["ok"], timeout=60, what="w1 seen dead")
    check = workers_check(fleet)
    assert "no live worker: w1@" in check["detail"] and "last seen" in check["detail"] and check["age"] > 2

    fleet.start_worker("w1")
    fleet.wait_for(lambda: workers_check(fleet)["ok"], timeout=90, what="w1 back")
    fleet.kill("w1", signal.SIGTERM)  # a clean shutdown says so at once
    check = workers_check(fleet)
    assert not check["ok"] and "stopped" in check["detail"], check
