"""The contract suite runs the same tests against every DIRAC adapter.

``world`` loads CONTRACT_SCENARIO into a backend and maps the scenario's ids to the backend's
(a real DIRAC assigns its own transformation and job ids).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest

from tests.contract.scenario import CONTRACT_SCENARIO

BACKENDS = ["simulated", "simulated-fast", pytest.param("dirac", marks=pytest.mark.dirac)]


@dataclass
class World:
    backend: object
    transformation_ids: dict[int, int] = field(default_factory=dict)
    job_ids: dict[int, int] = field(default_factory=dict)

    def t(self, scenario_id: int) -> int:
        return self.transformation_ids.get(scenario_id, scenario_id)

    def j(self, scenario_id: int) -> int:
        return self.job_ids.get(scenario_id, scenario_id)

    def missing_transformation(self) -> int:
        return max(self.transformation_ids.values() or [1]) + 100_000


@pytest.fixture(params=BACKENDS)
def world(request) -> World:
    if request.param.startswith("simulated"):
        # Test modules here are marked django_db(databases="__all__").
        from failover.simulated.backend import SimulatedDirac
        from failover.simulated.fastpath import FastSimulatedDirac
        from failover.simulated.scenario import validate
        from failover.simulated.store import load

        load(validate(CONTRACT_SCENARIO))
        return World(FastSimulatedDirac() if request.param == "simulated-fast" else SimulatedDirac())
    if os.environ.get("DIRAC_TEST_SERVICES") != "1":
        pytest.skip("real DIRAC services not started: run tests/dirac/services.sh start")
    from tests.dirac.load_scenario import load_into_dirac  # written with the real adapter

    return load_into_dirac(CONTRACT_SCENARIO)
