"""The report (reports/aggregation.py): the seed's figure for transformation 4848, number for number.

Reference: the agent's report table and its subtotal bug (README, "Deliberate differences");
issue 2 item 6 (the JSON contract).
"""

from __future__ import annotations

import csv
import io
import re

import pytest

from failover.domain import JobInfo
from reports.aggregation import (
    AggregateRow,
    aggregate_jobs,
    build_report,
    percent,
    render_csv,
    render_text,
)

WF = "Workflow successful, end of FailoverRequest module execution."
OP = "Operation not permitted ( 1 : cta-prod-setup-software Exited With Status 1)"
IDR = "Failed Input Data Resolution"
STEP1 = "Executing Step1_ctapipe_process"
EC = "Execution Complete"
RD = "Requests done"
AFWE = "Application Finished With Errors"
MRR = "Maximum of reschedulings reached"
RKS = "Received Kill signal"
IN2P3, LANCS, CNAF, GRIF = "LCG.IN2P3-CC.fr", "LCG.LANCASTER.uk", "LCG.CNAF.it", "LCG.GRIF.fr"

# The data rows of the seed's figure "Mail report on transformation with failed job", in its order.
SEED_ROWS = [
    ("Done", EC, WF, IN2P3, 1029),
    ("Done", EC, WF, LANCS, 106),
    ("Done", EC, WF, CNAF, 14),
    ("Done", EC, WF, GRIF, 726),
    ("Done", RD, WF, IN2P3, 35),
    ("Done", RD, WF, GRIF, 6),
    ("Failed", AFWE, OP, LANCS, 1),
    ("Failed", MRR, IDR, GRIF, 149),
    ("Failed", MRR, IDR, IN2P3, 135),
    ("Failed", MRR, IDR, LANCS, 41),
    ("Failed", RKS, STEP1, GRIF, 2),
]

# The whole figure, row by row, as the text table must show it.
SEED_TABLE = [
    ("Status", "MinorStatus", "ApplicationStatus", "Site", "Total"),
    ("Done", EC, WF, IN2P3, "1029"),
    ("Done", EC, WF, LANCS, "106"),
    ("Done", EC, WF, CNAF, "14"),
    ("Done", EC, WF, GRIF, "726"),
    ("Done", f"Total: {EC}", "-", "-", "1875 (97.9%)"),
    ("Done", RD, WF, IN2P3, "35"),
    ("Done", RD, WF, GRIF, "6"),
    ("Done", f"Total: {RD}", "-", "-", "41 (2.1%)"),
    ("Total: Done", "-", "-", "-", "1916 (85.4%)"),
    ("Failed", AFWE, OP, LANCS, "1"),
    ("Failed", f"Total: {AFWE}", "-", "-", "1 (0.3%)"),
    ("Failed", MRR, IDR, GRIF, "149"),
    ("Failed", MRR, IDR, IN2P3, "135"),
    ("Failed", MRR, IDR, LANCS, "41"),
    ("Failed", f"Total: {MRR}", "-", "-", "325 (99.1%)"),
    ("Failed", RKS, STEP1, GRIF, "2"),
    ("Failed", f"Total: {RKS}", "-", "-", "2 (0.6%)"),
    ("Total: Failed", "-", "-", "-", "328 (14.6%)"),
    ("Total # tasks:", "-", "-", "-", "2244"),
]

SEED_JSON = {
    "transformation": 4848,
    "total": 2244,
    "statuses": [
        {
            "status": "Done",
            "count": 1916,
            "percent": 85.4,
            "minor_statuses": [
                {
                    "minor_status": EC,
                    "count": 1875,
                    "percent": 97.9,
                    "rows": [
                        {"application_status": WF, "site": IN2P3, "count": 1029},
                        {"application_status": WF, "site": LANCS, "count": 106},
                        {"application_status": WF, "site": CNAF, "count": 14},
                        {"application_status": WF, "site": GRIF, "count": 726},
                    ],
                },
                {
                    "minor_status": RD,
                    "count": 41,
                    "percent": 2.1,
                    "rows": [
                        {"application_status": WF, "site": IN2P3, "count": 35},
                        {"application_status": WF, "site": GRIF, "count": 6},
                    ],
                },
            ],
        },
        {
            "status": "Failed",
            "count": 328,
            "percent": 14.6,
            "minor_statuses": [
                {
                    "minor_status": AFWE,
                    "count": 1,
                    "percent": 0.3,
                    "rows": [{"application_status": OP, "site": LANCS, "count": 1}],
                },
                {
                    "minor_status": MRR,
                    "count": 325,
                    "percent": 99.1,
                    "rows": [
                        {"application_status": IDR, "site": GRIF, "count": 149},
                        {"application_status": IDR, "site": IN2P3, "count": 135},
                        {"application_status": IDR, "site": LANCS, "count": 41},
                    ],
                },
                {
                    "minor_status": RKS,
                    "count": 2,
                    "percent": 0.6,
                    "rows": [{"application_status": STEP1, "site": GRIF, "count": 2}],
                },
            ],
        },
    ],
}


