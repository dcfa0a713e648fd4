"""Recovery's run on the simulator (failover/cycle/recover.py): modes, proposals one per
(transformation, case), approvals, removal only when approved, reconciliation, dry run, the
``failover recover`` command and its JSON."""

from __future__ import annotations

import copy
import json
import re

import pytest
from django.core.management import call_command

from failover import actions
from failover.cycle.recover import NO_CATALOGUE, Recovery
from failover.models import ActionLog, RecoveryFinding, RecoveryPolicy
from failover.simulated.backend import SimulatedDirac
from failover.simulated.models import SimCatalogFile, SimRequest
from failover.simulated.scenario import validate
from failover.simulated.store import load
from tests.contract.scenario import RECOVERY_SCENARIO, R

pytestmark = pytest.mark.django_db(databases="__all__")

TID = 4861
IN1, IN2, IN3 = f"{R}/in1.h5", f"{R}/in2.h5", f"{R}/in3.h5"
OUT2 = f"{R}/out2.h5"


@pytest.fixture
def backend():
    load(validate(copy.deepcopy(RECOVERY_SCENARIO)))
    return SimulatedDirac()


def files(b):
    return {f.lfn: f.status for f in b.files([TID])}


def job(b, j):
    return b.jobs([j])[j].status


def findings(result):
    return {f["job"]: f for f in result.as_json()["transformations"][0]["findings"]}


def test_propose_mode_changes_nothing_and_proposes_per_case(backend):
    result = Recovery(backend=backend, policy=RecoveryPolicy()).run([TID])
    got = findings(result)
    assert got[3001]["state"] == got[3002]["state"] == "proposed"
    assert job(backend, 3001) == "Failed" and files(backend)[IN1] == "Assigned"
    proposals = ActionLog.objects.filter(transformation_id=TID, state=ActionLog.State.PROPOSED)
    assert sorted((p.kind, p.details["case"]) for p in proposals) == [
        ("recover", "output_exists_failed"), ("recover", "some_missing_done"), ("remove_outputs", "some_missing_done"),
    ]
    recover = proposals.get(kind="recover", details__case="output_exists_failed")
    assert [j["job"] for j in recover.details["jobs"]] == [3001]
    assert recover.details["jobs"][0]["inputs"] == [IN1, IN2]
    # Stored for the pages, one row per job.
    assert set(RecoveryFinding.objects.filter(transformation_id=TID).values_list("job", "state")) == {
        (3001, "proposed"), (3002, "proposed"), (3003, "skipped"),
    }


def test_the_same_finding_keeps_its_proposal_a_new_one_replaces_it(backend):
    policy = RecoveryPolicy()
    Recovery(backend=backend, policy=policy).run([TID])
    Recovery(backend=backend, policy=policy).run([TID])
    assert ActionLog.objects.filter(state=ActionLog.State.PROPOSED).count() == 3
    first = ActionLog.objects.get(kind="recover", details__case="output_exists_failed")
    # Another job falls in the same case: the waiting proposal is superseded by one listing both.
    # Job 3003's request finished and registered its output.
    SimRequest.objects.filter(job=3003).update(status="Done")
    SimCatalogFile.objects.create(lfn=f"{R}/out3.h5", metadata={"jobID": "3003"}, job="3003")
    Recovery(backend=backend, policy=policy).run([TID])
    first.refresh_from_db()
    live = ActionLog.objects.filter(kind="recover", details__case="output_exists_failed", state="proposed")
    assert live.count() == 1 and [j["job"] for j in live.get().details["jobs"]] == [3001, 3003]
    assert first.state == ActionLog.State.SUPERSEDED and first.superseded_by == live.get()


def test_approving_carries_out_what_was_proposed(backend, operator_user):
    Recovery(backend=backend, policy=RecoveryPolicy()).run([TID])
    proposal = ActionLog.objects.get(kind="recover", details__case="output_exists_failed")
    [result] = actions.approve([proposal], user=operator_user)
    assert result.state == ActionLog.State.DONE
    proposal.refresh_from_db()
    assert proposal.actor == operator_user.get_username() and proposal.user == operator_user
    assert job(backend, 3001) == "Done" and files(backend)[IN1] == files(backend)[IN2] == "Processed"
    assert backend.jobs([3001])[3001].minor_status == "Job forced to Done"
    # Approving again: refused, nothing done twice.
    [again] = actions.approve([proposal], user=operator_user)
    assert again.state == "stale"


