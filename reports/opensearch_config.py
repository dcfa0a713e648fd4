"""OpenSearch configuration: settings, the client, error wording, index names, mappings and templates."""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from urllib.parse import urlsplit, urlunsplit

from failover.errors import ConfigurationError

log = logging.getLogger(__name__)

ROWS = "wmshistory"
SNAPSHOTS = "snapshots"
ACTIONS = "actions"
FAMILIES = (ROWS, SNAPSHOTS, ACTIONS)
_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class OpenSearchConfig:
    url: str
    user: str = ""
    password: str = ""
    ca_certs: str = ""
    prefix: str = "failover"
    timeout: float = 10.0
    retries: int = 3
    wmshistory_source: str = ""
    send_on_commit: bool = True

    @classmethod
    def from_settings(cls) -> OpenSearchConfig:
        from django.conf import settings

        config = cls(
            url=settings.OPENSEARCH_URL.rstrip("/"),
            user=getattr(settings, "OPENSEARCH_USER", ""),
            password=getattr(settings, "OPENSEARCH_PASSWORD", ""),
            ca_certs=getattr(settings, "OPENSEARCH_CA_CERTS", ""),
            prefix=getattr(settings, "OPENSEARCH_INDEX_PREFIX", "failover"),
            timeout=getattr(settings, "OPENSEARCH_TIMEOUT", 10.0),
            retries=getattr(settings, "OPENSEARCH_RETRIES", 3),
            wmshistory_source=getattr(settings, "OPENSEARCH_WMSHISTORY_SOURCE", ""),
            send_on_commit=getattr(settings, "OPENSEARCH_SEND_ON_COMMIT", True),
        )
        config.validate()
        return config

    def validate(self) -> None:
        if not self.url:
            raise ConfigurationError("OpenSearch is not configured: set OPENSEARCH_URL")
        if urlsplit(self.url).scheme not in ("http", "https"):
            raise ConfigurationError(f"OPENSEARCH_URL={self.safe_url!r} must start with http:// or https://")
        if not _PREFIX_RE.match(self.prefix):
            raise ConfigurationError(
                f"OPENSEARCH_INDEX_PREFIX={self.prefix!r} is not a valid index name start "
                "(lowercase letters, digits, '-', '_', '.')"
            )

    @property
    def safe_url(self) -> str:
        """The URL without any user:password in it, for messages."""
        parts = urlsplit(self.url)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def alias(self, family: str) -> str:
        return f"{self.prefix}-{family}"

    def index(self, family: str, when: datetime | int) -> str:
        """The daily index of a document: by its timestamp's UTC date (epoch ms or a datetime)."""
        if isinstance(when, int):
            when = datetime.fromtimestamp(when / 1000, tz=dt_timezone.utc)
        day = when.astimezone(dt_timezone.utc).strftime("%Y-%m-%d")
        return f"{self.prefix}-{family}-{day}"


@functools.lru_cache(maxsize=32)
def get_client(config: OpenSearchConfig, retries: int | None = None):
    """One client per configuration (it keeps a connection pool). ``retries=0`` for the cycle's path."""
    from opensearchpy import OpenSearch

    kwargs = {
        "hosts": [config.url],
        "timeout": config.timeout,
        "max_retries": config.retries if retries is None else retries,
        "retry_on_timeout": True,
    }
    if config.user:
        kwargs["http_auth"] = (config.user, config.password)
    if config.url.startswith("https"):
        kwargs.update(use_ssl=True, verify_certs=True)
        if config.ca_certs:
            kwargs["ca_certs"] = config.ca_certs
    return OpenSearch(**kwargs)


def describe(exc: Exception, config: OpenSearchConfig) -> str:
    """One line on why OpenSearch did not answer, without a traceback or credentials."""
    from opensearchpy import ConnectionError as OSConnectionError, ConnectionTimeout, TransportError

    if isinstance(exc, ConnectionTimeout):
        return f"no answer from OpenSearch at {config.safe_url} within {config.timeout:g} s"
    if isinstance(exc, OSConnectionError):
        found = re.search(r"\[Errno -?\d+\] [^)\]'\"]+", str(exc))
        why = found.group(0).strip() if found else exc.__class__.__name__
        return f"cannot connect to OpenSearch at {config.safe_url} ({why})"
    if isinstance(exc, TransportError):
        reason = exc.error
        info = exc.info if isinstance(exc.info, dict) else {}
        detail = info.get("error", {}).get("reason") if isinstance(info.get("error"), dict) else ""
        return f"OpenSearch at {config.safe_url} answered HTTP {exc.status_code}: {reason}" + (
            f" ({detail})" if detail else ""
        )
    return f"OpenSearch at {config.safe_url}: {exc.__class__.__name__}: {exc}"


