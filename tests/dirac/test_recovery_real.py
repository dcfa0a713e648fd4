"""Recovery against real DIRAC 9.1 services (issue 16's "Done when"): a Failed job whose outputs
are registered in the DIRAC File Catalog with CTADIRAC's ``jobID`` metadata comes out with the job
Done and its inputs Processed, and the failover cycle never sets those inputs back to Unused. The
same steps on the simulator leave the same state.

Run with the DIRAC venv's python (tests/dirac/README.md); the FileCatalog and ReqManager services
come from tests/dirac/services.sh.
"""

from __future__ import annotations

import copy
import os

import pytest

from failover.engine import Engine
from failover.models import ActionLog, RecoveryPolicy
from tests.factories import seed_policy

pytestmark = [
    pytest.mark.dirac,
    pytest.mark.django_db(databases="__all__"),
    pytest.mark.skipif(
        os.environ.get("DIRAC_TEST_SERVICES") != "1",
        reason="real DIRAC services not started: run tests/dirac/services.sh start",
    ),
]

D = "/ctao/done-when"
IN1, IN2, IN3 = f"{D}/in1.h5", f"{D}/in2.h5", f"{D}/in3.h5"
OUT1, OUT1B = f"{D}/merged_1.h5", f"{D}/merged_1.log.tgz"

# Task 1's job failed after uploading and registering its outputs (CTADIRAC's putAndRegister sets
# jobID); task 2's job failed before registering anything: the cycle reassigns that one, which
# shows reassign is on. Neither task has its job status copied yet: the cycle does that first.
SCENARIO = {
    "transformations": [
        {"id": 4871, "name": "done_when_merge", "type": "Merging", "status": "Active", "group_size": 2},
    ],
    "files": [
        {"transformation": 4871, "lfn": IN1, "status": "Assigned", "task": 1},
        {"transformation": 4871, "lfn": IN2, "status": "Assigned", "task": 1},
        {"transformation": 4871, "lfn": IN3, "status": "Assigned", "task": 2},
    ],
    "tasks": [
        {"transformation": 4871, "task": 1, "job": 5001, "status": "Submitted"},
        {"transformation": 4871, "task": 2, "job": 5002, "status": "Submitted"},
    ],
    "jobs": [
        {"id": 5001, "status": "Failed", "minor_status": "Application Finished With Errors",
         "application_status": "Failed to send accounting", "site": "LCG.GRIF.fr"},
        {"id": 5002, "status": "Failed", "minor_status": "Maximum of reschedulings reached",
         "application_status": "Failed Input Data Resolution", "site": "LCG.CNAF.it"},
    ],
    "catalog": [
        {"lfn": IN1}, {"lfn": IN2}, {"lfn": IN3},
        {"lfn": OUT1, "metadata": {"jobID": "5001"}, "ancestors": [IN1, IN2]},
        {"lfn": OUT1B, "metadata": {"jobID": "5001"}},
    ],
    "requests": [],
}


def observe(backend, tid: int, jobs: dict[int, int]) -> dict:
    """What recovery and the cycle can change, in scenario job ids."""
    states = backend.jobs(list(jobs.values()))
    return {
        "files": {f.lfn: (f.status, f.error_count) for f in backend.files([tid])},
        "tasks": {t.task: t.status for t in backend.tasks([tid])},
        "jobs": {sid: (states[real].status, states[real].minor_status) for sid, real in jobs.items()},
        "catalogue": backend.catalogue_exists([OUT1, OUT1B]),
        "actions": sorted((a.kind, a.state) for a in ActionLog.objects.filter(transformation_id=tid)),
    }


def cycle_recover_cycle(backend, tid: int, jobs: dict[int, int]) -> list[dict]:
    from failover.cycle.recover import Recovery

    steps = []
    result = Engine(backend, retries=0).run_cycle([tid])
    assert not result.errors, result.errors
    steps.append(observe(backend, tid, jobs))
    report = Recovery(backend=backend, policy=RecoveryPolicy(mode=RecoveryPolicy.Mode.ACT), retries=0).run([tid])
    assert not report.failed, report.as_json()
    steps.append(observe(backend, tid, jobs))
    result = Engine(backend, retries=0).run_cycle([tid])
    assert not result.errors, result.errors
    steps.append(observe(backend, tid, jobs))
    return steps


def forget_our_state() -> None:
    from failover.models import Cycle, ReassignCounter, RecoveryFinding, TransformationState

    for model in (ActionLog, ReassignCounter, TransformationState, Cycle, RecoveryFinding):
        model.objects.all().delete()


def test_a_failed_job_with_registered_outputs_comes_out_done_with_its_inputs_processed():
    from failover.backends.dirac import DiracAdapter, clear_parent_cache
    from failover.simulated.backend import SimulatedDirac
    from failover.simulated.scenario import validate
    from failover.simulated.store import load as load_simulator
    from tests.dirac.load_scenario import load as load_dirac

    seed_policy()
    loaded = load_dirac(copy.deepcopy(SCENARIO))
    clear_parent_cache()
    tid = loaded.tid(4871)
    jobs = {sid: loaded.job(sid) for sid in (5001, 5002)}
    dirac = DiracAdapter(timeout=30)
    assert dirac.catalogue_files_by_job([jobs[5001]]) == {jobs[5001]: sorted([OUT1, OUT1B])}

    after_cycle, after_recovery, after_second_cycle = cycle_recover_cycle(dirac, tid, jobs)

    # The cycle copied the job statuses and reassigned only the job without registered outputs.
    assert after_cycle["tasks"] == {1: "Failed", 2: "Failed"}
    assert after_cycle["files"] == {IN1: ("Assigned", 0), IN2: ("Assigned", 0), IN3: ("Unused", 1)}
    # Recovery (DataRecoveryAgent's case 6): job forced Done, its task Done, its inputs Processed.
    assert after_recovery["jobs"][5001] == ("Done", "Job forced to Done")
    assert after_recovery["tasks"][1] == "Done"
    assert after_recovery["files"][IN1] == after_recovery["files"][IN2] == ("Processed", 0)
    # Nothing removed: the outputs are the job's good work.
    assert after_recovery["catalogue"] == {OUT1: True, OUT1B: True}
    # And the next cycle leaves them: nothing of job 5001 was ever Unused.
    assert after_second_cycle["files"][IN1] == after_second_cycle["files"][IN2] == ("Processed", 0)
    assert after_second_cycle["jobs"][5001][0] == "Done" and after_second_cycle["tasks"][1] == "Done"

    # The same steps on the simulator leave the same states.
    forget_our_state()
    load_simulator(validate(copy.deepcopy(SCENARIO)))
    simulated = cycle_recover_cycle(SimulatedDirac(), 4871, {5001: 5001, 5002: 5002})
    assert simulated == [after_cycle, after_recovery, after_second_cycle]
