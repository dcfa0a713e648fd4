"""``manage.py failover cycle|import-config|policy``."""

from __future__ import annotations

import json

from django.core.management.base import CommandParser
from django.db import transaction

from failover import rules
from failover.config_import import parse_path
from failover.engine import Engine
from failover.errors import ConfigurationError
from failover.management.base import FriendlyCommand
from failover.models import Policy
from failover.outcomes import count


class Command(FriendlyCommand):
    help = "Run a failover cycle, or import the agent's options from a DIRAC configuration file."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        cycle = sub.add_parser("cycle", help="run one cycle now")
        cycle.add_argument("--dry-run", action="store_true", help="print the decisions, change nothing")
        cycle.add_argument("--transformation", "-t", type=int, action="append", metavar="ID",
                           help="only this transformation (repeatable)")
        cycle.add_argument("--only", choices=rules.KINDS, action="append",
                           help="only these actions (repeatable)")
        cycle.add_argument("--json", action="store_true", help="print the decisions as JSON")
        cycle.add_argument("--full", action="store_true",
                           help="a full resync: read every transformation's tasks and jobs in full, report the "
                                "mirror's drift and repair it")
        recover = sub.add_parser("recover", help="run the recovery checks (DIRAC's DataRecoveryAgent) once now")
        recover.add_argument("--transformation", "-t", type=int, action="append", metavar="ID",
                             help="only this transformation (repeatable)")
        recover.add_argument("--dry-run", action="store_true", help="print the findings, change nothing")
        recover.add_argument("--json", action="store_true", help="print the findings as JSON")
        imp = sub.add_parser("import-config", help="store the policy found in a DIRAC configuration file")
        imp.add_argument("path")
        imp.add_argument("--name", default=None,
                         help="policy name (default: the policy in use, or 'default' if none is stored)")
        imp.add_argument("--use", action="store_true",
                         help="make this policy the one in use (every other policy is disabled)")
        pol = sub.add_parser("policy", help="show the policy in use")
        pol.add_argument("--use", metavar="NAME", help="make the stored policy NAME the one in use")
        status = sub.add_parser("status", help="whether beat, workers, broker, database, DIRAC and OpenSearch answer")
        status.add_argument("--json", action="store_true")
        status.add_argument("--no-workers", action="store_true", help="leave out the workers' heartbeat check")
        prune = sub.add_parser("prune", help="remove cycles and stored aggregates older than some days")
        prune.add_argument("--keep-days", type=int, default=None, help="default: FAILOVER_KEEP_DAYS")
        start = sub.add_parser("start-cycle", help="start a fanned-out cycle now (needs running workers)")
        start.add_argument("--wait", type=float, default=0, help="wait up to this many seconds for it to finish")

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, "do_" + action.replace("-", "_"))(**options)

    def do_cycle(self, dry_run: bool, transformation, only, json: bool, full: bool = False, **_) -> None:
        engine = Engine(dry_run=dry_run, trigger="cli")
        result = engine.run_cycle(transformation, only or rules.KINDS, full=full)
        if full and engine.cycle is not None and not json:
            c = engine.cycle
            d = c.drift or {}
            where = ", ".join(sorted(d.get("transformations", {}), key=int)) or "none"
            if c.drift_rows:
                self.stdout.write(f"full resync of {c.resynced} transformations: drift of {c.drift_rows} rows "
                                  f"({d.get('added', 0)} added, {d.get('changed', 0)} changed, "
                                  f"{d.get('removed', 0)} removed; transformations: {where}), repaired")
            else:
                self.stdout.write(f"full resync of {c.resynced} transformations: no drift")
        if json:
            # Standard output is the data and nothing else (DIRAC's logging goes to stderr).
            self.stdout.write(_json(result.as_json()))
        else:
            for outcome in result.outcomes.values():
                for d in outcome.decisions:
                    self.stdout.write(f"{d.transformation}: {d.kind}: {d.reason}")
                if outcome.state != "ok":
                    self.stdout.write(f"{outcome.transformation}: {outcome.state}: {outcome.message}")
            self.stdout.write(result.summary())
        if result.failed:
            # Any transformation that failed, or a cycle that stopped: exit status 1, and the
            # one-line summary on stderr as well (with --json, stdout holds only the data).
            self.stderr.write(result.summary())
            raise SystemExit(1)

    def do_recover(self, transformation, dry_run: bool, json: bool, **_) -> None:
        from failover.cycle.recover import run_recovery

        result = run_recovery(transformation, dry_run=dry_run)
        if json:
            self.stdout.write(_json(result.as_json()))
        else:
            for t in result.transformations:
                if t.state != "ok":
                    self.stdout.write(f"{t.id}: {t.state}: {t.message}")
                for f in t.findings:
                    actions = ", ".join(f["actions"]) or "nothing"
                    self.stdout.write(f"{t.id}: job {f['job']} (task {f['task']}): {f['case']}: {f['state']}: "
                                      f"{actions}: {f['reason']}")
            self.stdout.write(result.summary())
        if result.failed:
            self.stderr.write(result.summary())
            raise SystemExit(1)

    def do_import_config(self, path: str, name: str | None, use: bool, **_) -> None:
        from failover.config_import import check_against_model

        imported = parse_path(path)
        if not imported.has_failover:
            # Only a DataRecoveryAgent section: the failover policy is left as it is.
            if name is not None or use:
                raise ConfigurationError(
                    f"{path}: has no TransformationFailoverAgent section; --name and --use choose a failover policy"
                )
            with transaction.atomic():
                self._import_recovery(imported)
            return
        with transaction.atomic():
            in_use = Policy.current()
            name = in_use.name if name is None else name
            check_against_model(imported.values, name, imported.path)
            # Only one policy drives the cycles (Policy.current): storing another one silently
            # would change nothing anyone sees, so it needs --use, which says so.
            if in_use.pk is not None and in_use.name != name and not use:
                raise ConfigurationError(
                    f"policy {in_use.name!r} is the policy in use: importing into {name!r} would store a "
                    f"policy no cycle uses; add --use to make {name!r} the policy in use, or leave out --name "
                    f"to update {in_use.name!r}"
                )
            policy, created = Policy.objects.update_or_create(
                name=name, defaults={**imported.values, "source": imported.path, "enabled": True}
            )
            disabled = _use(policy)
            if imported.recovery is not None:
                self._import_recovery(imported)
        self.stdout.write(f"{'Created' if created else 'Updated'} policy {name!r} from {imported.path}")
        self.stdout.write(f"Policy {name!r} is the policy in use" + (
            f" (disabled: {', '.join(repr(n) for n in disabled)})" if disabled else ""))
        for line in _describe(policy):
            self.stdout.write(f"  {line}")
        for item in imported.ignored:
            self.stdout.write(f"  ignored: {item}")

    def _import_recovery(self, imported) -> None:
        """Store the DataRecoveryAgent section into the recovery policy in use (or 'default')."""
        from failover.config_import import check_against_model
        from failover.models import RecoveryPolicy

        rec = imported.recovery
        name = RecoveryPolicy.current().name
        check_against_model(rec.values, name, rec.path, model=RecoveryPolicy)
        defaults = {f.name: f.get_default() for f in RecoveryPolicy._meta.concrete_fields
                    if f.name in {"mode", "transformation_statuses", "transformations_to_ignore", "types_with_input",
                                  "types_no_input", "files_max_reset_counter", "polling_time", "mail_to",
                                  "mail_from"}}
        policy, created = RecoveryPolicy.objects.update_or_create(
            name=name, defaults={**defaults, **rec.values, "source": rec.path, "enabled": True}
        )
        RecoveryPolicy.objects.filter(enabled=True).exclude(pk=policy.pk).update(enabled=False)
        self.stdout.write(f"{'Created' if created else 'Updated'} recovery policy {name!r} from {rec.path}")
        for line in describe_recovery(policy):
            self.stdout.write(f"  {line}")
        for item in rec.ignored:
            self.stdout.write(f"  ignored: {item}")

    def do_status(self, json: bool, no_workers: bool, **_) -> None:
        from failover.health import as_json, run_checks

        checks = run_checks(workers=not no_workers)
        if json:
            self.stdout.write(_json(as_json(checks)))
        else:
            for c in checks:
                self.stdout.write(f"{'ok  ' if c.ok else 'FAIL'} {c.name:<10} {c.detail}")
        if not all(c.ok for c in checks):
            raise SystemExit(1)

    def do_start_cycle(self, wait: float, **_) -> None:
        import time

        from failover.cycles import start_cycle
        from failover.models import Cycle

        cycle = start_cycle(trigger="cli-fanout")
        self.stdout.write(f"Cycle {cycle.pk} started: {count(cycle.transformations, 'transformation')} queued")
        deadline = time.monotonic() + wait
        while wait and time.monotonic() < deadline:
            cycle.refresh_from_db()
            if cycle.state != Cycle.State.RUNNING:
                break
            time.sleep(0.2)
        cycle.refresh_from_db()
        if wait:
            took = f" in {(cycle.finished - cycle.started).total_seconds():.2f} s" if cycle.finished else ""
            self.stdout.write(f"Cycle {cycle.pk} {cycle.state}{took}: {count(cycle.errors, 'error')}")
            if cycle.state != Cycle.State.FINISHED or cycle.errors:
                # As `failover cycle`: a transformation that failed is exit status 1.
                self.stderr.write(f"Cycle {cycle.pk} {cycle.state}{took}: {count(cycle.errors, 'error')}")
                raise SystemExit(1)

    def do_prune(self, keep_days, **_) -> None:
        from django.conf import settings

        from failover.errors import ConfigurationError
        from failover.maintenance import prune

        days = settings.FAILOVER_KEEP_DAYS if keep_days is None else keep_days
        if days < 1:
            raise ConfigurationError("--keep-days must be at least 1")
        self.stdout.write(f"Kept the last {days} days: {prune(days)}")

    def do_policy(self, use: str | None = None, **_) -> None:
        if use is not None:
            with transaction.atomic():
                chosen = Policy.objects.filter(name=use).first()
                if chosen is None:
                    known = ", ".join(repr(n) for n in Policy.objects.values_list("name", flat=True)) or "none"
                    raise ConfigurationError(f"no policy named {use!r} (stored: {known})")
                Policy.objects.filter(pk=chosen.pk).update(enabled=True)
                disabled = _use(chosen)
            self.stdout.write(f"Policy {use!r} is the policy in use" + (
                f" (disabled: {', '.join(repr(n) for n in disabled)})" if disabled else ""))
        policy = Policy.current()
        self.stdout.write(f"Policy {policy.name!r}{'' if policy.pk else ' (defaults, not stored)'}")
        for line in _describe(policy):
            self.stdout.write(f"  {line}")
        from failover.models import RecoveryPolicy

        rec = RecoveryPolicy.current()
        self.stdout.write(f"Recovery policy {rec.name!r}" + (
            "" if rec.pk else " (defaults, not stored: beat does not run recovery; failover recover does)"))
        for line in describe_recovery(rec):
            self.stdout.write(f"  {line}")


