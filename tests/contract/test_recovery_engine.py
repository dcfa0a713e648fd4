"""Recovery end to end on an adapter (failover/cycle/recover.py): a Failed job whose outputs are
registered with jobID metadata comes out Done with its inputs Processed, and nothing of it is set
back to Unused, neither by recovery nor by the failover cycle's reassign. The same test runs on the
simulator (both read paths) and, marked ``dirac``, against real DIRAC 9.1 services (tests/dirac)."""

from __future__ import annotations

import pytest

from failover.cycle.recover import Recovery
from failover.engine import Engine
from failover.models import ActionLog, Policy, RecoveryFinding, RecoveryPolicy
from tests.contract.conftest import BACKENDS, make_world
from tests.contract.scenario import RECOVERY_SCENARIO, R

pytestmark = pytest.mark.django_db(databases="__all__")

IN1, IN2, IN3 = f"{R}/in1.h5", f"{R}/in2.h5", f"{R}/in3.h5"


@pytest.fixture(params=BACKENDS)
def rworld(request):
    return make_world(request.param, RECOVERY_SCENARIO)


def statuses(world):
    b, tid = world.backend, world.t(4861)
    files = {f.lfn: f.status for f in b.files([tid])}
    jobs = {j: b.jobs([world.j(j)])[world.j(j)].status for j in (3001, 3002, 3003)}
    tasks = {t.task: t.status for t in b.tasks([tid])}
    return files, jobs, tasks


def test_failed_job_with_registered_outputs_comes_out_done_and_processed(rworld):
    tid = rworld.t(4861)
    # The failover cycle first (act mode, reassign on): job 3001's inputs must not go back to Unused.
    Policy.objects.create(name="p", mode=Policy.Mode.ACT, reassign_types=["Merging"], max_reassign=3)
    Engine(backend=rworld.backend).run_cycle([tid])
    files, _, _ = statuses(rworld)
    assert files[IN1] == files[IN2] == "Assigned"
    # Recovery, acting.
    policy = RecoveryPolicy.objects.create(mode=RecoveryPolicy.Mode.ACT)
    result = Recovery(backend=rworld.backend, policy=policy).run([tid])
    findings = {f["job"]: f for f in result.as_json()["transformations"][0]["findings"]}
    j1 = rworld.j(3001)
    assert findings[j1]["case"] == "output_exists_failed" and findings[j1]["state"] == "done"
    assert findings[j1]["actions"] == ["job_done", "inputs_processed"]
    # The job with a pending request is skipped, and said to be.
    assert findings[rworld.j(3003)]["state"] == "skipped" and "Waiting" in findings[rworld.j(3003)]["reason"]
    files, jobs, tasks = statuses(rworld)
    assert jobs[3001] == "Done" and tasks[1] == "Done"
    assert files[IN1] == files[IN2] == "Processed"
    assert RecoveryFinding.objects.filter(transformation_id=tid, job=j1, state="done").exists()
    # Audited: logged, settled done.
    entry = ActionLog.objects.get(transformation_id=tid, kind="recover", details__case="output_exists_failed")
    assert entry.state == ActionLog.State.DONE
    # A second check finds job 3001 consistent; the cycle after it leaves its files Processed.
    again = Recovery(backend=rworld.backend, policy=policy).run([tid])
    assert j1 not in {f["job"] for f in again.as_json()["transformations"][0]["findings"]}
    Engine(backend=rworld.backend).run_cycle([tid])
    files, jobs, _ = statuses(rworld)
    assert files[IN1] == files[IN2] == "Processed" and jobs[3001] == "Done"


def test_removing_outputs_is_always_a_proposal_even_in_act_mode(rworld):
    """Job 3002 (ProductionOutputData, one of two outputs missing, job Done): case 13. In act mode
    its inputs go Unused and the job Failed, but the registered output stays until approved."""
    tid, j2 = rworld.t(4861), rworld.j(3002)
    policy = RecoveryPolicy.objects.create(mode=RecoveryPolicy.Mode.ACT)
    result = Recovery(backend=rworld.backend, policy=policy).run([tid])
    found = {f["job"]: f for f in result.as_json()["transformations"][0]["findings"]}[j2]
    assert found["case"] == "some_missing_done" and found["state"] == "proposed"
    assert found["outputs"] == [f"{R}/out2.h5"]
    files, jobs, _ = statuses(rworld)
    assert files[IN3] == "Unused" and jobs[3002] == "Failed"
    assert rworld.backend.catalogue_exists([f"{R}/out2.h5"]) == {f"{R}/out2.h5": True}
    proposal = ActionLog.objects.get(transformation_id=tid, kind="remove_outputs")
    assert proposal.state == ActionLog.State.PROPOSED and proposal.details["lfns"] == [f"{R}/out2.h5"]
    # Nothing but an approval removes it: another acting check keeps the one proposal waiting.
    Recovery(backend=rworld.backend, policy=policy).run([tid])
    assert ActionLog.objects.filter(kind="remove_outputs", state=ActionLog.State.PROPOSED).count() == 1
    assert rworld.backend.catalogue_exists([f"{R}/out2.h5"])[f"{R}/out2.h5"] is True
