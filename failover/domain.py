"""Plain data the failover domain works on: what the DIRAC boundary returns and takes.

These are deliberately free of Django and of DIRAC so that the rules can be pure functions
and both adapters (simulated and real DIRAC) can produce them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Transformation statuses (DIRAC TransformationStatus).
ACTIVE = "Active"
FLUSH = "Flush"
COMPLETED = "Completed"
# Once a transformation is in one of these, its files will not be processed any more: a child
# waiting for such a parent waits for nothing. DIRAC calls them "final"; Archived and Cleaned
# parents have lost their file rows, so "all files Processed" can never be seen for them.
FINAL_TRANSFORMATION_STATUSES = frozenset(
    {"Completed", "Archived", "Cleaning", "Cleaned", "TransformationCleaned", "Deleted"}
)
# Every transformation status DIRAC writes (TransformationStatus, and RemovingFiles/RemovedFiles
# that agents write besides), in the order of its life: what a policy's TransformationStatus may name.
TRANSFORMATION_STATUSES = (
    "New", "Idle", "Active", "Flush", "Completing", "Stopped", "Completed", "RemovingFiles", "RemovedFiles",
    "Archived", "Cleaning", "Cleaned", "TransformationCleaned", "Deleted",
)

# Job statuses whose payload is over (DIRAC JobStatus), as the agent sees task ExternalStatus:
# the one home of these sets (rules, attention, aggregation, charts and pages use them).
DONE_TASK_STATUSES = frozenset({"Done", "Completed"})
FAILED_TASK_STATUSES = frozenset({"Failed", "Killed"})
FINAL_TASK_STATUSES = DONE_TASK_STATUSES | FAILED_TASK_STATUSES
# DIRAC's own task monitor maps a job that vanished from the Job DB to Failed.
MISSING_JOB_STATUS = "Failed"

# File statuses (DIRAC TransformationFilesStatus).
UNUSED = "Unused"
ASSIGNED = "Assigned"
PROCESSED = "Processed"

# Types whose transformations have no input files (the agent's hard-coded list).
TYPES_WITHOUT_INPUT = frozenset({"MCSimulation"})

# Action kinds: what the rules decide, the action log records (its choices derive from these) and
# the pages and exports name. KINDS is the order in which the engine plans them.
SYNC = "sync"
COMPLETE = "complete"
FLUSH_ACTION = "flush"
REASSIGN = "reassign"
KINDS = (SYNC, COMPLETE, FLUSH_ACTION, REASSIGN)
# Recovery's kinds (failover/recovery.py, failover/cycle/recover.py): not planned by the cycle, but by
# the recovery check. RECOVER sets jobs, tasks and input files of one case; REMOVE_OUTPUTS deletes
# registered outputs and is always a proposal an operator must approve.
RECOVER = "recover"
REMOVE_OUTPUTS = "remove_outputs"
RECOVERY_KINDS = (RECOVER, REMOVE_OUTPUTS)
KIND_LABELS = {SYNC: "Copy job statuses", COMPLETE: "Complete", FLUSH_ACTION: "Flush", REASSIGN: "Reassign failed",
               RECOVER: "Recover jobs and files", REMOVE_OUTPUTS: "Remove registered outputs"}

# ExternalID of a task that has no job yet.
NO_JOB = 0
# Parent value of a production's first step.
ROOT = -1


@dataclass(frozen=True, slots=True)
class TransformationInfo:
    id: int
    name: str
    type: str
    status: str
    group_size: float
    production: int | None = None
    # -1: first step of a production; an id: its parent step; None: not in a production.
    parent: int | None = None


@dataclass(frozen=True, slots=True)
class TaskInfo:
    transformation: int
    task: int
    job: int  # 0 when not submitted
    status: str  # ExternalStatus


@dataclass(frozen=True, slots=True)
class TaskSummary:
    """What the rules and insight need of all of a transformation's tasks, once each task has its
    job's status copied in (a task whose job is gone from the Job DB counted Failed unless final):
    counted in the database, so a plan need not hold every task (failover/mirror.py ``plan_view``)."""

    total: int = 0
    # Tasks whose status, so synced, is not final / is Failed or Killed / is Done or Completed.
    not_final: int = 0
    failed: int = 0
    done: int = 0
    # Tasks with no job yet, and the lowest such task id (0 when none).
    without_job: int = 0
    oldest_without_job: int = 0


@dataclass(frozen=True, slots=True)
class FileInfo:
    transformation: int
    lfn: str
    status: str
    task: int | None
    error_count: int = 0


@dataclass(frozen=True, slots=True)
class JobInfo:
    id: int
    status: str
    minor_status: str
    application_status: str
    site: str


@dataclass(frozen=True, slots=True)
class FileCounts:
    """Files of one transformation by status, as DIRAC's getTransformationStats counts them."""

    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        # DIRAC drops the "-inherited" statuses before summing.
        return sum(n for status, n in self.by_status.items() if "-" not in status)

    def get(self, status: str) -> int:
        return self.by_status.get(status, 0)

    @property
    def processed(self) -> bool:
        """The agent's test: every file Processed, and at least one file."""
        return self.total > 0 and self.get(PROCESSED) == self.total


def job_group(transformation_id: int) -> str:
    """DIRAC's JobGroup of a transformation's jobs: the id zero-padded to 8 digits."""
    return f"{transformation_id:08d}"
