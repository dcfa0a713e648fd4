"""The one mapping from a job's status, and its minor status, to a colour.

Every chart (dashboard/charts.py), the report table (web and e-mail) and the digests take their
colours from here, so "Failed: Application Finished With Errors" has the same colour on every
transformation, every page and every mail. A status has a fixed colour; a minor status gets one
from a fixed palette by a hash of its text (CRC-32: the same in every process, unlike
Python's ``hash``), never by its rank in a chart, which changes with the counts.
"""

from __future__ import annotations

import zlib

from failover.domain import DONE_TASK_STATUSES, FAILED_TASK_STATUSES

# One colour per job status (DIRAC JobStatus), in the order charts stack them.
STATUS_COLOURS = {
    "Done": "#2e8540",
    "Completed": "#4aa564",
    "Running": "#1f6fb2",
    "Waiting": "#8fb8de",
    "Matched": "#6aa1d1",
    "Received": "#b9cfe4",
    "Checking": "#b9cfe4",
    "Staging": "#a7a7d6",
    "Stalled": "#d9822b",
    "Rescheduled": "#e0b44c",
    "Failed": "#c0392b",
    "Killed": "#7d3c98",
    "Deleted": "#7f8c8d",
}
OTHER_STATUS = "#95a5a6"
STATUS_ORDER = list(STATUS_COLOURS)

# Minor statuses (the failures chart: Failed and Killed ones): warm and purple hues only, distinct
# from each other and from the greens of Done and the blues of Running, so a failure never looks
# like progress.
MINOR_PALETTE = (
    "#c0392b", "#e67e22", "#7d3c98", "#c2185b", "#6e2c00", "#f1948a",
    "#b7950b", "#af7ac5", "#a04000", "#4a235a", "#e91e63", "#d4ac0d",
)

# The report table's tones by the style of a status (done, failed, other): (ink, subtotal
# background, total background). The web page's CSS uses the same three (static/css/dashboard.css).
TONES = {
    "done": ("#2e8540", "#f1f9f3", "#e6f4ea"),
    "failed": ("#c0392b", "#fdf3f2", "#fbeaea"),
    "other": ("#9a6700", "#fbf7ea", "#fff4d6"),
}


def status_colour(status: str) -> str:
    return STATUS_COLOURS.get(status, OTHER_STATUS)


def status_key(status: str) -> tuple[int, str]:
    """Charts' and chips' order of statuses: the mapping's order, then the others by name."""
    return (STATUS_ORDER.index(status) if status in STATUS_ORDER else len(STATUS_ORDER), status)


# DIRAC's most common failure minor statuses (JobMinorStatus) have a palette colour each, so they
# never share one; any other text takes its colour by hash, and may share one with another.
KNOWN_MINORS = {
    ("Failed", "Application Finished With Errors"): MINOR_PALETTE[0],
    ("Killed", "Received Kill signal"): MINOR_PALETTE[2],
    ("Failed", "Maximum of reschedulings reached"): MINOR_PALETTE[1],
    ("Failed", "Job stalled: pilot not running"): MINOR_PALETTE[4],
    ("Failed", "Watchdog identified this job as stalled"): MINOR_PALETTE[8],
    ("Failed", "Input Data Resolution"): MINOR_PALETTE[3],
    ("Failed", "Job has exceeded maximum wall clock time"): MINOR_PALETTE[9],
    ("Failed", "Uploading Outputs"): MINOR_PALETTE[6],
    ("Failed", "Pending Requests"): MINOR_PALETTE[11],
    ("Killed", "Marked for termination"): MINOR_PALETTE[7],
}


def minor_colour(status: str, minor_status: str) -> str:
    """The colour of a (status, minor status) pair: the same wherever it appears."""
    known = KNOWN_MINORS.get((status, minor_status))
    if known is not None:
        return known
    return MINOR_PALETTE[zlib.crc32(f"{status}\x00{minor_status}".encode()) % len(MINOR_PALETTE)]


def style_of(status: str) -> str:
    """The report table's style of a status: failed, done or other."""
    if status in FAILED_TASK_STATUSES:
        return "failed"
    if status in DONE_TASK_STATUSES:
        return "done"
    return "other"
