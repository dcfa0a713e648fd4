"""The reports app's health checks: OpenSearch and its outbox (only with OPENSEARCH_URL set)."""

from __future__ import annotations

from django.conf import settings
from django.template.defaultfilters import pluralize

from failover.health import Check, age_in_words, age_of, register
from failover.outcomes import count


@register("opensearch", order=70, explanation="OpenSearch answers (only when OPENSEARCH_URL is set).")
def check_opensearch() -> Check | None:
    if not getattr(settings, "OPENSEARCH_URL", ""):
        return None
    from reports.outbox import health

    state = health()
    return Check("opensearch", state["ok"], state["detail"])


# Documents older than this in the outbox mean OpenSearch has not taken them for a while.
OUTBOX_LATE_SECONDS = 15 * 60


@register("outbox", order=71, explanation="Documents waiting in the database outbox for OpenSearch; "
                                         "unhealthy when one has waited more than 15 min.")
def check_outbox() -> Check | None:
    if not getattr(settings, "OPENSEARCH_URL", ""):
        return None
    from reports.outbox import summary

    state = summary()
    waiting, oldest = state["waiting"], state["oldest"]
    if not waiting:
        return Check("outbox", True, "nothing waits")
    age = age_of(oldest)
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(state["by_kind"].items()))
    detail = (f"{count(waiting, 'document')} {pluralize(waiting, 'waits,wait')} ({kinds}), "
              f"the oldest since {age_in_words(oldest)}")
    if state["last_error"]:
        detail += f"; last error: {state['last_error'][:200]}"
    return Check("outbox", age <= OUTBOX_LATE_SECONDS, detail, age)