def seed_jobs(first_id: int = 1_000_001) -> list[JobInfo]:
    """The 2244 jobs of transformation 4848, ids ascending in the figure's row order."""
    out = []
    job_id = first_id
    for status, minor, app, site, n in SEED_ROWS:
        for _ in range(n):
            out.append(JobInfo(job_id, status, minor, app, site))
            job_id += 1
    return out


def seed_jobs_interleaved() -> list[JobInfo]:
    """The same jobs, ids dealt round-robin over the rows: first appearances still in row order."""
    remaining = [list(row) for row in SEED_ROWS]
    out = []
    job_id = 1
    while any(r[4] for r in remaining):
        for r in remaining:
            if r[4]:
                out.append(JobInfo(job_id, *r[:4]))
                job_id += 1
                r[4] -= 1
    return out


def cells(line: str) -> tuple[str, ...]:
    return tuple(re.split(r" {2,}", line.strip()))


@pytest.fixture(scope="module")
def seed_report():
    return build_report(4848, aggregate_jobs(seed_jobs()))


# -- the seed's figure --------------------------------------------------------------------------


def test_it_reproduces_the_seed_figure_as_json(seed_report):
    data = seed_report.as_json()
    assert data == SEED_JSON
    # The contract's keys, exactly (issue 2 item 6).
    assert list(data) == ["transformation", "total", "statuses"]
    for s in data["statuses"]:
        assert list(s) == ["status", "count", "percent", "minor_statuses"]
        for m in s["minor_statuses"]:
            assert list(m) == ["minor_status", "count", "percent", "rows"]
            for r in m["rows"]:
                assert list(r) == ["application_status", "site", "count"]


def test_it_counts_the_seed_figure(seed_report):
    assert seed_report.total == 2244
    assert [(s.status, s.count, s.percent) for s in seed_report.statuses] == [
        ("Done", 1916, 85.4),
        ("Failed", 328, 14.6),
    ]
    done, failed = seed_report.statuses
    assert [(m.minor_status, m.count, m.percent) for m in done.minor_statuses] == [(EC, 1875, 97.9), (RD, 41, 2.1)]
    assert [r.count for r in done.minor_statuses[0].rows] == [1029, 106, 14, 726]
    assert [r.count for r in done.minor_statuses[1].rows] == [35, 6]
    assert [(m.minor_status, m.count, m.percent) for m in failed.minor_statuses] == [
        (AFWE, 1, 0.3),
        (MRR, 325, 99.1),
        (RKS, 2, 0.6),
    ]
    assert [r.count for r in failed.minor_statuses[1].rows] == [149, 135, 41]
    assert seed_report.count("Done") == 1916
    assert seed_report.count("Failed", MRR) == 325
    assert seed_report.count("Killed") == 0
    assert seed_report.count("Done", MRR) == 0
    assert (done.style, failed.style) == ("done", "failed")


def test_it_renders_the_seed_figure_as_text(seed_report):
    text = render_text(seed_report)
    lines = text.splitlines()
    assert lines[0] == "Transformation: 4848"
    assert lines[1] == ""
    assert set(lines[3]) == {"-", " "}  # the rule under the header
    table = [cells(line) for i, line in enumerate(lines[2:]) if i != 1]
    assert table == SEED_TABLE
    assert text.endswith("\n")
    # Columns line up: the Total column starts at the same place on every line.
    starts = {len(line) - len(cells(line)[-1]) for i, line in enumerate(lines[2:]) if i != 1}
    assert len(starts) == 1


