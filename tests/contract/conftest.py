"""The contract suite runs the same tests against every DIRAC adapter.

``world`` loads CONTRACT_SCENARIO into a backend and maps the scenario's ids to the backend's
(a real DIRAC assigns its own transformation and job ids).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest

from tests.contract.scenario import CONTRACT_SCENARIO, DELTA_SCENARIO

BACKENDS = ["simulated", "simulated-fast", pytest.param("dirac", marks=pytest.mark.dirac)]


@dataclass
class World:
    backend: object
    transformation_ids: dict[int, int] = field(default_factory=dict)
    job_ids: dict[int, int] = field(default_factory=dict)
    # DIRAC's own writes to the Job DB (status reports, site, heartbeats), for the delta tests.
    jobdb: object = None

    def t(self, scenario_id: int) -> int:
        return self.transformation_ids.get(scenario_id, scenario_id)

    def j(self, scenario_id: int) -> int:
        return self.job_ids.get(scenario_id, scenario_id)

    def missing_transformation(self) -> int:
        return max(self.transformation_ids.values() or [1]) + 100_000


class SimulatedJobDB:
    """Job DB writes DIRAC's own components make (not the product's), on the simulator."""

    def set_status(self, job: int, status: str, minor_status: str, application_status: str) -> None:
        from failover.simulated import wms

        wms.set_job_status(job, status, minor_status, application_status)

    def set_site(self, job: int, site: str) -> None:
        from failover.simulated import wms

        wms.set_job_site(job, site)

    def heartbeat(self, job: int) -> None:
        from failover.simulated import wms

        wms.heartbeat(job)


class DiracJobDB:
    """The same writes through DIRAC's JobStateUpdate service (what job wrappers call)."""

    def _rpc(self, method: str, *args):
        from DIRAC.Core.Base.Client import Client

        result = getattr(Client(url="WorkloadManagement/JobStateUpdate"), method)(*args)
        assert result["OK"], result["Message"]
        return result["Value"]

    def set_status(self, job: int, status: str, minor_status: str, application_status: str) -> None:
        from datetime import UTC, datetime

        when = datetime.now(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        self._rpc("setJobStatusBulk", job, {when: {"Status": status, "MinorStatus": minor_status,
                                                   "ApplicationStatus": application_status,
                                                   "Source": "ContractTest"}}, True)

    def set_site(self, job: int, site: str) -> None:
        self._rpc("setJobSite", job, site)

    def heartbeat(self, job: int) -> None:
        self._rpc("sendHeartBeat", job, {"LoadAverage": "1.0"}, {})


def make_world(kind: str, scenario: dict) -> World:
    if kind.startswith("simulated"):
        # Test modules here are marked django_db(databases="__all__").
        from failover.simulated.backend import SimulatedDirac
        from failover.simulated.fastpath import FastSimulatedDirac
        from failover.simulated.scenario import validate
        from failover.simulated.store import load

        load(validate(scenario))
        world = World(FastSimulatedDirac() if kind == "simulated-fast" else SimulatedDirac())
        world.jobdb = SimulatedJobDB()
        return world
    if os.environ.get("DIRAC_TEST_SERVICES") != "1":
        pytest.skip("real DIRAC services not started: run tests/dirac/services.sh start")
    from tests.dirac.load_scenario import load_into_dirac  # written with the real adapter

    world = load_into_dirac(scenario)
    world.jobdb = DiracJobDB()
    return world


@pytest.fixture(params=BACKENDS)
def world(request) -> World:
    return make_world(request.param, CONTRACT_SCENARIO)


@pytest.fixture(params=BACKENDS)
def delta_world(request) -> World:
    """DELTA_SCENARIO, whose tasks and jobs were last updated at known times in the past."""
    return make_world(request.param, DELTA_SCENARIO)
