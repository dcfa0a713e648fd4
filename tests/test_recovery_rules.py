"""The recovery checks (failover/recovery.py) as table tests.

The peer suite: every case of DIRAC 9.1.22's own unit tests of the DataRecoveryAgent,
``src/DIRAC/TransformationSystem/test/Test_DRA.py`` (``test_checkJob_others_``, ``test_checkJob``,
``test_failHard``) and ``Test_JobInfo.py`` (the predicate table ``test_fileChecker``,
``test_allFilesExist``, ``test_allFilesMissing``, ``test_getTaskInfo_*``, ``test_checkFileExistence``),
re-expressed with the same inputs and the same expected actions. Each row cites its case.
DIRAC's calls map to our actions: setJobDone = job_done, setJobFailed = job_failed,
setInputProcessed / Unused / MaxReset / Deleted = inputs_*, cleanOutputs = remove_outputs.
DIRAC's ``counter`` is the index of the check in ``todo["InputFiles"]``: our case number is counter + 1.
"""

from __future__ import annotations

import pytest

from failover import recovery as r
from failover.domain import FileInfo

D, F = "Done", "Failed"
JD, JF = r.JOB_DONE, r.JOB_FAILED
IP, IU, IM, IDEL, CLEAN = r.INPUTS_PROCESSED, r.INPUTS_UNUSED, r.INPUTS_MAX_RESET, r.INPUTS_DELETED, r.REMOVE_OUTPUTS


def dra_job(*, jStat=D, others=False, inFiles=("/my/inputfile.lfn",), outFiles=("/my/stupid/file.lfn",),
            ifStat=(), ofStat=("Exists",), tFiStat=("Processed",), errorCount=()) -> r.JobFacts:
    """A job as Test_DRA.test_checkJob_others_ builds it, with its defaults."""
    return r.JobFacts(
        job=1234567, status=jStat, task=1, inputs=tuple(inFiles), input_status=tuple(ifStat),
        file_status=tuple(tFiStat), error_counts=tuple(errorCount), other_tasks=(7,) if others else (),
        outputs=r.Outputs(r.SOURCE_PRODUCTION_OUTPUT_DATA, tuple(outFiles), tuple(ofStat)),
    )


# (DIRAC case, DIRAC counter, expected actions, inputs, already claimed LFNs)
OTHERS = [
    ("param 1, counter 0", 0, [JD, IP],
     dict(jStat=F, ifStat=["Exists"], ofStat=["Exists"], tFiStat=["Assigned"], others=True), []),
    ("param 2, counter 1", 1, [JF],
     dict(ifStat=["Exists"], ofStat=["Missing"], others=True), ["/my/inputfile.lfn"]),
    ("param 3, counter 2", 2, [JF, CLEAN], dict(ifStat=["Exists"], others=True), ["/my/inputfile.lfn"]),
    ("param 4, counter 3", 3, [CLEAN, JF, IDEL], dict(ifStat=["Missing"]), []),
    ("param 5, counter 4", 4, [CLEAN, JF], dict(tFiStat=["Deleted"], ifStat=["Missing"]), []),
    ("param 6, counter 5", 5, [JD, IP], dict(jStat=F, ifStat=["Exists"], tFiStat=["Assigned"]), []),
    ("param 7, counter 6", 6, [JD], dict(jStat=F, ifStat=["Exists"], tFiStat=["Processed"]), []),
    ("param 8, counter 7", 7, [IP], dict(jStat=D, ifStat=["Exists"], tFiStat=["Assigned"]), []),
    ("param 9, counter 8", 8, [IM],
     dict(jStat=F, ifStat=["Exists"], ofStat=["Missing"], tFiStat=["Assigned"], errorCount=[14]), []),
    ("param 10, counter 9", 9, [IU],
     dict(jStat=F, ifStat=["Exists"], ofStat=["Missing"], tFiStat=["Assigned"], errorCount=[2]), []),
    ("param 11, counter 10", 10, [IU, JF],
     dict(jStat=D, ifStat=["Exists"], ofStat=["Missing"], tFiStat=["Assigned"]), []),
    ("param 12, counter 11", 11, [CLEAN, IU],
     dict(jStat=F, ifStat=["Exists"], ofStat=["Missing", "Exists"], tFiStat=["Assigned"]), []),
    ("param 13, counter 12", 12, [CLEAN, IU, JF],
     dict(jStat=D, ifStat=["Exists"], ofStat=["Missing", "Exists"], tFiStat=["Assigned"]), []),
    ("param 14, counter 13", 13, [JF],
     dict(jStat=D, ifStat=["Exists"], ofStat=["Missing", "Missing"], tFiStat=["Unused"]), []),
    ("param 15, counter 14", 14, [],
     dict(jStat="Strange", ifStat=["Exists"], ofStat=["Exists"], tFiStat=["Processed"]), []),
    ("param 16, counter -1", -1, [],
     dict(jStat=F, ifStat=["Exists"], ofStat=["Missing", "Missing"],
          outFiles=["/my/stupid/file.lfn", "/my/stupid/file2.lfn"], tFiStat=["Processed"], others=True), []),
]


