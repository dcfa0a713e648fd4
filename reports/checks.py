"""``manage.py check``: the OpenSearch settings make sense (nothing is contacted)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.checks import Error, register

from failover.errors import ConfigurationError


@register()
def opensearch_settings(app_configs=None, **kwargs) -> list[Error]:
    if not getattr(settings, "OPENSEARCH_URL", ""):
        return []
    from reports.opensearch_config import OpenSearchConfig

    errors = []
    try:
        config = OpenSearchConfig.from_settings()
    except ConfigurationError as exc:
        return [Error(str(exc), id="reports.E001")]
    if config.ca_certs and not Path(config.ca_certs).is_file():
        errors.append(Error(f"OPENSEARCH_CA_CERTS={config.ca_certs!r} is not a file", id="reports.E002"))
    if config.user and not config.password:
        errors.append(Error("OPENSEARCH_USER is set but OPENSEARCH_PASSWORD is empty", id="reports.E003"))
    return errors
