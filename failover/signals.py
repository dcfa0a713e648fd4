"""Signals the failover domain sends; other parts (the OpenSearch export) listen."""

from django.dispatch import Signal

# An action-log entry reached a final state (done, failed, interrupted, stale, rejected) through a
# conditional UPDATE, which sends no post_save. Sent inside the settling transaction, with
# ``action_id``.
action_finished = Signal()