def test_it_lists_the_seed_rows_with_their_kinds(seed_report):
    rows = seed_report.table_rows()
    assert [(r["status"], r["minor_status"], r["application_status"], r["site"], r["total"]) for r in rows] == (
        SEED_TABLE[1:]
    )
    assert [r["kind"] for r in rows] == [
        "data", "data", "data", "data", "minor", "data", "data", "minor", "status",
        "data", "minor", "data", "data", "data", "minor", "data", "minor", "status",
        "total",
    ]  # fmt: skip
    assert {r["style"] for r in rows[:9]} == {"done"}
    assert {r["style"] for r in rows[9:18]} == {"failed"}
    assert rows[-1]["style"] == "total"


def test_it_renders_the_seed_figure_as_csv(seed_report):
    text = render_csv(seed_report)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["transformation", "status", "minor_status", "application_status", "site", "count"]
    assert rows[1:] == [["4848", s, m, a, site, str(n)] for s, m, a, site, n in SEED_ROWS]
    # The ApplicationStatus has a comma: it is quoted.
    assert f'"{WF}"' in text.splitlines()[1]


def test_it_keeps_first_appearance_order_with_interleaved_jobs():
    report = build_report(4848, aggregate_jobs(seed_jobs_interleaved()))
    assert report.as_json() == SEED_JSON


def test_it_orders_by_job_id_not_by_list_order():
    jobs = seed_jobs()
    report = build_report(4848, aggregate_jobs(list(reversed(jobs))))
    assert report.as_json() == SEED_JSON


def test_it_builds_the_same_report_from_stored_rows_in_any_order():
    rows = aggregate_jobs(seed_jobs())
    assert len(rows) == len(SEED_ROWS)
    assert [r.count for r in rows] == [n for *_, n in SEED_ROWS]
    assert rows[0] == AggregateRow("Done", EC, WF, IN2P3, 1029, first_job=1_000_001)
    assert build_report(4848, list(reversed(rows))).as_json() == SEED_JSON


def test_it_aggregates_exact_strings():
    """ApplicationStatus "Failed Input Data Resolution " (DIRAC's trailing space) is its own value."""
    jobs = [
        JobInfo(1, "Failed", MRR, IDR, GRIF),
        JobInfo(2, "Failed", MRR, IDR + " ", GRIF),
        JobInfo(3, "Failed", MRR, IDR, GRIF),
    ]
    rows = aggregate_jobs(jobs)
    assert [(r.application_status, r.count, r.first_job) for r in rows] == [(IDR, 2, 1), (IDR + " ", 1, 2)]


# -- the agent's bug 5.10 and the ordering ------------------------------------------------------


def test_it_counts_a_shared_minor_status_within_its_status():
    """"Job stalled" under Failed and under Killed: the agent printed 4 (200.0%) for each."""
    stalled = "Watchdog identified this job as stalled"
    jobs = [
        JobInfo(1, "Failed", stalled, "Unknown", GRIF),
        JobInfo(2, "Killed", stalled, "Unknown", GRIF),
        JobInfo(3, "Failed", stalled, "Unknown", IN2P3),
        JobInfo(4, "Killed", stalled, "Unknown", GRIF),
    ]
    report = build_report(1, aggregate_jobs(jobs))
    data = report.as_json()
    assert [(s["status"], s["count"], s["percent"]) for s in data["statuses"]] == [
        ("Failed", 2, 50.0),
        ("Killed", 2, 50.0),
    ]
    for s in data["statuses"]:
        assert [(m["minor_status"], m["count"], m["percent"]) for m in s["minor_statuses"]] == [(stalled, 2, 100.0)]
    # Each status gets its own subtotal row, and the status totals carry no data-row leftovers.
    rows = [(r["kind"], r["status"], r["minor_status"], r["application_status"], r["site"], r["total"])
            for r in report.table_rows()]
    assert rows == [
        ("data", "Failed", stalled, "Unknown", GRIF, "1"),
        ("data", "Failed", stalled, "Unknown", IN2P3, "1"),
        ("minor", "Failed", f"Total: {stalled}", "-", "-", "2 (100.0%)"),
        ("status", "Total: Failed", "-", "-", "-", "2 (50.0%)"),
        ("data", "Killed", stalled, "Unknown", GRIF, "2"),
        ("minor", "Killed", f"Total: {stalled}", "-", "-", "2 (100.0%)"),
        ("status", "Total: Killed", "-", "-", "-", "2 (50.0%)"),
        ("total", "Total # tasks:", "-", "-", "-", "4"),
    ]


