"""The engine runs the same scenario against the simulator and against real DIRAC 9.1 services;
the resulting states must be the same, so the simulator behaves like DIRAC where we look.

Run with the DIRAC venv's python (tests/dirac/README.md).
"""

from __future__ import annotations

import copy
import os
import time

import pytest

from failover.engine import Engine
from failover.models import ActionLog, Cycle, MirrorJob, MirrorState, MirrorTask, ReassignCounter, TransformationState
from tests.factories import chain_scenario, seed_policy

pytestmark = [
    pytest.mark.dirac,
    pytest.mark.django_db(databases="__all__"),
    pytest.mark.skipif(
        os.environ.get("DIRAC_TEST_SERVICES") != "1",
        reason="real DIRAC services not started: run tests/dirac/services.sh start",
    ),
]


def reassign_scenario() -> dict:
    data = chain_scenario()
    data["transformations"][0]["status"] = "Stopped"
    data["files"] = [f for f in data["files"] if f["lfn"] != "/p/u1.h5"]
    return data


def observe(backend, to_scenario: dict[int, int]) -> dict:
    """The state the engine can change, in scenario ids, read through the adapter."""
    ids = sorted(to_scenario)
    return {
        "transformations": {to_scenario[t.id]: t.status for t in backend.transformations(ids=ids)},
        "files": {
            (to_scenario[f.transformation], f.lfn): (f.status, f.error_count, f.task) for f in backend.files(ids)
        },
        "tasks": {(to_scenario[t.transformation], t.task): t.status for t in backend.tasks(ids)},
        "counters": {
            (to_scenario[c.transformation_id], c.lfn): c.count
            for c in ReassignCounter.objects.filter(transformation_id__in=ids)
        },
        "flushes": {
            to_scenario[s.transformation_id]: s.flush_count
            for s in TransformationState.objects.filter(transformation_id__in=ids)
        },
        "actions": sorted(
            (to_scenario[a.transformation_id], a.kind, a.state)
            for a in ActionLog.objects.filter(transformation_id__in=ids)
        ),
    }


def run_three_cycles(backend, to_scenario: dict[int, int]) -> tuple[dict, list[dict]]:
    figures = []
    for _ in range(3):
        backend.calls.reset()
        started = time.perf_counter()
        result = Engine(backend, retries=0).run_cycle(sorted(to_scenario))
        figures.append({"calls": backend.calls.total, "seconds": time.perf_counter() - started,
                        "errors": result.errors})
    return observe(backend, to_scenario), figures


def forget_our_state() -> None:
    for model in (ActionLog, ReassignCounter, TransformationState, Cycle, MirrorState, MirrorTask, MirrorJob):
        model.objects.all().delete()


@pytest.mark.parametrize("make_scenario", [chain_scenario, reassign_scenario], ids=["chain", "reassign"])
def test_three_cycles_leave_the_same_state_in_dirac_and_in_the_simulator(make_scenario, capsys):
    from failover.backends.dirac import DiracAdapter, clear_parent_cache
    from failover.simulated.backend import SimulatedDirac
    from failover.simulated.scenario import validate
    from failover.simulated.store import load as load_simulator
    from tests.dirac.load_scenario import load as load_dirac

    seed_policy()
    scenario = make_scenario()

    load_simulator(validate(copy.deepcopy(scenario)))
    sim_ids = {t["id"]: t["id"] for t in scenario["transformations"]}
    simulated, sim_figures = run_three_cycles(SimulatedDirac(), sim_ids)
    forget_our_state()

    loaded = load_dirac(copy.deepcopy(scenario))
    clear_parent_cache()
    real, dirac_figures = run_three_cycles(DiracAdapter(), loaded.scenario_transformation)

    assert real == simulated
    assert any(kind != "sync" for _, kind, _ in real["actions"]), "the scenario must make the engine act"
    with capsys.disabled():
        print(f"\n{make_scenario.__name__}: DIRAC cycles {dirac_figures}\n  simulator cycles {sim_figures}")