def test_outputs_are_removed_only_after_approval(backend, operator_user):
    policy = RecoveryPolicy(mode=RecoveryPolicy.Mode.ACT)
    for _ in range(2):
        Recovery(backend=backend, policy=policy).run([TID])
        assert backend.catalogue_exists([OUT2]) == {OUT2: True}
    removal = ActionLog.objects.get(kind="remove_outputs", state=ActionLog.State.PROPOSED)
    [result] = actions.approve([removal], user=operator_user)
    assert result.state == ActionLog.State.DONE, result.message
    assert backend.catalogue_exists([OUT2]) == {OUT2: False}
    removal.refresh_from_db()
    assert removal.outcome == "1 of 1 registered output removed" and removal.user == operator_user


def test_a_rejected_removal_removes_nothing(backend, operator_user):
    Recovery(backend=backend, policy=RecoveryPolicy(mode=RecoveryPolicy.Mode.ACT)).run([TID])
    removal = ActionLog.objects.get(kind="remove_outputs", state=ActionLog.State.PROPOSED)
    actions.reject([removal], user=operator_user, reason="keep it")
    assert backend.catalogue_exists([OUT2]) == {OUT2: True}


def test_approval_is_stale_when_the_case_no_longer_holds(backend, operator_user):
    Recovery(backend=backend, policy=RecoveryPolicy()).run([TID])
    proposal = ActionLog.objects.get(kind="recover", details__case="output_exists_failed")
    # Meanwhile someone removed the job's outputs: case 6 no longer holds for it.
    backend.remove_catalogue_files([f"{R}/out1a.h5", f"{R}/out1b.h5"])
    [result] = actions.approve([proposal], user=operator_user)
    assert result.state == ActionLog.State.STALE and "no listed job is still in case" in result.message
    assert job(backend, 3001) == "Failed"


def test_a_pending_recovery_action_is_reconciled_before_the_next_check(backend):
    # As if a worker died after DIRAC was called: the entry is pending, DIRAC has the change.
    entry = ActionLog.objects.create(
        transformation_id=TID, kind="recover", state=ActionLog.State.PENDING, reason="r",
        details={"case": "output_exists_failed", "actions": ["job_done", "inputs_processed"],
                 "jobs": [{"job": 3001, "task": 1, "job_status": "Failed", "inputs": [IN1, IN2],
                           "actions": ["job_done", "inputs_processed"]}]},
    )
    backend.set_job_status([3001], "Done", minor_status="Job forced to Done")
    backend.set_file_status(TID, {IN1: "Processed", IN2: "Processed"}, force=True)
    Recovery(backend=backend, policy=RecoveryPolicy(mode=RecoveryPolicy.Mode.ACT)).run([TID])
    entry.refresh_from_db()
    assert entry.state == ActionLog.State.DONE and "read back from DIRAC" in entry.outcome


def test_a_pending_action_not_done_is_interrupted_and_found_again(backend):
    entry = ActionLog.objects.create(
        transformation_id=TID, kind="remove_outputs", state=ActionLog.State.PENDING, reason="r",
        details={"case": "some_missing_done", "lfns": [OUT2], "jobs": []},
    )
    Recovery(backend=backend, policy=RecoveryPolicy()).run([TID])
    entry.refresh_from_db()
    assert entry.state == ActionLog.State.INTERRUPTED
    assert ActionLog.objects.filter(kind="remove_outputs", state=ActionLog.State.PROPOSED).count() == 1


def test_dry_run_changes_nothing(backend):
    result = Recovery(backend=backend, policy=RecoveryPolicy(mode=RecoveryPolicy.Mode.ACT), dry_run=True).run([TID])
    assert findings(result)[3001]["case"] == "output_exists_failed"
    assert job(backend, 3001) == "Failed" and not ActionLog.objects.exists() and not RecoveryFinding.objects.exists()


def test_without_a_catalogue_nothing_is_checked():
    scenario = copy.deepcopy(RECOVERY_SCENARIO)
    del scenario["catalog"]
    load(validate(scenario))
    result = Recovery(backend=SimulatedDirac(), policy=RecoveryPolicy()).run([TID])
    assert result.message == NO_CATALOGUE
    assert result.as_json()["transformations"] == [{"id": TID, "findings": [], "state": "skipped",
                                                    "message": NO_CATALOGUE}]


