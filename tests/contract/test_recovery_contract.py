"""What any DIRAC adapter must do for recovery (DIRAC's DataRecoveryAgent merged in): the job's
data, the File Catalog, the Request Management System, and the forced writes. Runs against the
simulator (both read paths) and against real DIRAC 9.1 services (FileCatalog on FileCatalogDB,
ReqManager on ReqDB) when they are started."""

from __future__ import annotations

import pytest

from failover.errors import BackendError
from tests.contract.conftest import BACKENDS, make_world
from tests.contract.scenario import CONTRACT_SCENARIO, RECOVERY_SCENARIO, R

pytestmark = pytest.mark.django_db(databases="__all__")

IN1, IN2, IN3, IN4, IN5 = (f"{R}/in{n}.h5" for n in range(1, 6))
OUT1A, OUT1B, OUT2, OUT2B = (f"{R}/{n}.h5" for n in ("out1a", "out1b", "out2", "out2b"))
UNKNOWN_JOB = 987654321


@pytest.fixture(params=BACKENDS)
def rworld(request):
    return make_world(request.param, RECOVERY_SCENARIO)


def test_it_reads_each_jobs_input_data_in_one_call(rworld):
    b, j = rworld.backend, rworld.j
    b.calls.reset()
    got = b.job_input_data([j(3001), j(3002), j(3003), UNKNOWN_JOB])
    # Derived from the task's files when the scenario does not give it; every asked job a key.
    assert got == {j(3001): [IN1, IN2], j(3002): [IN3], j(3003): [IN4, IN5], UNKNOWN_JOB: []}
    assert b.calls.total == 1


def test_it_reads_production_output_data_only_for_jobs_that_have_it(rworld):
    b, j = rworld.backend, rworld.j
    b.calls.reset()
    assert b.job_output_data([j(3001), j(3002), j(3003)]) == {j(3002): [OUT2, OUT2B]}
    assert b.calls.total == 1
    assert b.job_output_data([]) == {}


def test_it_checks_catalogue_existence_in_batches(rworld):
    b = rworld.backend
    assert b.catalogue_available() is True
    b.calls.reset()
    got = b.catalogue_exists([OUT1A, OUT2B, IN1, OUT1A])
    assert got == {OUT1A: True, OUT2B: False, IN1: True}
    assert b.calls.total == 1
    many = [f"{R}/none/{i}.h5" for i in range(450)] + [OUT2]
    b.calls.reset()
    got = b.catalogue_exists(many)
    assert len(got) == 451 and got[OUT2] is True and not any(v for k, v in got.items() if k != OUT2)
    # 200 LFNs per call, as DIRAC's agent asks.
    assert b.calls.total == 3


def test_it_finds_each_jobs_registered_outputs_by_jobid_metadata(rworld):
    b, j = rworld.backend, rworld.j
    b.calls.reset()
    got = b.catalogue_files_by_job([j(3001), j(3002), j(3003), UNKNOWN_JOB])
    assert got == {j(3001): [OUT1A, OUT1B], j(3002): [OUT2]}
    assert b.calls.total == 1


def test_it_reads_the_request_status_of_jobs_that_have_one(rworld):
    b, j = rworld.backend, rworld.j
    b.calls.reset()
    assert b.job_requests([j(3001), j(3002), j(3003)]) == {j(3001): "Done", j(3003): "Waiting"}
    assert b.calls.total <= 2
    assert b.job_requests([j(3002)]) == {}


def test_it_forces_a_failed_job_done(rworld):
    b, j = rworld.backend, rworld.j
    b.set_job_status([j(3001)], "Done", minor_status="Job forced to Done", force=True)
    job = b.jobs([j(3001)])[j(3001)]
    assert (job.status, job.minor_status) == ("Done", "Job forced to Done")
    # The application status is DIRAC's job's own; a forced status leaves it.
    assert job.application_status == "Failed upload"
    # Again: the same answer (an action retried after a crash).
    b.set_job_status([j(3001)], "Done", minor_status="Job forced to Done", force=True)
    assert b.jobs([j(3001)])[j(3001)].status == "Done"


def test_it_forces_several_jobs_one_call_each(rworld):
    b, j = rworld.backend, rworld.j
    b.calls.reset()
    b.set_job_status([j(3002), j(3003)], "Failed", minor_status="Job forced to Failed")
    assert b.calls.total == 2
    states = b.jobs([j(3002), j(3003)])
    assert {s.status for s in states.values()} == {"Failed"}
    assert states[j(3002)].minor_status == "Job forced to Failed"


