"""``manage.py failover cycle`` against real DIRAC services that are misconfigured or down:
one clear message, no traceback, nothing half done."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.dirac.support import dashboard_site, stopped_service
from tests.factories import SEED_POLICY, chain_scenario

pytestmark = [
    pytest.mark.dirac,
    pytest.mark.skipif(
        os.environ.get("DIRAC_TEST_SERVICES") != "1",
        reason="real DIRAC services not started: run tests/dirac/services.sh start",
    ),
]

REPO = Path(__file__).resolve().parents[2]
A1 = "/p/a1.h5"


def reassign_scenario() -> dict:
    data = chain_scenario()
    data["transformations"][0]["status"] = "Stopped"
    data["files"] = [f for f in data["files"] if f["lfn"] != "/p/u1.h5"]
    return data


@pytest.fixture
def site(tmp_path):
    """A migrated dashboard in a temporary folder, driving the real DIRAC, seed policy stored."""
    return dashboard_site(tmp_path, SEED_POLICY, DIRAC_TIMEOUT="120", DIRAC_RETRIES="0")


@pytest.fixture
def loaded():
    from tests.dirac.load_scenario import load

    return load(reassign_scenario())


def dirac_files(loaded) -> dict:
    from failover.backends.dirac import DiracAdapter

    tid = loaded.tid(4847)
    return {f.lfn: (f.status, f.error_count) for f in DiracAdapter(timeout=10).files([tid])}


def actions(site) -> list:
    code = ("import json; from failover.models import ActionLog, ReassignCounter; print(json.dumps(["
            "list(ActionLog.objects.values_list('kind','state','error')), ReassignCounter.objects.count()]))")
    return json.loads(site("shell", "-c", code).stdout.strip().splitlines()[-1])


def assert_clear(result) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_a_cycle_against_real_dirac_acts(site, loaded):
    result = site("failover", "cycle", "--transformation", str(loaded.tid(4847)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "did 1 reassign, 1 sync" in result.stdout
    assert dirac_files(loaded)[A1] == ("Unused", 1)


def test_a_wrong_configuration_server_stops_the_cycle_cleanly(site, loaded, tmp_path):
    cfg = tmp_path / "wrong.cfg"
    cfg.write_text(Path(os.environ["DIRACSYSCONFIG"]).read_text().replace(":9135/", ":9199/"))
    before = dirac_files(loaded)
    result = site("failover", "cycle", DIRACSYSCONFIG=str(cfg))
    assert result.returncode == 1
    assert_clear(result)
    assert "cycle stopped" in result.stdout + result.stderr
    assert dirac_files(loaded) == before
    kinds, counters = actions(site)
    assert kinds == [] and counters == 0


def test_a_missing_proxy_stops_the_cycle_cleanly(site, loaded, tmp_path):
    before = dirac_files(loaded)
    result = site("failover", "cycle", X509_USER_PROXY=str(tmp_path / "none.pem"))
    assert result.returncode == 1
    assert_clear(result)
    assert "proxy" in (result.stdout + result.stderr).lower()
    assert dirac_files(loaded) == before


def test_a_group_without_production_management_is_refused_and_logged(site, loaded):
    before = dirac_files(loaded)
    result = site("failover", "cycle", "--transformation", str(loaded.tid(4847)),
                  X509_USER_PROXY=os.environ["DIRAC_TEST_PROXY_NO_PRODUCTION_MANAGEMENT"])
    assert_clear(result)
    assert "error" in result.stdout
    # DIRAC refused the writes: nothing changed, every attempted action is logged as failed
    # with DIRAC's own message, and no counter moved.
    assert dirac_files(loaded) == before
    kinds, counters = actions(site)
    assert kinds and all(state == "failed" and error for _, state, error in kinds), kinds
    assert counters == 0


def test_a_stopped_service_is_a_clear_error_and_changes_nothing(site, loaded):
    before = dirac_files(loaded)
    with stopped_service():
        result = site("failover", "cycle", "--transformation", str(loaded.tid(4847)))
        assert_clear(result)
        # The transformations were read; the job read found JobMonitoring gone.
        assert "reading DIRAC failed" in result.stdout, result.stdout
        assert dirac_files(loaded) == before
        kinds, counters = actions(site)
        assert kinds == [] and counters == 0