@pytest.mark.parametrize("cite,counter,actions,inputs,claimed", OTHERS, ids=[row[0] for row in OTHERS])
def test_dra_checkJob_others(cite, counter, actions, inputs, claimed):
    """Test_DRA.py::test_checkJob_others_ (its 16 parameterised cases, in order)."""
    claimed_set = set(claimed)
    finding = r.check_job(dra_job(**inputs), with_input=True, claimed=claimed_set)
    assert list(finding.actions) == actions
    if counter == -1:
        assert finding.state == r.NO_MATCH and finding.case == ""
    else:
        # DIRAC counts the check at index ``counter``: our case number is counter + 1.
        assert finding.state == r.MATCH
        assert r.CASES[finding.case].number == str(counter + 1)
        assert r.INPUT_CASES[counter].code == finding.case
    if 0 <= counter <= 2:
        # As in DIRAC, the inputs are claimed after cases 1 to 3.
        assert {"/my/inputfile.lfn"} <= claimed_set


def test_all_16_dirac_cases_are_covered():
    """Every one of DIRAC's 15 checks plus the no-match row, as Test_DRA has them."""
    assert sorted(row[1] for row in OTHERS) == [-1, *range(15)]


# Test_DRA.py::test_checkJob: the two cases of input-less transformations (MCGeneration there).
NO_INPUT = [
    ("test_checkJob first option", F, ["Exists"], [JD], r.NO_INPUT_DONE.code),
    ("test_checkJob second option", D, ["Missing"], [JF], r.NO_INPUT_FAILED.code),
    ("test_checkJob third (Done, outputs exist: nothing)", D, ["Exists"], [], ""),
]


@pytest.mark.parametrize("cite,status,ofStat,actions,case", NO_INPUT, ids=[row[0] for row in NO_INPUT])
def test_dra_checkJob_no_input(cite, status, ofStat, actions, case):
    job = r.JobFacts(job=1234567, status=status,
                     outputs=r.Outputs(r.SOURCE_PRODUCTION_OUTPUT_DATA, ("/my/stupid/file.lfn",), tuple(ofStat)))
    finding = r.check_job(job, with_input=False, claimed=set())
    assert list(finding.actions) == actions
    assert finding.case == case


# Test_DRA.py::test_failHard: an input transformation's job without input files (case 16).
FAIL_HARD = [
    ("test_failHard param 1", D, (), ["Exists"], [CLEAN, JF]),
    ("test_failHard param 2 (jID 667)", F, (), ["Missing"], []),
]


