"""The real-DIRAC adapter against real DIRAC 9.1.22 services (tests/dirac/services.sh start).

Run with the DIRAC venv's python, which has DIRAC and the product:
    eval "$(tests/dirac/services.sh env)"; $DIRAC_TEST_PYTHON -m pytest -m dirac tests/dirac
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from failover.backends.base import DiracBackend
from failover.domain import FileInfo, JobInfo, TaskInfo
from failover.errors import BackendError, BackendTimeout
from tests.dirac.support import stopped_service

pytestmark = [
    pytest.mark.dirac,
    pytest.mark.skipif(
        os.environ.get("DIRAC_TEST_SERVICES") != "1",
        reason="real DIRAC services not started: run tests/dirac/services.sh start",
    ),
]

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

SCENARIO = {
    "productions": [{"id": 7, "name": "Prod5b_LaPalma_gamma", "status": "Active"}],
    "transformations": [
        {"id": 4847, "name": "Prod5b_sim", "type": "MCSimulation", "status": "Active",
         "group_size": 1, "production": 7, "parent": -1},
        {"id": 4848, "name": "Prod5b_merge50", "type": "Merging", "status": "Active",
         "group_size": 50, "production": 7, "parent": 4847},
        {"id": 4849, "name": "Prod5b_train", "type": "Training", "status": "Flush",
         "group_size": 2.5, "production": 7, "parent": 4848},
        {"id": 5000, "name": "standalone_reco", "type": "DataReprocessing", "status": "Stopped",
         "group_size": 3},
    ],
    "files": [
        {"transformation": 4848, "lfn": "/ctao/m/f1", "status": "Assigned", "task": 1},
        {"transformation": 4848, "lfn": "/ctao/m/f2", "status": "Assigned", "task": 1, "error_count": 3},
        {"transformation": 4848, "lfn": "/ctao/m/f3", "status": "Processed", "task": 2},
        {"transformation": 4848, "lfn": "/ctao/m/f4", "status": "Assigned", "task": 4, "error_count": 10},
        {"transformation": 4848, "lfn": "/ctao/m/f5", "status": "Unused", "task": None, "error_count": 20},
        {"transformation": 4848, "lfn": "/ctao/m/f6", "status": "MaxReset", "task": 4, "error_count": 11},
        {"transformation": 4848, "lfn": "/ctao/m/f7", "status": "Unused", "task": None},
        {"transformation": 5000, "lfn": "/ctao/m/f1", "status": "Problematic", "task": None},
    ],
    "tasks": [
        {"transformation": 4847, "task": 1, "job": 1001, "status": "Done"},
        {"transformation": 4847, "task": 2, "job": 1002, "status": "Running"},
        {"transformation": 4848, "task": 1, "job": 1003, "status": "Submitted"},
        {"transformation": 4848, "task": 2, "job": 1004, "status": "Done"},
        # task 3 left out on purpose: a gap in the numbering
        {"transformation": 4848, "task": 4, "job": 1005, "status": "Running"},
        {"transformation": 4848, "task": 5, "job": 0, "status": "Created"},
    ],
    "jobs": [
        {"id": 1001, "status": "Done", "minor_status": "Execution Complete", "application_status": "Done",
         "site": "LCG.IN2P3-CC.fr"},
        {"id": 1002, "status": "Running", "minor_status": "Application", "application_status": "Running",
         "site": "LCG.CNAF.it"},
        {"id": 1003, "status": "Failed", "minor_status": "Maximum of reschedulings reached",
         "application_status": "Failed Input Data Resolution", "site": "LCG.GRIF.fr"},
        {"id": 1004, "status": "Done", "minor_status": "Execution Complete", "application_status": "Done",
         "site": "LCG.GRIF.fr"},
        {"id": 1005, "status": "Killed", "minor_status": "Marked for termination", "application_status": "Unknown",
         "site": "LCG.DESY-ZEUTHEN.de"},
    ],
}


@pytest.fixture
def loaded():
    from failover.backends.dirac import clear_parent_cache
    from tests.dirac.load_scenario import load

    ids = load(SCENARIO)
    clear_parent_cache()
    return ids


@pytest.fixture
def adapter():
    from failover.backends.dirac import DiracAdapter

    return DiracAdapter(timeout=30)


def by_lfn(files: list[FileInfo]) -> dict[str, FileInfo]:
    return {f.lfn: f for f in files}


# -- reads ------------------------------------------------------------------------------------------
def test_it_satisfies_the_protocol(adapter):
    assert isinstance(adapter, DiracBackend)
    assert adapter.name == "dirac"


def test_it_reads_transformations_with_production_and_parent(adapter, loaded):
    got = {t.id: t for t in adapter.transformations()}
    t = loaded.tid
    assert set(got) == {t(4847), t(4848), t(4849), t(5000)}
    assert got[t(4847)].name == "Prod5b_sim"
    assert got[t(4847)].type == "MCSimulation"
    assert got[t(4849)].status == "Flush"
    assert got[t(4849)].group_size == 2.5
    prod = loaded.productions[7]
    assert (got[t(4847)].production, got[t(4847)].parent) == (prod, -1)
    assert (got[t(4848)].production, got[t(4848)].parent) == (prod, t(4847))
    assert (got[t(4849)].production, got[t(4849)].parent) == (prod, t(4848))
    assert (got[t(5000)].production, got[t(5000)].parent) == (None, None)
    assert adapter.calls.by_method["getTransformations"] == 1
    # CTADIRAC's RPC, once per production member, then cached for the process.
    assert adapter.calls.by_method["get_parent_transformation"] == 3
    adapter.calls.reset()
    adapter.transformations()
    assert adapter.calls.snapshot() == {"getTransformations": 1}


def test_it_rebuilds_parents_from_the_production_description_without_ctadirac(loaded):
    from failover.backends.dirac import DiracAdapter

    vanilla = DiracAdapter(use_ctadirac=False)
    got = {t.id: t.parent for t in vanilla.transformations()}
    t = loaded.tid
    assert got == {t(4847): -1, t(4848): t(4847), t(4849): t(4848), t(5000): None}
    assert "get_parent_transformation" not in vanilla.calls.by_method


def test_it_filters_transformations(adapter, loaded):
    t = loaded.tid
    assert [x.id for x in adapter.transformations(statuses=["Flush", "Stopped"])] == sorted([t(4849), t(5000)])
    assert [x.id for x in adapter.transformations(types=["Merging"])] == [t(4848)]
    assert [x.id for x in adapter.transformations(ids=[t(4847), 999_999])] == [t(4847)]
    assert adapter.transformations(ids=[]) == []
    assert adapter.transformations(statuses=["Active"], types=["Training"]) == []


def test_it_counts_files_in_one_call(adapter, loaded):
    t = loaded.tid
    counts = adapter.file_counts([t(4847), t(4848), t(5000)])
    assert counts[t(4847)].by_status == {}
    assert counts[t(4848)].by_status == {"Assigned": 3, "Processed": 1, "Unused": 2, "MaxReset": 1}
    assert counts[t(4848)].total == 7
    assert counts[t(5000)].by_status == {"Problematic": 1}
    assert adapter.calls.snapshot() == {"getCounters": 1}


def test_it_reads_tasks_keeping_their_numbers(adapter, loaded):
    t, j = loaded.tid, loaded.job
    tasks = adapter.tasks([t(4847), t(4848)])
    assert tasks == [
        TaskInfo(t(4847), 1, j(1001), "Done"),
        TaskInfo(t(4847), 2, j(1002), "Running"),
        TaskInfo(t(4848), 1, j(1003), "Submitted"),
        TaskInfo(t(4848), 2, j(1004), "Done"),
        TaskInfo(t(4848), 4, j(1005), "Running"),
        TaskInfo(t(4848), 5, 0, "Created"),
    ]
    assert adapter.calls.snapshot() == {"getTransformationTasks": 1}


def test_it_reads_files_with_filters(adapter, loaded):
    t = loaded.tid
    files = by_lfn(adapter.files([t(4848)]))
    assert files["/ctao/m/f2"] == FileInfo(t(4848), "/ctao/m/f2", "Assigned", 1, 3)
    assert files["/ctao/m/f5"] == FileInfo(t(4848), "/ctao/m/f5", "Unused", None, 20)
    assert len(files) == 7
    assigned = adapter.files([t(4848), t(5000)], statuses=["Assigned"])
    assert sorted(f.lfn for f in assigned) == ["/ctao/m/f1", "/ctao/m/f2", "/ctao/m/f4"]
    both = adapter.files([t(4848), t(5000)], lfns=["/ctao/m/f1"])
    assert sorted((f.transformation, f.status) for f in both) == sorted(
        [(t(4848), "Assigned"), (t(5000), "Problematic")]
    )
    assert adapter.files([t(4848)], lfns=[]) == []
    assert adapter.calls.snapshot() == {"getTransformationFiles": 3}


def test_it_reads_jobs_and_leaves_out_unknown_ones(adapter, loaded):
    j = loaded.job
    jobs = adapter.jobs([j(1003), j(1005), 987_654_321])
    assert jobs == {
        j(1003): JobInfo(j(1003), "Failed", "Maximum of reschedulings reached", "Failed Input Data Resolution",
                         "LCG.GRIF.fr"),
        j(1005): JobInfo(j(1005), "Killed", "Marked for termination", "Unknown", "LCG.DESY-ZEUTHEN.de"),
    }
    assert all(isinstance(k, int) for k in jobs)
    assert adapter.calls.snapshot() == {"getJobsStates": 1, "getJobsSites": 1}
    assert adapter.jobs([]) == {}


def test_it_chunks_job_reads(loaded):
    from failover.backends.dirac import DiracAdapter

    small = DiracAdapter(job_chunk=2)
    got = small.jobs(loaded.jobs.values())
    assert len(got) == 5
    assert small.calls.snapshot() == {"getJobsStates": 3, "getJobsSites": 3}


# -- writes -----------------------------------------------------------------------------------------
def test_it_sets_several_task_statuses_in_one_call(adapter, loaded):
    t = loaded.tid
    adapter.set_task_status(t(4848), [1, 4], "Failed")
    assert adapter.calls.snapshot() == {"setTaskStatus": 1}
    statuses = {k.task: k.status for k in adapter.tasks([t(4848)])}
    assert statuses == {1: "Failed", 2: "Done", 4: "Failed", 5: "Created"}


def test_reassigning_a_file_raises_its_error_count(adapter, loaded):
    t = loaded.tid
    written = adapter.set_file_status(t(4848), ["/ctao/m/f1", "/ctao/m/f2"], "Unused")
    assert written == {"/ctao/m/f1": "Unused", "/ctao/m/f2": "Unused"}
    # ceil(2/1000) reads of the current rows, then one write.
    assert adapter.calls.snapshot() == {"setFileStatusForTransformation": 2}
    files = by_lfn(adapter.files([t(4848)]))
    assert (files["/ctao/m/f1"].status, files["/ctao/m/f1"].error_count) == ("Unused", 1)
    assert (files["/ctao/m/f2"].status, files["/ctao/m/f2"].error_count) == ("Unused", 4)
    # DIRAC keeps the TaskID of a file put back to Unused.
    assert files["/ctao/m/f1"].task == 1


def test_processed_is_sticky_and_absent_from_the_answer(adapter, loaded):
    t = loaded.tid
    written = adapter.set_file_status(t(4848), ["/ctao/m/f3"], "Unused")
    assert written == {}
    # Nothing to write: only the read was sent.
    assert adapter.calls.snapshot() == {"setFileStatusForTransformation": 1}
    assert by_lfn(adapter.files([t(4848)]))["/ctao/m/f3"].status == "Processed"


def test_an_unused_proposal_becomes_max_reset_at_a_multiple_of_ten_errors(adapter, loaded):
    t = loaded.tid
    written = adapter.set_file_status(t(4848), ["/ctao/m/f4", "/ctao/m/f5", "/ctao/m/f6", "/ctao/m/f7"], "Unused")
    # f4 Assigned with 10 errors, f5 Unused with 20: MaxReset. f6 already MaxReset: stays (absent).
    # f7 already Unused: unchanged (absent).
    assert written == {"/ctao/m/f4": "MaxReset", "/ctao/m/f5": "MaxReset"}
    files = by_lfn(adapter.files([t(4848)]))
    # The error count rises only for a file leaving Assigned (for anything but Processed).
    assert (files["/ctao/m/f4"].status, files["/ctao/m/f4"].error_count) == ("MaxReset", 11)
    assert (files["/ctao/m/f5"].status, files["/ctao/m/f5"].error_count) == ("MaxReset", 20)
    assert (files["/ctao/m/f6"].status, files["/ctao/m/f6"].error_count) == ("MaxReset", 11)


def test_unknown_lfns_are_absent_from_the_answer(adapter, loaded):
    assert adapter.set_file_status(loaded.tid(4848), ["/not/there"], "Unused") == {}
    assert adapter.set_file_status(loaded.tid(4848), [], "Unused") == {}


def test_transformation_status_is_compare_and_set(adapter, loaded):
    t = loaded.tid
    adapter.set_transformation_status(t(4848), "Flush", expected="Active")
    # getTransformation + getTransformationParameters + the write.
    assert adapter.calls.snapshot() == {"setTransformationParameter": 3}
    assert adapter.transformations(ids=[t(4848)])[0].status == "Flush"

    adapter.calls.reset()
    with pytest.raises(BackendError) as err:
        adapter.set_transformation_status(t(4848), "Completed", expected="Active")
    assert "Flush" in str(err.value)
    assert err.value.retriable is False
    assert adapter.calls.snapshot() == {"setTransformationParameter": 2}
    assert adapter.transformations(ids=[t(4848)])[0].status == "Flush"


def test_an_unknown_transformation_raises_backend_error(adapter, loaded):
    with pytest.raises(BackendError, match="does not exist"):
        adapter.set_transformation_status(999_999, "Flush", expected="Active")
    with pytest.raises(BackendError, match="does not exist"):
        adapter.set_task_status(999_999, [1], "Done")
    # DIRAC answers reads about it with nothing, and a file-status change with nothing written.
    assert adapter.transformations(ids=[999_999]) == []
    assert adapter.tasks([999_999]) == []
    assert adapter.files([999_999]) == []
    assert adapter.file_counts([999_999])[999_999].total == 0
    assert adapter.set_file_status(999_999, ["/ctao/m/f1"], "Unused") == {}


def test_a_service_that_does_not_answer_fails_quickly():
    from failover.backends.dirac import DiracAdapter

    dead = DiracAdapter(
        timeout=3,
        urls={
            "Transformation/TransformationManager": "dips://localhost:9199/Transformation/TransformationManager",
            "WorkloadManagement/JobMonitoring": "dips://localhost:9199/WorkloadManagement/JobMonitoring",
        },
    )
    started = time.monotonic()
    with pytest.raises(BackendTimeout):
        dead.transformations()
    with pytest.raises(BackendTimeout):
        dead.jobs([1])
    # DIRAC itself retries a refused connection three times, two seconds apart.
    assert time.monotonic() - started < 15


def test_the_recovery_services_that_do_not_answer_fail_quickly():
    from failover.backends.dirac import DiracAdapter

    dead = DiracAdapter(
        timeout=3,
        urls={
            name: f"dips://localhost:9199/{name}"
            for name in ("DataManagement/FileCatalog", "RequestManagement/ReqManager",
                         "WorkloadManagement/JobStateUpdate")
        },
    )
    assert dead.catalogue_available()
    for call in (lambda: dead.catalogue_exists(["/ctao/x"]), lambda: dead.catalogue_files_by_job([1]),
                 lambda: dead.job_requests([1]),
                 lambda: dead.set_job_status([1], "Done", minor_status="Job forced to Done")):
        started = time.monotonic()
        with pytest.raises(BackendTimeout) as err:
            call()
        assert err.value.call in {"exists", "findFilesByMetadataDetailed", "getRequestIDsForJobs", "setJobStatus"}
        assert time.monotonic() - started < 15


def test_without_a_catalogue_the_catalogue_calls_say_so():
    from failover.backends.dirac import DiracAdapter

    none = DiracAdapter(timeout=5, catalogue=False)
    assert none.catalogue_available() is False
    for call in (lambda: none.catalogue_exists(["/ctao/x"]), lambda: none.catalogue_files_by_job([1]),
                 lambda: none.remove_catalogue_files(["/ctao/x"])):
        with pytest.raises(BackendError, match="no file catalogue"):
            call()
    assert none.calls.total == 0
    # The services' CS names a FileCatalog: found without any call to DIRAC's services.
    found = DiracAdapter(timeout=5)
    assert found.catalogue_available() is True and found.calls.total == 0


def test_a_stopped_service_gives_backend_timeout_and_dirac_check_says_so(loaded):
    """Stops the real JobMonitoring process, then starts it again."""
    from failover.backends.dirac import DiracAdapter

    with stopped_service():
        started = time.monotonic()
        with pytest.raises(BackendTimeout):
            DiracAdapter(timeout=3).jobs(loaded.jobs.values())
        assert time.monotonic() - started < 15
        result = run_check()
        assert result.returncode == 1
        assert "JobMonitoring" in result.stdout and "does not answer" in result.stdout
        assert "Traceback" not in result.stdout + result.stderr


# -- manage.py dirac check ----------------------------------------------------------------------------
def run_check(**env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.dirac.check_settings", **env}
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO), environment.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "django", "dirac", "check", "--timeout", "5"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_dirac_check_passes():
    result = run_check()
    assert result.returncode == 0, result.stdout + result.stderr
    for service in ("TransformationManager", "ProductionManager", "JobMonitoring"):
        assert service in result.stdout
    assert "has ProductionManagement" in result.stdout


def test_dirac_check_names_a_wrong_configuration_server(tmp_path):
    cfg = tmp_path / "dirac.cfg"
    cfg.write_text(Path(os.environ["DIRACSYSCONFIG"]).read_text().replace(":9135/", ":9199/"))
    result = run_check(DIRACSYSCONFIG=str(cfg))
    assert result.returncode == 1
    assert "Configuration Server does not answer" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_dirac_check_names_a_missing_configuration(tmp_path):
    result = run_check(DIRACSYSCONFIG=str(tmp_path / "nowhere.cfg"))
    assert result.returncode == 1
    assert "does not exist" in result.stdout


def test_dirac_check_names_a_missing_proxy(tmp_path):
    result = run_check(X509_USER_PROXY=str(tmp_path / "no-proxy.pem"))
    assert result.returncode == 1
    assert "no proxy at" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_dirac_check_names_a_group_without_production_management():
    result = run_check(X509_USER_PROXY=os.environ["DIRAC_TEST_PROXY_NO_PRODUCTION_MANAGEMENT"])
    assert result.returncode == 1
    assert "lacks ProductionManagement" in result.stdout
