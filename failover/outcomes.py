"""What an action did, as numbers (``ActionLog.result``), and the one sentence built from them.

The engine records the numbers when it settles an action; the overview's "last action", the
action log and the outcome text all read them through :func:`phrase`, so no page parses another
module's sentence. Plurals go through Django's ``pluralize`` and numbers through humanize's
``intcomma`` (``count``), never by hand.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from django.contrib.humanize.templatetags.humanize import intcomma
from django.template.defaultfilters import pluralize

from failover.domain import COMPLETE, FLUSH_ACTION, REASSIGN, SYNC, UNUSED


def count(n: int, word: str, plural: str = "s") -> str:
    """``count(1, "file")`` is "1 file", ``count(1225, "file")`` "1,225 files"."""
    return f"{intcomma(n)} {word}{pluralize(n, plural)}"


def sync_result(updates: Mapping[str, Iterable[int]]) -> dict:
    return {"tasks": {status: len(list(ids)) for status, ids in updates.items()}}


def status_result(expected: str, status: str) -> dict:
    return {"from": expected, "to": status}


def reassign_result(asked: Iterable[str], written: Mapping[str, str]) -> dict:
    """From the LFNs asked and what DIRAC says it wrote (LFN to status): how many went back to
    Unused, how many DIRAC turned into another status (MaxReset), how many it left unchanged."""
    asked = set(asked)
    became = Counter(status for lfn, status in written.items() if status != UNUSED)
    return {
        "files": len(asked),
        "unused": sum(1 for status in written.values() if status == UNUSED),
        "became": dict(sorted(became.items())),
        "unchanged": len(asked - set(written)),
    }


def phrase(kind: str, result: Mapping | None) -> str:
    """What happened, in words: "225 files reset to Unused", "3 tasks set Failed", "status Active
    to Completed". "" when the action recorded no numbers (an entry older than them)."""
    if not result:
        return ""
    if kind == SYNC:
        return ", ".join(f"{count(n, 'task')} set {status}" for status, n in result.get("tasks", {}).items())
    if kind == REASSIGN:
        parts = [f"{count(result.get('unused', 0), 'file')} reset to Unused"]
        parts += [f"{intcomma(n)} became {status}" for status, n in result.get("became", {}).items()]
        if result.get("unchanged"):
            parts.append(f"{intcomma(result['unchanged'])} left unchanged by DIRAC")
        return "; ".join(parts)
    if kind in (COMPLETE, FLUSH_ACTION):
        return f"status {result.get('from')} to {result.get('to')}"
    return ""