@pytest.mark.parametrize("cite,status,inputs,ofStat,actions", FAIL_HARD, ids=[row[0] for row in FAIL_HARD])
def test_dra_fail_hard(cite, status, inputs, ofStat, actions):
    job = r.JobFacts(job=666, status=status, inputs=inputs, other_tasks=(7,),
                     outputs=r.Outputs(r.SOURCE_PRODUCTION_OUTPUT_DATA, ("/my/stupid/file.lfn",), tuple(ofStat)))
    finding = r.check_job(job, with_input=True, claimed=set())
    assert list(finding.actions) == actions
    assert finding.case == (r.FAILED_HARD.code if actions else "")


def test_dra_fail_hard_param_3_job_with_inputs_is_not_failed_hard():
    """test_failHard param 3 (jID 668, inFiles ["some"]): __failJobHard returns at once for a job with
    inputs; through checkJob such a job (other tasks, outputs missing, Failed) matches nothing."""
    job = r.JobFacts(job=668, status=F, inputs=("some",), other_tasks=(7,),
                     outputs=r.Outputs(r.SOURCE_PRODUCTION_OUTPUT_DATA, ("/my/stupid/file.lfn",), ("Missing",)))
    finding = r.check_job(job, with_input=True, claimed=set())
    assert finding.case != r.FAILED_HARD.code and CLEAN not in finding.actions


# Test_JobInfo.py::test_fileChecker (and test_allFilesExist / test_allFilesMissing), row by row:
# (DIRAC predicate, DIRAC attribute, value, expected)
PREDICATES = [
    ("allFilesExist", "outputFileStatus", ["Exists", "Exists"], True),
    ("allFilesExist", "outputFileStatus", ["Exists", "Missing"], False),
    ("allFilesExist", "outputFileStatus", ["Missing", "Exists"], False),
    ("allFilesExist", "outputFileStatus", ["Missing", "Missing"], False),
    ("allFilesExist", "outputFileStatus", [], False),
    ("allFilesMissing", "outputFileStatus", ["Exists", "Exists"], False),
    ("allFilesMissing", "outputFileStatus", ["Exists", "Missing"], False),
    ("allFilesMissing", "outputFileStatus", ["Missing", "Exists"], False),
    ("allFilesMissing", "outputFileStatus", ["Missing", "Missing"], True),
    ("allFilesMissing", "outputFileStatus", [], False),
    ("someFilesMissing", "outputFileStatus", ["Exists", "Exists"], False),
    ("someFilesMissing", "outputFileStatus", ["Exists", "Missing"], True),
    ("someFilesMissing", "outputFileStatus", ["Missing", "Exists"], True),
    ("someFilesMissing", "outputFileStatus", ["Missing", "Missing"], False),
    ("someFilesMissing", "outputFileStatus", [], False),
    ("allInputFilesExist", "inputFileStatus", ["Exists", "Exists"], True),
    ("allInputFilesExist", "inputFileStatus", ["Exists", "Missing"], False),
    ("allInputFilesExist", "inputFileStatus", ["Missing", "Missing"], False),
    ("allInputFilesExist", "inputFileStatus", [], False),
    ("allInputFilesMissing", "inputFileStatus", ["Exists", "Exists"], False),
    ("allInputFilesMissing", "inputFileStatus", ["Exists", "Missing"], False),
    ("allInputFilesMissing", "inputFileStatus", ["Missing", "Missing"], True),
    ("allInputFilesMissing", "inputFileStatus", [], False),
    ("someInputFilesMissing", "inputFileStatus", ["Exists", "Exists"], False),
    ("someInputFilesMissing", "inputFileStatus", ["Exists", "Missing"], True),
    ("someInputFilesMissing", "inputFileStatus", ["Missing", "Exists"], True),
    ("someInputFilesMissing", "inputFileStatus", ["Missing", "Missing"], False),
    ("someInputFilesMissing", "inputFileStatus", [], False),
    ("allFilesProcessed", "transFileStatus", ["Processed", "Processed"], True),
    ("allFilesProcessed", "transFileStatus", ["Processed", "Assigned"], False),
    ("allFilesProcessed", "transFileStatus", ["Assigned", "Assigned"], False),
    ("allFilesProcessed", "transFileStatus", ["Deleted", "Deleted"], False),
    ("allFilesProcessed", "transFileStatus", ["Unused", "Unused"], False),
    ("allFilesProcessed", "transFileStatus", [], False),
    ("allFilesAssigned", "transFileStatus", ["Processed", "Processed"], True),
    ("allFilesAssigned", "transFileStatus", ["Processed", "Assigned"], True),
    ("allFilesAssigned", "transFileStatus", ["Assigned", "Assigned"], True),
    ("allFilesAssigned", "transFileStatus", ["Assigned", "Unused"], False),
    ("allFilesAssigned", "transFileStatus", ["Deleted", "Deleted"], False),
    ("allFilesAssigned", "transFileStatus", ["Unused", "Unused"], False),
    ("allFilesAssigned", "transFileStatus", [], False),
    ("checkErrorCount", "errorCounts", [0, 9], False),
    ("checkErrorCount", "errorCounts", [0, 10], False),
    ("checkErrorCount", "errorCounts", [0, 11], True),
    ("checkErrorCount", "errorCounts", [0, 12], True),
    ("allTransFilesDeleted", "transFileStatus", ["Deleted", "Deleted"], True),
    ("allTransFilesDeleted", "transFileStatus", ["Deleted", "Assigned"], False),
    ("allTransFilesDeleted", "transFileStatus", ["Assigned", "Deleted"], False),
    ("allTransFilesDeleted", "transFileStatus", ["Assigned", "Assigned"], False),
]
_OURS = {
    "allFilesExist": lambda j: j.outputs.all_exist,
    "allFilesMissing": lambda j: j.outputs.all_missing,
    "someFilesMissing": lambda j: j.outputs.some_missing,
    "allInputFilesExist": lambda j: j.all_inputs_exist,
    "allInputFilesMissing": lambda j: j.all_inputs_missing,
    "someInputFilesMissing": lambda j: j.some_inputs_missing,
    "allFilesProcessed": lambda j: j.all_processed,
    "allFilesAssigned": lambda j: j.all_assigned,
    "checkErrorCount": lambda j: j.above_max_reset(r.DEFAULT_MAX_RESET),
    "allTransFilesDeleted": lambda j: j.all_deleted,
}


