"""The report: job counts by Status, MinorStatus, ApplicationStatus and Site, with subtotals.

Pure functions. Rows keep the agent's order: sorted by (Status, MinorStatus) as plain strings,
and within one (Status, MinorStatus) in the order the combination first appears among the jobs
(reference 4.4). Percentages are ``round(100 * part / whole, 1)``; a minor status's subtotal is
counted within its own status (the agent counts it across all statuses, reference 5.10).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field

from failover.domain import JobInfo
from reports import csvsafe
from reports.colours import minor_colour, status_colour, style_of


@dataclass(frozen=True, slots=True)
class AggregateRow:
    status: str
    minor_status: str
    application_status: str
    site: str
    count: int
    # The lowest job id of the combination: keeps "first appearance" order through storage.
    first_job: int = 0


def aggregate_jobs(jobs: Iterable[JobInfo]) -> list[AggregateRow]:
    """One row per distinct (Status, MinorStatus, ApplicationStatus, Site), ordered by first job."""
    counts: dict[tuple[str, str, str, str], list[int]] = {}
    for job in sorted(jobs, key=lambda j: j.id):
        key = (job.status, job.minor_status, job.application_status, job.site)
        entry = counts.get(key)
        if entry is None:
            counts[key] = [1, job.id]
        else:
            entry[0] += 1
    return [AggregateRow(*key, count=n, first_job=first) for key, (n, first) in counts.items()]


def percent(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


@dataclass
class MinorGroup:
    minor_status: str
    count: int
    percent: float
    rows: list[AggregateRow] = field(default_factory=list)


@dataclass
class StatusGroup:
    status: str
    count: int
    percent: float
    minor_statuses: list[MinorGroup] = field(default_factory=list)

    @property
    def style(self) -> str:
        return style_of(self.status)


@dataclass
class Report:
    transformation: int
    total: int
    statuses: list[StatusGroup]

    def count(self, status: str, minor_status: str | None = None) -> int:
        for group in self.statuses:
            if group.status == status:
                if minor_status is None:
                    return group.count
                return sum(m.count for m in group.minor_statuses if m.minor_status == minor_status)
        return 0

    def as_json(self) -> dict:
        """The contract other tools read (issue: failover core, item 6)."""
        return {
            "transformation": self.transformation,
            "total": self.total,
            "statuses": [
                {
                    "status": s.status,
                    "count": s.count,
                    "percent": s.percent,
                    "minor_statuses": [
                        {
                            "minor_status": m.minor_status,
                            "count": m.count,
                            "percent": m.percent,
                            "rows": [
                                {"application_status": r.application_status, "site": r.site, "count": r.count}
                                for r in m.rows
                            ],
                        }
                        for m in s.minor_statuses
                    ],
                }
                for s in self.statuses
            ],
        }

    def table_rows(self) -> list[dict]:
        """The mail's rows in order, each with a kind: data, minor (subtotal), status (total), total.

        Each row also carries the colours of its status and minor status (reports/colours.py),
        the very ones the charts use ("" where the row has none)."""
        rows: list[dict] = []
        for s in self.statuses:
            colour = status_colour(s.status)
            for m in s.minor_statuses:
                minor = minor_colour(s.status, m.minor_status)
                for r in m.rows:
                    rows.append({"kind": "data", "status": s.status, "minor_status": m.minor_status,
                                 "application_status": r.application_status, "site": r.site,
                                 "total": str(r.count), "style": s.style, "colour": colour, "minor_colour": minor})
                rows.append({"kind": "minor", "status": s.status, "minor_status": f"Total: {m.minor_status}",
                             "application_status": "-", "site": "-", "total": f"{m.count} ({m.percent}%)",
                             "style": s.style, "colour": colour, "minor_colour": minor})
            rows.append({"kind": "status", "status": f"Total: {s.status}", "minor_status": "-",
                         "application_status": "-", "site": "-", "total": f"{s.count} ({s.percent}%)",
                         "style": s.style, "colour": colour, "minor_colour": ""})
        rows.append({"kind": "total", "status": "Total # tasks:", "minor_status": "-", "application_status": "-",
                     "site": "-", "total": str(self.total), "style": "total", "colour": "", "minor_colour": ""})
        return rows


def build_report(transformation: int, rows: Iterable[AggregateRow]) -> Report:
    rows = list(rows)
    total = sum(r.count for r in rows)
    ordered = sorted(rows, key=lambda r: (r.status, r.minor_status, r.first_job))
    statuses: list[StatusGroup] = []
    for r in ordered:
        if not statuses or statuses[-1].status != r.status:
            statuses.append(StatusGroup(r.status, 0, 0.0))
        group = statuses[-1]
        if not group.minor_statuses or group.minor_statuses[-1].minor_status != r.minor_status:
            group.minor_statuses.append(MinorGroup(r.minor_status, 0, 0.0))
        minor = group.minor_statuses[-1]
        minor.rows.append(r)
        minor.count += r.count
        group.count += r.count
    for group in statuses:
        group.percent = percent(group.count, total)
        for minor in group.minor_statuses:
            minor.percent = percent(minor.count, group.count)
    return Report(transformation, total, statuses)


COLUMNS = ("Status", "MinorStatus", "ApplicationStatus", "Site", "Total")
_KEYS = ("status", "minor_status", "application_status", "site", "total")


def render_text(report: Report) -> str:
    """A plain-text table like the agent's mail."""
    rows = [COLUMNS] + [tuple(row[k] for k in _KEYS) for row in report.table_rows()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = [f"Transformation: {report.transformation}", ""]
    for n, r in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def render_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csvsafe.writer(out, lineterminator="\n")  # grid text never becomes a formula
    writer.writerow(["transformation", "status", "minor_status", "application_status", "site", "count"])
    for s in report.statuses:
        for m in s.minor_statuses:
            for r in m.rows:
                writer.writerow(
                    [report.transformation, s.status, m.minor_status, r.application_status, r.site, r.count]
                )
    return out.getvalue()
