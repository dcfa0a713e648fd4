"""The scenario's recovery fields (docs/scenario.md, "Recovery"): jobs' input_data and output_data,
the File Catalog and the Request Management System: validation, load, dump, and what advance keeps."""

from __future__ import annotations

import copy

import pytest

from failover.errors import ScenarioError
from failover.simulated.advance import advance
from failover.simulated.models import SimJob
from failover.simulated.scenario import read_text, to_json, validate
from failover.simulated.store import dump, load
from tests.contract.scenario import CONTRACT_SCENARIO, RECOVERY_SCENARIO, R

BOTH_DATABASES = pytest.mark.django_db(databases="__all__")


def recovery() -> dict:
    return copy.deepcopy(RECOVERY_SCENARIO)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["jobs"][1].update(input_data="/one/lfn"),
     "jobs[1].input_data: must be a list of LFNs, not '/one/lfn'"),
    (lambda d: d["jobs"][1].update(output_data=["/a", " "]),
     "jobs[1].output_data[1]: must be a non-empty string, not ' '"),
    (lambda d: d["jobs"][1].update(output_data=["/a", 7]),
     "jobs[1].output_data[1]: must be a non-empty string, not 7"),
    (lambda d: d.update(catalog={"lfn": "/a"}), "catalog: must be a list"),
    (lambda d: d["catalog"].append({"lfn": f"{R}/in1.h5"}),
     f"catalog[8].lfn: {R}/in1.h5 appears twice in the catalog"),
    (lambda d: d["catalog"].append({"metadata": {"jobID": "1"}}),
     "catalog[8].lfn: must be a non-empty string, not None"),
    (lambda d: d["catalog"][0].update(metadata=["jobID"]),
     "catalog[0].metadata: must be a mapping of names to values, not ['jobID']"),
    (lambda d: d["catalog"][0].update(metadata={"jobID": {"x": 1}}),
     "catalog[0].metadata.jobID: must be a string or a number, not {'x': 1}"),
    (lambda d: d["catalog"][0].update(ancestors="/x"), "catalog[0].ancestors: must be a list of LFNs, not '/x'"),
    (lambda d: d["catalog"][0].update(size=3), "catalog[0].size: unknown field (expected lfn, metadata, ancestors)"),
    (lambda d: d["requests"].append({"job": 4242, "status": "Waiting"}), "requests[2].job: job 4242 does not exist"),
    (lambda d: d["requests"].append({"job": 3001, "status": "Waiting"}),
     "requests[2].job: job 3001 already has a request (at most one per job)"),
    (lambda d: d["requests"][0].update(status=""), "requests[0].status: must be a non-empty string, not ''"),
    (lambda d: d["requests"][0].update(job="3001"), "requests[0].job: must be a positive integer, not '3001'"),
])
def test_it_names_the_place_of_each_recovery_error(mutate, message):
    data = recovery()
    mutate(data)
    with pytest.raises(ScenarioError) as info:
        validate(data)
    assert str(info.value) == message


def test_it_sorts_the_catalog_by_lfn_and_requests_by_job():
    data = recovery()
    data["catalog"].reverse()
    data["requests"].reverse()
    s = validate(data)
    assert [c["lfn"] for c in s.catalog] == sorted(c["lfn"] for c in RECOVERY_SCENARIO["catalog"])
    assert [r["job"] for r in s.requests] == [3001, 3003]


def test_without_the_recovery_keys_nothing_changes():
    s = validate(copy.deepcopy(CONTRACT_SCENARIO))
    assert s.catalog is None and s.requests is None
    assert "catalog" not in s.as_dict() and "requests" not in s.as_dict()
    assert all("input_data" not in j and "output_data" not in j for j in s.jobs)


@BOTH_DATABASES
def test_it_round_trips_the_recovery_fields():
    load(validate(recovery()))
    dumped = dump().as_dict()
    expected = validate(recovery()).as_dict()
    assert dumped == expected
    # Only what was given: 3002's input_data, not the derived ones of 3001 and 3003.
    assert [j.get("input_data") for j in dumped["jobs"]] == [None, [f"{R}/in3.h5"], None]
    assert [j.get("output_data") for j in dumped["jobs"]] == [None, [f"{R}/out2.h5", f"{R}/out2b.h5"], None]
    text = to_json(dump())
    load(read_text(text))
    assert to_json(dump()) == text


@BOTH_DATABASES
def test_an_empty_catalog_is_a_known_empty_catalogue():
    data = copy.deepcopy(CONTRACT_SCENARIO)
    data["catalog"] = []
    data["requests"] = []
    load(validate(data))
    dumped = dump().as_dict()
    assert dumped["catalog"] == [] and dumped["requests"] == []
    from failover.simulated.backend import SimulatedDirac

    b = SimulatedDirac()
    assert b.catalogue_available() and b.catalogue_exists(["/ctao/c/a1.h5"]) == {"/ctao/c/a1.h5": False}


@BOTH_DATABASES
def test_a_dump_without_recovery_keys_writes_none():
    load(validate(copy.deepcopy(CONTRACT_SCENARIO)))
    dumped = dump().as_dict()
    assert "catalog" not in dumped and "requests" not in dumped
    assert all("input_data" not in j and "output_data" not in j for j in dumped["jobs"])


@BOTH_DATABASES
def test_a_removed_catalogue_entry_is_gone_from_the_dump():
    from failover.simulated.backend import SimulatedDirac

    load(validate(recovery()))
    SimulatedDirac().remove_catalogue_files([f"{R}/out1a.h5"])
    assert f"{R}/out1a.h5" not in {c["lfn"] for c in dump().catalog}


@BOTH_DATABASES
def test_it_keeps_a_jobs_input_data_from_submission_on():
    data = {
        "transformations": [{"id": 10, "name": "t", "type": "Merging", "status": "Active", "group_size": 2}],
        "files": [{"transformation": 10, "lfn": f"/f/{i}", "status": "Unused", "task": None} for i in range(2)],
    }
    load(validate(data))
    advance(seed=1)
    (job,) = SimJob.objects.all()
    assert job.input_data == ["/f/0", "/f/1"] and not job.input_data_given
    # A derived input list is not written back by dump.
    assert "input_data" not in dump().jobs[0]


@BOTH_DATABASES
def test_input_data_loses_a_leading_lfn_prefix_as_in_the_job_db():
    from failover.simulated.backend import SimulatedDirac

    data = recovery()
    data["jobs"][1]["input_data"] = [f"LFN:{R}/in3.h5 "]
    load(validate(data))
    assert SimulatedDirac().job_input_data([3002]) == {3002: [f"{R}/in3.h5"]}