def _job_with(attr: str, value: list) -> r.JobFacts:
    if attr == "outputFileStatus":
        return r.JobFacts(job=123, status=F, outputs=r.Outputs(r.SOURCE_PRODUCTION_OUTPUT_DATA, (), tuple(value)))
    field = {"inputFileStatus": "input_status", "transFileStatus": "file_status", "errorCounts": "error_counts"}[attr]
    return r.JobFacts(job=123, status=F, **{field: tuple(value)})


@pytest.mark.parametrize("predicate,attr,value,expected", PREDICATES,
                         ids=[f"{p}-{'-'.join(map(str, v)) or 'empty'}" for p, _, v, _ in PREDICATES])
def test_jobinfo_predicates(predicate, attr, value, expected):
    """Test_JobInfo.py::test_fileChecker rows, test_allFilesExist and test_allFilesMissing."""
    assert _OURS[predicate](_job_with(attr, value)) is expected


def test_jobinfo_predicate_table_is_complete():
    """39 rows of test_fileChecker plus the 5 + 5 assertions of test_allFilesExist / test_allFilesMissing."""
    assert len(PREDICATES) == 49


# -- Test_JobInfo.py: getTaskInfo and checkFileExistence, on our job_facts ------------------------

def test_jobinfo_getTaskInfo_1_own_task():
    """test_getTaskInfo_1: the task holds the file; its status is the job's, no other tasks."""
    files = [FileInfo(1234, "lfn", "Assigned", 1234, error_count=7)]
    facts = r.job_facts(job=123, status=F, task=1234, inputs=["lfn"], files=files, existence={},
                        outputs=r.NO_OUTPUTS)
    assert facts.file_status == ("Assigned",) and facts.other_tasks == () and facts.error_counts == (7,)


