"""``manage.py report ID --format table|json|csv [--stored [--cycle N]]``."""

from __future__ import annotations

import json

from failover.errors import FailoverError
from failover.management.base import FriendlyCommand
from reports.aggregation import build_report, render_csv, render_text
from reports.live import live_report
from reports.stores import stored_aggregates


class Command(FriendlyCommand):
    help = "The job report of a transformation: counts by Status, MinorStatus, ApplicationStatus, Site."

    def add_arguments(self, parser) -> None:
        parser.add_argument("transformation", type=int, metavar="ID")
        parser.add_argument("--format", choices=("table", "json", "csv"), default="table")
        parser.add_argument("--stored", action="store_true", help="read the aggregates stored by the last cycle")
        parser.add_argument("--cycle", type=int, help="with --stored: as of this cycle")

    def handle(self, *args, transformation: int, format: str, stored: bool, cycle, **options) -> None:
        if cycle is not None and not stored:
            raise FailoverError("--cycle goes with --stored")
        if stored:
            snap = stored_aggregates(transformation, cycle)
            if snap is None:
                where = f" by cycle {cycle}" if cycle else ""
                raise FailoverError(f"transformation {transformation} has no stored aggregates{where}")
            report = build_report(transformation, snap.rows)
            header = f"Stored by cycle {snap.cycle_id} at {snap.timestamp:%Y-%m-%d %H:%M:%S} UTC"
        else:
            report = live_report(transformation)
            header = ""
        if format == "json":
            self.stdout.write(json.dumps(report.as_json(), indent=1))
        elif format == "csv":
            self.stdout.write(render_csv(report), ending="")
        else:
            if header:
                self.stdout.write(header)
            self.stdout.write(render_text(report), ending="")