def opensearch_errors() -> tuple[type[Exception], ...]:
    from opensearchpy.exceptions import ImproperlyConfigured, OpenSearchException
    from urllib3.exceptions import HTTPError

    return (OpenSearchException, ImproperlyConfigured, HTTPError, OSError)


# -- index templates ----------------------------------------------------------------------------
KEYWORD = {"type": "keyword"}
INTEGER = {"type": "integer"}
LONG = {"type": "long"}
EPOCH_MS = {"type": "date", "format": "epoch_millis"}
TEMPLATE_VERSION = 1

# DIRAC's WMSHistory key fields are keywords and Jobs a count (reference 8).
WMSHISTORY_FIELDS = {
    "timestamp": EPOCH_MS,
    "Status": KEYWORD,
    "MinorStatus": KEYWORD,
    "ApplicationStatus": KEYWORD,
    "Site": KEYWORD,
    "JobGroup": KEYWORD,
    "Jobs": INTEGER,
}

MAPPINGS = {
    ROWS: {
        **WMSHISTORY_FIELDS,
        "CycleID": LONG,
        "TransformationID": INTEGER,
        "ProductionID": INTEGER,
        "TransformationType": KEYWORD,
        # The lowest job id of the combination, then its place in the cycle's list: the report's row order.
        "FirstJob": LONG,
        "RowIndex": INTEGER,
        # Which write of the snapshot this row belongs to (see the module's docstring).
        "WriteSeq": LONG,
    },
    SNAPSHOTS: {
        "timestamp": EPOCH_MS,
        # The cycle's start to the microsecond, as the SQL store keeps it (``timestamp`` has ms).
        "TimestampMicros": LONG,
        "CycleID": LONG,
        "TransformationID": INTEGER,
        "JobGroup": KEYWORD,
        "ProductionID": INTEGER,
        "TransformationType": KEYWORD,
        "Rows": INTEGER,
        "Jobs": INTEGER,
        "WriteSeq": LONG,
    },
    ACTIONS: {
        "timestamp": EPOCH_MS,
        "ActionID": LONG,
        "CycleID": LONG,
        "TransformationID": INTEGER,
        "JobGroup": KEYWORD,
        "Kind": KEYWORD,
        "State": KEYWORD,
        "Actor": KEYWORD,
        "User": KEYWORD,
        "Reason": {"type": "text"},
        "Outcome": {"type": "text"},
        "Error": {"type": "text"},
        "Created": EPOCH_MS,
        "Finished": EPOCH_MS,
        "Tasks": INTEGER,
        "Files": INTEGER,
        "Moved": INTEGER,
        # Task ids and LFNs as keys would grow the mapping without bound: kept, not indexed.
        "Details": {"type": "object", "enabled": False},
    },
}


def templates(config: OpenSearchConfig) -> dict[str, dict]:
    return {
        config.alias(family): {
            "index_patterns": [config.alias(family) + "-*"],
            "priority": 100,
            "version": TEMPLATE_VERSION,
            "_meta": {"managed_by": "failover-dashboard"},
            "template": {
                "settings": {"number_of_shards": 1},
                # Unknown fields stay in _source but are not indexed: no mapping surprises.
                "mappings": {"dynamic": False, "properties": MAPPINGS[family]},
                "aliases": {config.alias(family): {}},
            },
        }
        for family in FAMILIES
    }


_templates_installed: set[tuple[str, str]] = set()


def ensure_templates(client, config: OpenSearchConfig, *, force: bool = False) -> list[str]:
    """Install (or update) the index templates; idempotent, done once per process unless forced."""
    key = (config.url, config.prefix)
    if key in _templates_installed and not force:
        return []
    names = []
    for name, body in templates(config).items():
        client.indices.put_index_template(name=name, body=body)
        names.append(name)
    _templates_installed.add(key)
    return names