def test_jobinfo_getTaskInfo_2_other_tasks():
    """test_getTaskInfo_2: the file now belongs to task 12: status from there, other tasks [12]."""
    files = [FileInfo(1234, "lfn", "Processed", 12, error_count=7)]
    facts = r.job_facts(job=123, status=F, task=1234, inputs=["lfn"], files=files, existence={},
                        outputs=r.NO_OUTPUTS)
    assert facts.file_status == ("Processed",) and facts.other_tasks == (12,)


def test_jobinfo_getTaskInfo_3_inputs_do_not_agree():
    """test_getTaskInfo_3: the task's file is not among the job's inputs: not checked, said why."""
    files = [FileInfo(1234, "lfn", "Processed", 1234, error_count=23)]
    facts = r.job_facts(job=123, status=F, task=1234, inputs=["otherLFN"], files=files, existence={},
                        outputs=r.NO_OUTPUTS)
    finding = r.check_job(facts, with_input=True, claimed=set())
    assert finding.state == r.SKIPPED and finding.case == r.NOT_CHECKED and "do not agree" in finding.reason


def test_jobinfo_getTaskInfo_5_no_input_files():
    """test_getTaskInfo_5: an input transformation's job without inputs is "failed hard" (case 16)."""
    facts = r.job_facts(job=123, status=D, task=1235, inputs=[], files=[], existence={},
                        outputs=r.Outputs.expected({"/out": "Exists"}))
    finding = r.check_job(facts, with_input=True, claimed=set())
    assert finding.case == r.FAILED_HARD.code and list(finding.actions) == [CLEAN, JF]
    assert finding.outputs == ("/out",)


def test_jobinfo_checkFileExistence():
    """test_checkFileExistence: Exists, Missing, and Unknown for an LFN the catalogue did not answer."""
    existence = {"inputFile1": True, "inputFile2": False, "outputFile1": False, "outputFile2": True}
    outputs = r.choose_outputs(r.SOURCE_AUTO, 123, {123: ["outputFile1", "outputFile2", "unknownFile"]},
                               existence, registered={})
    assert outputs.status == ("Missing", "Exists", "Unknown")
    facts = r.job_facts(job=123, status=F, task=1, inputs=["inputFile1", "inputFile2", "inputFile3"], files=[],
                        existence=existence, outputs=outputs)
    assert facts.input_status == ("Exists", "Missing", "Unknown")


# -- our own rows: the metadata source, requests, claims over a pass ------------------------------

def test_metadata_source_failed_job_with_registered_outputs_becomes_done():
    """CTADIRAC: outputs found by jobID metadata, job Failed, inputs Assigned: case 6."""
    files = [FileInfo(5, "/in/a", "Assigned", 3, 0), FileInfo(5, "/in/b", "Assigned", 3, 0)]
    outputs = r.choose_outputs(r.SOURCE_AUTO, 1001, {}, {}, registered={1001: ["/out/x"]})
    facts = r.job_facts(job=1001, status=F, task=3, inputs=["/in/a", "/in/b"], files=files,
                        existence={"/in/a": True, "/in/b": True}, outputs=outputs)
    finding = r.check_job(facts, with_input=True, claimed=set())
    assert finding.case == r.OUTPUT_EXISTS_FAILED.code
    assert list(finding.actions) == [JD, IP] and finding.source == r.SOURCE_METADATA