def test_ignored_and_unselected_transformations_are_skipped_and_said(backend):
    policy = RecoveryPolicy(transformations_to_ignore=[TID])
    [t] = Recovery(backend=backend, policy=policy).run([TID]).transformations
    assert (t.state, t.message) == ("skipped", "in TransformationsToIgnore")
    policy = RecoveryPolicy(types_with_input=["Processing"])
    [t] = Recovery(backend=backend, policy=policy).run([TID]).transformations
    assert t.state == "skipped" and "not selected by the recovery policy" in t.message


def test_recover_command_json(backend, capsys):
    RecoveryPolicy.objects.create(mode=RecoveryPolicy.Mode.ACT)
    call_command("failover", "recover", "--transformation", str(TID), "--json")
    data = json.loads(capsys.readouterr().out)
    [t] = data["transformations"]
    assert t["id"] == TID
    by_job = {f["job"]: f for f in t["findings"]}
    assert set(by_job[3001]) >= {"case", "job", "task", "actions", "state", "reason"}
    assert by_job[3001]["state"] == "done" and by_job[3002]["state"] == "proposed"
    assert by_job[3003]["state"] == "skipped"
    assert job(backend, 3001) == "Done"


def test_recover_command_dry_run_text(backend, capsys):
    call_command("failover", "recover", "--dry-run")
    out = capsys.readouterr().out
    assert f"{TID}: job 3001 (task 1): output_exists_failed: proposed: job_done, inputs_processed" in out
    assert "recovery (propose, dry run)" in out
    assert job(backend, 3001) == "Failed"


def test_a_removal_is_refused_when_its_job_became_done_meanwhile(backend, operator_user):
    Recovery(backend=backend, policy=RecoveryPolicy(mode=RecoveryPolicy.Mode.ACT)).run([TID])
    removal = ActionLog.objects.get(kind="remove_outputs", state=ActionLog.State.PROPOSED)
    backend.set_job_status([3002], "Done", minor_status="someone knew better")
    [result] = actions.approve([removal], user=operator_user)
    assert result.state == ActionLog.State.STALE
    assert backend.catalogue_exists([OUT2]) == {OUT2: True}


def test_beat_runs_recovery_every_polling_time_only_with_a_stored_policy(backend, monkeypatch):
    from datetime import timedelta

    from failover import tasks
    from failover.models import Heartbeat

    queued = []
    monkeypatch.setattr(tasks.run_recovery, "delay", lambda: queued.append(tasks.run_recovery()))
    assert tasks.recovery_tick() == "no recovery policy stored" and not queued
    RecoveryPolicy.objects.create(polling_time=600)
    assert tasks.recovery_tick().startswith("recovery queued") and len(queued) == 1
    assert "1 transformation, " in queued[0]
    assert tasks.recovery_tick().startswith("next recovery check in") and len(queued) == 1
    Heartbeat.objects.filter(name="recovery").update(at=Heartbeat.objects.get(name="recovery").at - timedelta(
        seconds=601))
    assert tasks.recovery_tick().startswith("recovery queued") and len(queued) == 2
    # It ran in the policy's mode (propose): proposals, nothing changed.
    assert ActionLog.objects.filter(kind="recover", state=ActionLog.State.PROPOSED).exists()
    assert job(backend, 3001) == "Failed"


def test_findings_on_the_page_in_attention_and_in_the_api(backend, viewer_client):
    from django.urls import reverse

    from failover import attention
    from failover.engine import Engine
    from failover.models import TransformationState

    Engine(backend=backend).run_cycle([TID])  # the mirror row the pages list
    Recovery(backend=backend, policy=RecoveryPolicy()).run([TID])
    state = TransformationState.objects.get(transformation_id=TID)
    items = [i for i in attention.items_for([state])[TID] if i.code == attention.RECOVERY]
    assert sorted((i.text.split(":")[0], i.count, i.fix) for i in items) == [
        ("Outputs exist, job Failed", 1, "approve"), ("Some outputs missing, job Done", 1, "approve"),
    ]
    assert attention.counts_by_code_sql()[attention.RECOVERY] == 1
    assert list(attention.rows_needing_attention(codes=attention.RECOVERY)) == [state]
    page = viewer_client.get(reverse("transformation", args=[TID])).content.decode()
    assert "Outputs exist, job Failed: job Done, inputs Processed" in page and "job 3001 · task 1" in page
    data = viewer_client.get(reverse("api_transformation", args=[TID])).json()
    cases = {c["case"]: c for c in data["recovery"]}
    assert cases["output_exists_failed"]["count"] == 1 and cases["output_exists_failed"]["jobs"][0]["job"] == 3001
    assert cases["pending_request"]["states"] == {"skipped": 1}
    assert any(i["code"] == "recovery" for i in data["attention"])