def test_it_sorts_statuses_and_minor_statuses_alphabetically():
    jobs = [
        JobInfo(1, "Waiting", "Pilot Agent Submission", "Unknown", "ANY"),
        JobInfo(2, "Running", "Application", STEP1, GRIF),
        JobInfo(3, "Failed", MRR, IDR, GRIF),
        JobInfo(4, "Done", RD, WF, GRIF),
        JobInfo(5, "Failed", AFWE, OP, LANCS),
        JobInfo(6, "Done", EC, WF, GRIF),
        JobInfo(7, "Killed", RKS, STEP1, GRIF),
        JobInfo(8, "Failed", "application error", "Unknown", GRIF),  # lower case sorts after upper case
        JobInfo(9, "Completed", "Pending Requests", WF, CNAF),
    ]
    data = build_report(9, aggregate_jobs(jobs)).as_json()
    assert [s["status"] for s in data["statuses"]] == ["Completed", "Done", "Failed", "Killed", "Running", "Waiting"]
    failed = data["statuses"][2]
    assert [m["minor_status"] for m in failed["minor_statuses"]] == [AFWE, MRR, "application error"]
    assert [m["minor_status"] for m in data["statuses"][1]["minor_statuses"]] == [EC, RD]
    styles = {s.status: s.style for s in build_report(9, aggregate_jobs(jobs)).statuses}
    assert styles == {"Completed": "done", "Done": "done", "Failed": "failed", "Killed": "failed",
                      "Running": "other", "Waiting": "other"}


def test_it_reports_no_jobs():
    report = build_report(4849, aggregate_jobs([]))
    assert report.as_json() == {"transformation": 4849, "total": 0, "statuses": []}
    assert report.table_rows() == [
        {"kind": "total", "status": "Total # tasks:", "minor_status": "-", "application_status": "-", "site": "-",
         "total": "0", "style": "total", "colour": "", "minor_colour": ""}
    ]
    lines = render_text(report).splitlines()
    assert lines[0] == "Transformation: 4849"
    assert cells(lines[2]) == ("Status", "MinorStatus", "ApplicationStatus", "Site", "Total")
    assert cells(lines[-1]) == ("Total # tasks:", "-", "-", "-", "0")
    assert render_csv(report) == "transformation,status,minor_status,application_status,site,count\n"


# -- percentages --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "part, whole, expected",
    [
        (1875, 1916, 97.9),
        (41, 1916, 2.1),
        (1916, 2244, 85.4),
        (328, 2244, 14.6),
        (1, 328, 0.3),
        (325, 328, 99.1),
        (2, 328, 0.6),
        (1, 3, 33.3),
        (2, 3, 66.7),
        (1, 8, 12.5),
        (1, 16, 6.2),  # 6.25: Python rounds half to even
        (3, 16, 18.8),  # 18.75
        (1, 400, 0.2),  # 0.25
        (7, 2000, 0.3),  # 0.35 is 0.34999... in binary
        (0, 5, 0.0),
        (5, 5, 100.0),
        (1, 0, 0.0),
    ],
)
def test_it_rounds_percentages_like_python(part, whole, expected):
    assert percent(part, whole) == expected
    if whole:
        assert percent(part, whole) == round(100 * part / whole, 1)


def test_it_prints_rounded_percentages_as_python_does():
    jobs = [JobInfo(i, "Done", EC, WF, GRIF) for i in range(1, 16)] + [JobInfo(16, "Failed", MRR, IDR, GRIF)]
    report = build_report(1, aggregate_jobs(jobs))
    totals = [(r["status"], r["total"]) for r in report.table_rows() if r["kind"] == "status"]
    assert totals == [("Total: Done", "15 (93.8%)"), ("Total: Failed", "1 (6.2%)")]
    assert "1 (6.2%)" in render_text(report)