def test_metadata_source_never_knows_some_missing():
    """With jobID metadata only "some" or "none" is known: cases 12 and 13 never match."""
    some = r.Outputs.registered(["/out/x"])
    none = r.Outputs.registered([])
    assert not some.some_missing and not none.some_missing
    assert some.all_exist and none.all_missing
    for status in (D, F):
        for outputs in (some, none):
            job = r.JobFacts(job=1, status=status, task=1, inputs=("/in",), input_status=("Exists",),
                             file_status=("Assigned",), outputs=outputs)
            case = r.check_job(job, with_input=True, claimed=set()).case
            assert case not in (r.SOME_MISSING_FAILED.code, r.SOME_MISSING_DONE.code)


@pytest.mark.parametrize("status,skipped", [("Waiting", True), ("Assigned", True), ("Scheduled", True),
                                            ("Done", False), ("Failed", False), ("Canceled", False), ("", False)])
def test_pending_request_is_skipped_and_said(status, skipped):
    job = dra_job(jStat=F, ifStat=["Exists"], tFiStat=["Assigned"])
    job = r.JobFacts(**{**job.__dict__, "request": status})
    finding = r.check_job(job, with_input=True, claimed=set())
    if skipped:
        assert finding.state == r.SKIPPED and finding.case == r.PENDING_REQUEST and not finding.actions
        assert status in finding.reason
    else:
        assert finding.case == r.OUTPUT_EXISTS_FAILED.code


def test_claim_over_a_pass_first_job_keeps_later_duplicate_fails():
    """Two jobs on the same inputs, both now in another task: the first with outputs keeps them
    (case 1), the second without outputs is failed (case 2), in job-id order."""
    common = dict(task=1, inputs=("/in",), input_status=("Exists",), file_status=("Assigned",), other_tasks=(9,))
    first = r.JobFacts(job=10, status=F, outputs=r.Outputs.registered(["/out/10"]), **common)
    second = r.JobFacts(job=11, status=D, outputs=r.Outputs.registered([]), **common)
    findings = r.check_transformation([second, first], with_input=True)
    assert [(f.job, f.case) for f in findings] == [(10, r.OTHER_TASKS_KEEP.code), (11, r.OTHER_TASKS_FAIL.code)]


def test_max_reset_counter_is_the_policys():
    job = dra_job(jStat=F, ifStat=["Exists"], ofStat=["Missing"], tFiStat=["Assigned"], errorCount=[4])
    assert r.check_job(job, with_input=True, claimed=set(), max_reset=3).case == r.MAX_RESET.code
    assert r.check_job(job, with_input=True, claimed=set(), max_reset=4).case == r.OUTPUT_MISSING_FAILED.code


def test_remove_outputs_lists_only_existing_outputs():
    job = dra_job(jStat=F, ifStat=["Exists"], ofStat=["Missing", "Exists"], tFiStat=["Assigned"],
                  outFiles=["/o/1", "/o/2"])
    finding = r.check_job(job, with_input=True, claimed=set())
    assert finding.case == r.SOME_MISSING_FAILED.code and finding.outputs == ("/o/2",)


@pytest.mark.parametrize("source,pod,registered,expected", [
    (r.SOURCE_AUTO, {1: ["/p"]}, {1: ["/m"]}, (r.SOURCE_PRODUCTION_OUTPUT_DATA, ("/p",))),
    (r.SOURCE_AUTO, {}, {1: ["/m"]}, (r.SOURCE_METADATA, ("/m",))),
    (r.SOURCE_METADATA, {1: ["/p"]}, {1: ["/m"]}, (r.SOURCE_METADATA, ("/m",))),
    (r.SOURCE_PRODUCTION_OUTPUT_DATA, {}, {1: ["/m"]}, (r.SOURCE_PRODUCTION_OUTPUT_DATA, ())),
    (r.SOURCE_AUTO, {}, None, None),
])
def test_choose_outputs(source, pod, registered, expected):
    out = r.choose_outputs(source, 1, pod, {"/p": True}, registered)
    assert (None if out is None else (out.source, out.lfns)) == expected