def test_without_a_catalogue_the_cycle_reassigns_as_before():
    from failover.engine import Engine
    from failover.models import Policy

    scenario = copy.deepcopy(RECOVERY_SCENARIO)
    del scenario["catalog"]
    load(validate(scenario))
    b = SimulatedDirac()
    Policy.objects.create(name="p", mode=Policy.Mode.ACT, reassign_types=["Merging"], max_reassign=3)
    b.calls.reset()
    Engine(backend=b).run_cycle([TID])
    assert files(b)[IN1] == files(b)[IN2] == "Unused"
    assert not {"catalogue_files_by_job", "catalogue_exists", "job_output_data"} & set(b.calls.snapshot())


def test_with_a_catalogue_the_cycle_keeps_registered_jobs_and_says_so(backend):
    from failover import attention
    from failover.engine import Engine
    from failover.models import Policy

    Policy.objects.create(name="p", mode=Policy.Mode.ACT, reassign_types=["Merging"], max_reassign=3)
    Engine(backend=backend).run_cycle([TID])
    # Job 3001 registered outputs: kept; job 3003 registered none: reassigned (its Assigned file).
    assert files(backend)[IN1] == files(backend)[IN2] == "Assigned"
    assert files(backend)[f"{R}/in5.h5"] == "Unused"
    [b] = [b for b in attention.blockers_of(TID) if b.code == "recoverable"]
    assert b.count == 1 and "not reassigned" in b.text


def test_the_proposals_page_lists_the_jobs_and_lfns_and_an_operator_approves(backend, operator_client):
    from django.urls import reverse

    Recovery(backend=backend, policy=RecoveryPolicy()).run([TID])
    page = operator_client.get(reverse("proposals")).content.decode()
    assert "case 13: 1 job, 1 LFN to remove" in page and OUT2 in page
    assert "job 3001 · task 1: job_done, inputs_processed" in page
    removal = ActionLog.objects.get(kind="remove_outputs")
    audit = operator_client.get(reverse("audit_entry", args=[removal.pk]))
    assert audit.status_code == 200 and "Remove registered outputs" in audit.content.decode()


def test_an_operator_approves_a_removal_from_the_page_a_viewer_cannot(backend, operator_client, viewer_client):
    from django.urls import reverse

    Recovery(backend=backend, policy=RecoveryPolicy(mode=RecoveryPolicy.Mode.ACT)).run([TID])
    removal = ActionLog.objects.get(kind="remove_outputs")
    form = {"decision": "approve", "proposals": [removal.pk]}
    assert viewer_client.post(reverse("proposals_decide"), form).status_code in (302, 403)
    assert backend.catalogue_exists([OUT2]) == {OUT2: True}
    from django.test import TestCase

    from dashboard.celery import app

    app.conf.task_always_eager = True  # the approval's task runs here, after the commit
    try:
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = operator_client.post(reverse("proposals_decide"), {**form, "request_key": "b" * 32})
    finally:
        app.conf.task_always_eager = False
    response = operator_client.get(response["Location"])  # the result page, once the task has run
    page = re.sub(r"\s+", " ", response.content.decode())
    assert "Finished: 1 proposal treated" in page and "1 of 1 registered output removed" in page
    assert f'<td class="num">{removal.pk}</td>' in page
    assert backend.catalogue_exists([OUT2]) == {OUT2: False}


def test_when_the_catalogue_cannot_be_read_reassign_waits_and_says_why(backend, monkeypatch):
    from failover import attention
    from failover.engine import Engine
    from failover.errors import BackendError
    from failover.models import Policy

    def refuse(job_ids):
        raise BackendError("catalogue down", call="catalogue_files_by_job", retriable=False)

    monkeypatch.setattr(backend, "catalogue_files_by_job", refuse)
    Policy.objects.create(name="p", mode=Policy.Mode.ACT, reassign_types=["Merging"], max_reassign=3)
    Engine(backend=backend).run_cycle([TID])
    assert files(backend)[IN1] == files(backend)[IN2] == files(backend)[f"{R}/in5.h5"] == "Assigned"
    texts = [b.text for b in attention.blockers_of(TID) if b.code == "read_failed"]
    assert texts and "reading the catalogue failed" in texts[0]