def _use(policy: Policy) -> list[str]:
    """Make ``policy`` the only enabled one (inside the caller's transaction); the names disabled."""
    others = Policy.objects.filter(enabled=True).exclude(pk=policy.pk)
    names = list(others.values_list("name", flat=True))
    others.update(enabled=False)
    return names


def _describe(p: Policy) -> list[str]:
    def lst(v):
        return ", ".join(v) if v else "(none)"

    return [
        f"Mode: {p.mode}",
        f"TransformationStatus: {lst(p.transformation_statuses)}",
        f"TransformationTypes: {lst(p.transformation_types) if p.transformation_types else '(every type)'}",
        f"Report: {lst(p.report_types)}",
        f"Complete: {lst(p.complete_types)}",
        f"Flush: {lst(p.flush_types)}",
        f"Reassign: {lst(p.reassign_types)}",
        f"MaxReassign: {p.max_reassign}",
        f"MaxFlush: {p.max_flush}",
        f"PollingTime: {p.polling_time}",
        f"MailTo: {lst(p.mail_to)}",
        f"MailFrom: {p.mail_from or '(none)'}",
    ]


def describe_recovery(p) -> list[str]:
    def lst(v):
        return ", ".join(str(x) for x in v) if v else "(none)"

    return [
        f"Mode: {p.mode} (EnableFlag {'True' if p.mode == 'act' else 'False'}; removing outputs is always a proposal)",
        f"TransformationStatus: {lst(p.transformation_statuses)}",
        "TransformationsWithInput: "
        + ("(every type not in TransformationsNoInput)" if p.types_with_input is None else lst(p.types_with_input)),
        f"TransformationsNoInput: {lst(p.types_no_input)}",
        f"TransformationsToIgnore: {lst(p.transformations_to_ignore)}",
        f"FilesMaxResetCounter: {p.files_max_reset_counter}",
        f"Output source: {p.output_source}",
        f"PollingTime: {p.polling_time}",
        f"MailTo: {lst(p.mail_to)}",
    ]


def _json(data) -> str:
    return json.dumps(data, indent=1)