def test_without_force_the_job_state_machine_keeps_a_failed_job_failed(rworld):
    b, j = rworld.backend, rworld.j
    b.set_job_status([j(3003)], "Done", minor_status="Job forced to Done", force=False)
    assert b.jobs([j(3003)])[j(3003)].status == "Failed"


def test_it_names_unknown_jobs_it_could_not_set(rworld):
    b, j = rworld.backend, rworld.j
    with pytest.raises(BackendError) as err:
        b.set_job_status([j(3001), UNKNOWN_JOB], "Done", minor_status="Job forced to Done")
    assert str(UNKNOWN_JOB) in str(err.value)
    # The known job was still set.
    assert b.jobs([j(3001)])[j(3001)].status == "Done"


def test_it_forces_file_statuses_given_as_a_mapping(rworld):
    b, t = rworld.backend, rworld.t(4861)
    written = b.set_file_status(t, {IN1: "Processed", IN2: "Processed", IN4: "Unused"}, force=True)
    # Forced: a Processed file may go back to Unused (DataRecoveryAgent forces every input status).
    assert dict(written) == {IN1: "Processed", IN2: "Processed", IN4: "Unused"}
    files = {f.lfn: f for f in b.files([t], lfns=[IN1, IN2, IN4])}
    assert files[IN1].status == "Processed" and files[IN1].error_count == 0
    assert files[IN4].status == "Unused" and files[IN4].error_count == 0


def test_forced_deleted_counts_an_error_for_an_assigned_file(rworld):
    b, t = rworld.backend, rworld.t(4861)
    assert dict(b.set_file_status(t, {IN5: "Deleted", IN4: "MaxReset"}, force=True)) == {
        IN5: "Deleted", IN4: "MaxReset"}
    files = {f.lfn: f for f in b.files([t], lfns=[IN4, IN5])}
    assert (files[IN5].status, files[IN5].error_count) == ("Deleted", 1)
    assert (files[IN4].status, files[IN4].error_count) == ("MaxReset", 0)


def test_not_forced_a_mapping_keeps_processed_processed(rworld):
    b, t = rworld.backend, rworld.t(4861)
    written = b.set_file_status(t, {IN4: "Unused", IN3: "Unused"})
    assert dict(written) == {IN3: "Unused"}
    assert {f.lfn: f.status for f in b.files([t], lfns=[IN3, IN4])} == {IN3: "Unused", IN4: "Processed"}


def test_it_removes_catalogue_entries(rworld):
    b, j = rworld.backend, rworld.j
    assert b.remove_catalogue_files([OUT1A, f"{R}/never.h5"]) == {OUT1A: "", f"{R}/never.h5": ""}
    assert b.catalogue_exists([OUT1A, OUT1B]) == {OUT1A: False, OUT1B: True}
    assert b.catalogue_files_by_job([j(3001)]) == {j(3001): [OUT1B]}
    # Idempotent: removing it again is not an error.
    assert b.remove_catalogue_files([OUT1A]) == {OUT1A: ""}


def test_empty_asks_cost_nothing(rworld):
    b = rworld.backend
    b.calls.reset()
    assert b.job_input_data([]) == {} and b.catalogue_exists([]) == {}
    assert b.catalogue_files_by_job([]) == {} and b.job_requests([]) == {}
    assert b.remove_catalogue_files([]) == {} and b.set_job_status([], "Done", minor_status="x") is None
    assert b.calls.total == 0


@pytest.mark.parametrize("kind", ["simulated", "simulated-fast"])
def test_without_a_catalog_the_simulator_knows_no_catalogue(kind):
    b = make_world(kind, CONTRACT_SCENARIO).backend
    assert b.catalogue_available() is False
    for call in (lambda: b.catalogue_exists(["/x"]), lambda: b.catalogue_files_by_job([1001]),
                 lambda: b.remove_catalogue_files(["/x"])):
        with pytest.raises(BackendError, match="no file catalogue"):
            call()
    # The rest of recovery still reads: the Job DB and the requests.
    assert b.job_requests([1001]) == {}
    assert b.job_input_data([1001]) == {1001: ["/ctao/c/a1.h5", "/ctao/c/a2.h5"]}
