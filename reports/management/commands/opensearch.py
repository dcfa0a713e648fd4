"""``manage.py opensearch setup | dashboards --export FILE --import URL | flush-outbox``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.template.defaultfilters import pluralize
from django.utils import timezone

from failover.errors import ConfigurationError, FailoverError
from failover.management.base import FriendlyCommand
from failover.outcomes import count


class Command(FriendlyCommand):
    help = "OpenSearch: install the index templates, export or import the dashboards, send the outbox."

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="{setup,dashboards,flush-outbox}")
        sub.add_parser("setup", help="install (or update) the index templates; idempotent")
        dash = sub.add_parser("dashboards", help="OpenSearch Dashboards saved objects")
        dash.add_argument("--export", metavar="FILE.ndjson", help="write the saved objects to this file")
        dash.add_argument("--import", dest="import_url", metavar="URL",
                          help="send them to this OpenSearch Dashboards (e.g. https://dashboards:5601)")
        dash.add_argument("--index-pattern", default="",
                          help="index pattern the visualisations read (default: our alias <prefix>-wmshistory; "
                               "DIRAC's own: wmshistory_index-*)")
        dash.add_argument("--user", default=None, help="Dashboards user (default: OPENSEARCH_USER)")
        dash.add_argument("--password", default=None, help="Dashboards password (default: OPENSEARCH_PASSWORD)")
        flush = sub.add_parser("flush-outbox", help="send every document waiting in the outbox now")
        flush.add_argument("--actions-since", type=float, default=48.0, metavar="HOURS",
                           help="first add finished actions of the last HOURS that OpenSearch lacks (0: skip)")

    def handle(self, *args, action: str, **options) -> None:
        if action == "setup":
            self.setup()
        elif action == "dashboards":
            self.dashboards(**options)
        else:
            self.flush(options["actions_since"])

    def _config(self):
        from reports.opensearch_config import OpenSearchConfig

        return OpenSearchConfig.from_settings()

    def setup(self) -> None:
        from reports.opensearch_config import describe, ensure_templates, get_client, opensearch_errors

        config = self._config()
        try:
            names = ensure_templates(get_client(config), config, force=True)
        except opensearch_errors() as exc:
            raise FailoverError(describe(exc, config)) from None
        self.stdout.write(f"Index templates installed at {config.safe_url}: " + ", ".join(names))

    def dashboards(self, *, export, import_url, index_pattern, user, password, **options) -> None:
        from reports.dashboards import import_objects, saved_objects, to_ndjson

        if not export and not import_url:
            raise ConfigurationError("say --export FILE.ndjson, --import URL, or both")
        prefix = getattr(settings, "OPENSEARCH_INDEX_PREFIX", "failover")
        objects = saved_objects(prefix, index_pattern)
        ndjson = to_ndjson(objects)
        if export:
            Path(export).write_text(ndjson)
            self.stdout.write("%d saved objects written to %s" % (len(objects), export))
        if import_url:
            answer = import_objects(
                import_url,
                ndjson,
                user=settings.OPENSEARCH_USER if user is None else user,
                password=settings.OPENSEARCH_PASSWORD if password is None else password,
                ca_certs=settings.OPENSEARCH_CA_CERTS,
                timeout=max(settings.OPENSEARCH_TIMEOUT, 30.0),
            )
            imported = answer.get("successCount", len(objects))
            self.stdout.write(f"{imported} saved objects imported into {import_url}")

    def flush(self, actions_since: float) -> None:
        from reports import outbox
        from reports.opensearch_config import describe, opensearch_errors

        config = self._config()
        if actions_since > 0:
            try:
                added = outbox.sweep_actions(config, timezone.now() - timedelta(hours=actions_since))
            except opensearch_errors() as exc:
                waiting = outbox.summary()["waiting"]
                wait = f"{count(waiting, 'document')} {pluralize(waiting, 'waits,wait')}"
                raise FailoverError(f"{describe(exc, config)}; {wait}") from None
            if added:
                self.stdout.write(f"{added} finished actions added to the outbox")
        result = outbox.drain(config, force=True)
        left = outbox.summary()
        n = left["waiting"]
        self.stdout.write(f"{result.summary()}; {count(n, 'document')} {pluralize(n, 'waits,wait')} in the outbox")
        for error in result.errors:
            self.stderr.write(f"  {error}")
        if result.error:
            raise FailoverError(result.error)
