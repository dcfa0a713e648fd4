"""Recovery: DIRAC's DataRecoveryAgent checks as pure functions of plain data (no I/O, no ORM).

For each Done or Failed job of a transformation, the agent's cases are tried in its order and
the first that matches wins (reference 6; DIRAC's ``DataRecoveryAgent.todo``). The terms are the
agent's:

- **other tasks**: the job's task no longer holds any of its input files; they now belong to a
  newer task (``JobInfo.getTaskInfo``). The file statuses looked at are then those of the newer
  tasks' files.
- **claimed**: while one transformation is checked, the first job whose outputs all exist and
  whose inputs belong to other tasks "claims" those inputs (case 1); a later job of the same pass
  whose inputs are all claimed is the duplicate (cases 2, 3). Jobs are checked by job id, as
  DIRAC sorts them. A job with no input files counts as claimed, as in DIRAC (the empty set is a
  subset of any set); such a job of an input transformation is "failed hard" (case 16) before.
- **inputs Assigned** means Assigned *or Processed* (DIRAC's ``ASSIGNEDSTATES``).
- **error count**: some input's ErrorCount is *above* FilesMaxResetCounter (DIRAC's default 10).
- Existence: each LFN is ``Exists``, ``Missing`` or ``Unknown`` (not answered by the catalogue);
  "all exist" / "all missing" are false for an empty list, and an Unknown one makes both false.

Input-less transformations (TransformationsNoInput, MCSimulation) get the agent's two cases
(outputs all exist and job Failed: job Done; outputs all missing and job Done: job Failed).

A job with a pending request in the Request Management System (Waiting, Assigned, Scheduled) is
skipped, and the finding says so: a failover request may still register its outputs or set its
files.

**Where a job's outputs come from** (``Outputs``):

- ``ProductionOutputData`` (the job parameter, LHCb-style installations): the expected list; each
  LFN's existence is checked in the catalogue, as DIRAC's agent does.
- catalogue metadata ``jobID`` (what CTADIRAC registers with every output): the LFNs registered
  by the job. This can only say "some registered" or "none": a job that registered only some of
  its outputs cannot be told apart from one that registered all of them. So with this source
  "some registered" counts as *all exist*, "none" as *all missing*, and **"some missing" is never
  true: cases 12 and 13 (and every check that needs some outputs missing while others exist) never
  match**.

Nothing here decides whether the actions are carried out or proposed; the engine
(``failover/cycle/recover.py``) does, and removing outputs is always a proposal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from failover.domain import FileInfo

DONE = "Done"
FAILED = "Failed"
EXISTS = "Exists"
MISSING = "Missing"
UNKNOWN = "Unknown"
# DIRAC's ASSIGNEDSTATES: "inputs Assigned" in the checks means either.
ASSIGNED_STATES = frozenset({"Assigned", "Processed"})
# Request statuses that keep a job out of the checks (the others are final: Done, Failed, Canceled).
PENDING_REQUEST_STATUSES = frozenset({"Waiting", "Assigned", "Scheduled"})
# DIRAC's default of Operations Transformations/FilesMaxResetCounter.
DEFAULT_MAX_RESET = 10

# Where the outputs came from.
SOURCE_PRODUCTION_OUTPUT_DATA = "ProductionOutputData"
SOURCE_METADATA = "metadata"
# The policy's choice: ProductionOutputData where the job has it, else catalogue metadata jobID.
SOURCE_AUTO = "auto"
OUTPUT_SOURCES = (SOURCE_AUTO, SOURCE_PRODUCTION_OUTPUT_DATA, SOURCE_METADATA)

# -- the actions (in the order each case lists them, as DIRAC calls them) -------------------------
JOB_DONE = "job_done"  # the task Done, and the job Done (forced) if it is not
JOB_FAILED = "job_failed"  # the task Failed, and the job Failed (forced) if it is not
INPUTS_PROCESSED = "inputs_processed"
INPUTS_UNUSED = "inputs_unused"
INPUTS_MAX_RESET = "inputs_max_reset"
INPUTS_DELETED = "inputs_deleted"
REMOVE_OUTPUTS = "remove_outputs"  # deletes data: always a proposal, whatever the mode
ACTIONS = (JOB_DONE, JOB_FAILED, INPUTS_PROCESSED, INPUTS_UNUSED, INPUTS_MAX_RESET, INPUTS_DELETED, REMOVE_OUTPUTS)
INPUT_STATUS = {
    INPUTS_PROCESSED: "Processed", INPUTS_UNUSED: "Unused", INPUTS_MAX_RESET: "MaxReset", INPUTS_DELETED: "Deleted",
}
JOB_STATUS = {JOB_DONE: DONE, JOB_FAILED: FAILED}
ACTION_LABELS = {
    JOB_DONE: "task and job Done", JOB_FAILED: "task and job Failed", INPUTS_PROCESSED: "inputs Processed",
    INPUTS_UNUSED: "inputs Unused", INPUTS_MAX_RESET: "inputs MaxReset", INPUTS_DELETED: "inputs Deleted",
    REMOVE_OUTPUTS: "remove registered outputs",
}

# Finding states before the engine acts.
MATCH = "match"
SKIPPED = "skipped"
NO_MATCH = "none"


@dataclass(frozen=True)
class Outputs:
    """A job's outputs as one source knows them.

    ``status`` is per LFN of ``lfns`` (Exists, Missing, Unknown) for ProductionOutputData; for the
    metadata source, ``lfns`` are the LFNs registered with the job's id (all Exists) and ``status``
    is not used.
    """

    source: str
    lfns: tuple[str, ...] = ()
    status: tuple[str, ...] = ()

    @classmethod
    def expected(cls, statuses: Mapping[str, str] | Sequence[tuple[str, str]]) -> Outputs:
        items = list(statuses.items()) if isinstance(statuses, Mapping) else list(statuses)
        return cls(SOURCE_PRODUCTION_OUTPUT_DATA, tuple(lfn for lfn, _ in items), tuple(s for _, s in items))

    @classmethod
    def registered(cls, lfns: Iterable[str]) -> Outputs:
        return cls(SOURCE_METADATA, tuple(sorted(set(lfns))))

    @property
    def all_exist(self) -> bool:
        if self.source == SOURCE_METADATA:
            return bool(self.lfns)
        return bool(self.status) and all(s == EXISTS for s in self.status)

    @property
    def all_missing(self) -> bool:
        if self.source == SOURCE_METADATA:
            return not self.lfns
        return bool(self.status) and all(s == MISSING for s in self.status)

    @property
    def some_missing(self) -> bool:
        """Some missing, so some exist: never known with the metadata source."""
        if self.source == SOURCE_METADATA:
            return False
        return bool(self.status) and not (self.all_exist or self.all_missing)

    @property
    def existing(self) -> tuple[str, ...]:
        """The LFNs that exist in the catalogue: what "remove outputs" would remove."""
        if self.source == SOURCE_METADATA:
            return self.lfns
        return tuple(lfn for lfn, s in zip(self.lfns, self.status, strict=False) if s == EXISTS)


NO_OUTPUTS = Outputs(SOURCE_PRODUCTION_OUTPUT_DATA)


@dataclass(frozen=True)
class JobFacts:
    """What the checks know of one Done or Failed job (DIRAC's ``JobInfo``, as plain values)."""

    job: int
    status: str
    task: int | None = None
    inputs: tuple[str, ...] = ()
    # Per input LFN: Exists, Missing or Unknown in the catalogue.
    input_status: tuple[str, ...] = ()
    # The transformation files' statuses and error counts: of the job's task, or of the other tasks.
    file_status: tuple[str, ...] = ()
    error_counts: tuple[int, ...] = ()
    other_tasks: tuple[int | None, ...] = ()
    outputs: Outputs = NO_OUTPUTS
    # The job's request in the RMS, if it has one (its status).
    request: str = ""
    # Why the facts could not be put together (DIRAC's TaskInfoException), or "".
    problem: str = ""

    # The agent's predicates (JobInfo.allFilesExist ... checkErrorCount), by their meaning.
    @property
    def all_inputs_exist(self) -> bool:
        return bool(self.input_status) and all(s == EXISTS for s in self.input_status)

    @property
    def all_inputs_missing(self) -> bool:
        return bool(self.input_status) and all(s == MISSING for s in self.input_status)

    @property
    def some_inputs_missing(self) -> bool:
        return bool(self.input_status) and not (self.all_inputs_exist or self.all_inputs_missing)

    @property
    def all_processed(self) -> bool:
        return bool(self.file_status) and all(s == "Processed" for s in self.file_status)

    @property
    def all_assigned(self) -> bool:
        """Assigned or Processed, every one (DIRAC's meaning of "inputs Assigned")."""
        return bool(self.file_status) and all(s in ASSIGNED_STATES for s in self.file_status)

    @property
    def all_deleted(self) -> bool:
        return bool(self.file_status) and all(s == "Deleted" for s in self.file_status)

    def above_max_reset(self, max_reset: int) -> bool:
        return any(n > max_reset for n in self.error_counts)

    @property
    def pending_request(self) -> bool:
        return self.request in PENDING_REQUEST_STATUSES


@dataclass(frozen=True)
class Case:
    code: str
    # DIRAC's position (reference 6 numbers them 1 to 16; the no-input ones are "n1", "n2").
    number: str
    title: str
    actions: tuple[str, ...]
    claims: bool = False


@dataclass
class Finding:
    """What the checks say of one job: the case that matched (or why it was skipped)."""

    job: int
    task: int | None
    case: str
    state: str  # match | skipped | none
    reason: str
    actions: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    # The registered outputs "remove outputs" would remove (only those that exist).
    outputs: tuple[str, ...] = ()
    job_status: str = ""
    source: str = ""

    def as_dict(self) -> dict:
        return {
            "case": self.case, "job": self.job, "task": self.task, "actions": list(self.actions),
            "state": self.state, "reason": self.reason, "inputs": list(self.inputs),
            "outputs": list(self.outputs), "job_status": self.job_status, "source": self.source,
        }


def _case(code, number, title, *actions, claims=False) -> Case:
    return Case(code, number, title, tuple(actions), claims)


# The agent's cases for transformations with input files, in its order (first match wins).
OTHER_TASKS_KEEP = _case("other_tasks_keep", "1", "Other tasks: outputs exist, keep this job",
                         JOB_DONE, INPUTS_PROCESSED, claims=True)
OTHER_TASKS_FAIL = _case("other_tasks_fail", "2", "Other task processed the inputs, no outputs: fail", JOB_FAILED)
OTHER_TASKS_CLEANUP = _case("other_tasks_cleanup", "3", "Other task processed the inputs: fail and clean",
                            JOB_FAILED, REMOVE_OUTPUTS)
INPUT_MISSING = _case("input_missing", "4", "Inputs missing: job Failed, inputs Deleted, clean",
                      REMOVE_OUTPUTS, JOB_FAILED, INPUTS_DELETED)
INPUT_DELETED = _case("input_deleted", "5", "Inputs Deleted, outputs exist: job Failed, clean",
                      REMOVE_OUTPUTS, JOB_FAILED)
OUTPUT_EXISTS_FAILED = _case("output_exists_failed", "6", "Outputs exist, job Failed: job Done, inputs Processed",
                             JOB_DONE, INPUTS_PROCESSED)
OUTPUT_EXISTS_FAILED_PROCESSED = _case("output_exists_failed_processed", "7",
                                       "Outputs exist, job Failed, inputs Processed: job Done", JOB_DONE)
OUTPUT_EXISTS_DONE = _case("output_exists_done", "8", "Outputs exist, job Done: inputs Processed", INPUTS_PROCESSED)
MAX_RESET = _case("max_reset", "9", "Outputs missing, job Failed, error count too high: inputs MaxReset",
                  INPUTS_MAX_RESET)
OUTPUT_MISSING_FAILED = _case("output_missing_failed", "10", "Outputs missing, job Failed: inputs Unused",
                              INPUTS_UNUSED)
OUTPUT_MISSING_DONE = _case("output_missing_done", "11", "Outputs missing, job Done: job Failed, inputs Unused",
                            INPUTS_UNUSED, JOB_FAILED)
SOME_MISSING_FAILED = _case("some_missing_failed", "12", "Some outputs missing, job Failed: clean, inputs Unused",
                            REMOVE_OUTPUTS, INPUTS_UNUSED)
SOME_MISSING_DONE = _case("some_missing_done", "13",
                          "Some outputs missing, job Done: clean, inputs Unused, job Failed",
                          REMOVE_OUTPUTS, INPUTS_UNUSED, JOB_FAILED)
NOT_ALL_EXIST_DONE = _case("not_all_exist_done", "14", "Not all outputs exist, job Done: job Failed", JOB_FAILED)
STRANGE = _case("strange", "15", "Job neither Done nor Failed: nothing (strange)")
FAILED_HARD = _case("failed_hard", "16", "No input files in an input transformation: clean, job Failed",
                    REMOVE_OUTPUTS, JOB_FAILED)
# Input-less transformations (MCSimulation).
NO_INPUT_DONE = _case("no_input_output_exists", "n1", "No input: outputs exist, job Failed: job Done", JOB_DONE)
NO_INPUT_FAILED = _case("no_input_output_missing", "n2", "No input: outputs missing, job Done: job Failed",
                        JOB_FAILED)

INPUT_CASES = (
    OTHER_TASKS_KEEP, OTHER_TASKS_FAIL, OTHER_TASKS_CLEANUP, INPUT_MISSING, INPUT_DELETED, OUTPUT_EXISTS_FAILED,
    OUTPUT_EXISTS_FAILED_PROCESSED, OUTPUT_EXISTS_DONE, MAX_RESET, OUTPUT_MISSING_FAILED, OUTPUT_MISSING_DONE,
    SOME_MISSING_FAILED, SOME_MISSING_DONE, NOT_ALL_EXIST_DONE, STRANGE, FAILED_HARD,
)
NO_INPUT_CASES = (NO_INPUT_DONE, NO_INPUT_FAILED)
CASES = {c.code: c for c in (*INPUT_CASES, *NO_INPUT_CASES)}
# Findings that are not a case.
PENDING_REQUEST = "pending_request"
NOT_CHECKED = "not_checked"
CASE_TITLES = {c.code: c.title for c in CASES.values()} | {
    PENDING_REQUEST: "Pending request: skipped", NOT_CHECKED: "Could not be checked",
}


def _input_check(case: Case, job: JobFacts, claimed: bool, max_reset: int) -> bool:
    """DIRAC's Check of each input case, term by term."""
    out = job.outputs
    alone = not job.other_tasks
    if case is OTHER_TASKS_KEEP:
        return out.all_exist and bool(job.other_tasks) and not claimed
    if case is OTHER_TASKS_FAIL:
        return claimed and out.all_missing and job.status != FAILED
    if case is OTHER_TASKS_CLEANUP:
        return claimed and not out.all_missing
    if case is INPUT_MISSING:
        return bool(job.inputs) and job.all_inputs_missing and not job.all_deleted
    if case is INPUT_DELETED:
        return bool(job.inputs) and job.all_inputs_missing and job.all_deleted and not out.all_missing
    if case is OUTPUT_EXISTS_FAILED:
        return out.all_exist and alone and job.status == FAILED and not job.all_processed and job.all_inputs_exist
    if case is OUTPUT_EXISTS_FAILED_PROCESSED:
        return out.all_exist and alone and job.status == FAILED and job.all_processed and job.all_inputs_exist
    if case is OUTPUT_EXISTS_DONE:
        return out.all_exist and alone and job.status == DONE and not job.all_processed and job.all_inputs_exist
    if case in (MAX_RESET, OUTPUT_MISSING_FAILED):
        common = (out.all_missing and alone and job.status == FAILED and job.all_assigned and not claimed
                  and job.all_inputs_exist)
        return common and (job.above_max_reset(max_reset) if case is MAX_RESET else True)
    if case is OUTPUT_MISSING_DONE:
        return (out.all_missing and alone and job.status == DONE and job.all_assigned and not claimed
                and job.all_inputs_exist)
    if case is SOME_MISSING_FAILED:
        return out.some_missing and alone and job.status == FAILED and job.all_assigned and job.all_inputs_exist
    if case is SOME_MISSING_DONE:
        return out.some_missing and alone and job.status == DONE and job.all_assigned and job.all_inputs_exist
    if case is NOT_ALL_EXIST_DONE:
        return not out.all_exist and job.status == DONE
    if case is STRANGE:
        return job.status not in (FAILED, DONE)
    return False  # FAILED_HARD: never by check, only for a job without input files


def _finding(job: JobFacts, case: Case, reason: str = "") -> Finding:
    removes = job.outputs.existing if REMOVE_OUTPUTS in case.actions else ()
    return Finding(job.job, job.task, case.code, MATCH, reason or case.title, case.actions, job.inputs, removes,
                   job.status, job.outputs.source)


def check_job(job: JobFacts, *, with_input: bool, claimed: set[str], max_reset: int = DEFAULT_MAX_RESET) -> Finding:
    """The first case that matches this job (DIRAC's ``checkJob``), or a skipped / no-match finding.

    ``claimed`` is the pass's set of claimed input LFNs; case 1 adds the job's inputs to it.
    """
    if job.pending_request:
        return Finding(job.job, job.task, PENDING_REQUEST, SKIPPED,
                       f"request {job.request} in the Request Management System: it may still register the "
                       f"outputs or set the files", (), job.inputs, (), job.status, job.outputs.source)
    if not with_input:
        for case in NO_INPUT_CASES:
            hit = (job.outputs.all_exist and job.status == FAILED) if case is NO_INPUT_DONE else (
                job.outputs.all_missing and job.status == DONE)
            if hit:
                return _finding(job, case)
        return Finding(job.job, job.task, "", NO_MATCH, "consistent", (), (), (), job.status, job.outputs.source)
    if not job.inputs:
        # DIRAC's __failJobHard: nothing if the job already Failed with no outputs.
        if job.status == FAILED and job.outputs.all_missing:
            return Finding(job.job, job.task, "", NO_MATCH, "no input files; already Failed with no outputs",
                           (), (), (), job.status, job.outputs.source)
        return _finding(job, FAILED_HARD)
    if job.problem:
        return Finding(job.job, job.task, NOT_CHECKED, SKIPPED, job.problem, (), job.inputs, (), job.status,
                       job.outputs.source)
    is_claimed = set(job.inputs).issubset(claimed)
    for case in INPUT_CASES:
        if _input_check(case, job, is_claimed, max_reset):
            if case.claims:
                claimed.update(job.inputs)
            return _finding(job, case)
    return Finding(job.job, job.task, "", NO_MATCH, "consistent", (), job.inputs, (), job.status, job.outputs.source)


def check_transformation(jobs: Iterable[JobFacts], *, with_input: bool,
                         max_reset: int = DEFAULT_MAX_RESET) -> list[Finding]:
    """Every job's finding, by job id, with one ``claimed`` set for the pass."""
    claimed: set[str] = set()
    return [check_job(j, with_input=with_input, claimed=claimed, max_reset=max_reset)
            for j in sorted(jobs, key=lambda j: j.job)]


# -- putting the facts together from what DIRAC answers --------------------------------------------


def choose_outputs(source: str, job: int, production_output_data: Mapping[int, Sequence[str]],
                   existence: Mapping[str, bool], registered: Mapping[int, Sequence[str]] | None) -> Outputs | None:
    """A job's outputs from the policy's source; None when that source cannot be read.

    ``auto``: ProductionOutputData where the job has it, else the LFNs registered with metadata
    jobID. ``registered`` is None when no catalogue metadata can be read.
    """
    expected = list(production_output_data.get(job) or ())
    if source in (SOURCE_AUTO, SOURCE_PRODUCTION_OUTPUT_DATA) and expected:
        return Outputs.expected([(lfn, _exists(existence, lfn)) for lfn in expected])
    if source == SOURCE_PRODUCTION_OUTPUT_DATA:
        return NO_OUTPUTS
    if registered is None:
        return None
    return Outputs.registered(registered.get(job) or ())


def _exists(existence: Mapping[str, bool], lfn: str) -> str:
    if lfn not in existence:
        return UNKNOWN
    return EXISTS if existence[lfn] else MISSING


def job_facts(
    *,
    job: int,
    status: str,
    task: int | None,
    inputs: Sequence[str],
    files: Sequence[FileInfo],
    existence: Mapping[str, bool],
    outputs: Outputs,
    request: str = "",
) -> JobFacts:
    """DIRAC's ``getTaskInfo`` and ``checkFileExistence`` on plain values.

    ``files`` are the transformation's files (all statuses). If some belong to the job's task,
    their statuses are the job's; otherwise each input's current task is an "other task" and its
    status is taken from there. An input that is not a file of the transformation, or a file of the
    task that is not among the job's inputs, makes the job uncheckable (``problem``).
    """
    inputs = tuple(inputs)
    input_status = tuple(_exists(existence, lfn) for lfn in inputs)
    mine = [f for f in files if task is not None and f.task == task]
    problem = ""
    other: list[int | None] = []
    if mine:
        strays = sorted(f.lfn for f in mine if f.lfn not in inputs)
        if strays:
            problem = f"the task's files do not agree with the job's input data: {strays[0]} is not an input"
        file_status = tuple(f.status for f in mine)
        errors = tuple(f.error_count for f in mine)
    else:
        by_lfn = {f.lfn: f for f in files}
        statuses, errs = [], []
        for lfn in inputs:
            f = by_lfn.get(lfn)
            if f is None:
                problem = problem or f"input {lfn} is not a file of the transformation"
                continue
            # Not the job's task any more (a newer one, or none): DIRAC counts it as another task.
            other.append(f.task)
            statuses.append(f.status)
            errs.append(f.error_count)
        file_status, errors = tuple(statuses), tuple(errs)
    return JobFacts(job=job, status=status, task=task, inputs=inputs, input_status=input_status,
                    file_status=file_status, error_counts=errors, other_tasks=tuple(other), outputs=outputs,
                    request=request, problem=problem)


@dataclass
class Summary:
    """Findings grouped by case: counts and jobs, for pages, digests and the proposals."""

    by_case: dict[str, list[Finding]] = field(default_factory=dict)

    @classmethod
    def of(cls, findings: Iterable[Finding]) -> Summary:
        out: dict[str, list[Finding]] = {}
        for f in findings:
            if f.state != NO_MATCH:
                out.setdefault(f.case, []).append(f)
        return cls(out)
