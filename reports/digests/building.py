"""What one digest says: plain data for the three templates (subject, text, HTML).

A digest covers the transformations in its subscriptions' scope. It opens with a summary of what
changed since the recipient's last digest of the same kind (compared with the snapshot that digest
recorded), then one section per transformation that has something to show: the report table like
the agent's mail, the reassigned LFNs, the actions taken, attention items and proposals waiting.
Reads only committed data; writes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db.models import Q
from django.template.defaultfilters import pluralize
from django.urls import reverse

from failover import attention as attention_rules
from failover.models import ActionLog, Policy, TransformationState
from reports.aggregation import Report, build_report, render_text
from reports.digests.models import DigestRecord, Subscription
from reports.digests.tokens import make_token
from reports.insight import top_signatures
from reports.stores import get_store, stored_aggregates

# A digest is a mail, not a dump: past this many transformations it says how many more and links
# to the overview.
MAX_SECTIONS = 25
MAX_LFNS = 100
MAX_CHANGES = 30
# The failure signatures a section lists under its report.
TOP_SIGNATURES = 5
# Actions a person cares about; copying job statuses into tasks happens every cycle.
ACTION_KINDS = (ActionLog.Kind.COMPLETE, ActionLog.Kind.FLUSH, ActionLog.Kind.REASSIGN)
# Our words: the log's "Reassign failed" reads like a reassign that failed.
ACTION_TITLES = {"complete": "Complete", "flush": "Flush", "reassign": "Reassign"}
ACTION_COUNTS = (("complete", "completion"), ("flush", "flush"), ("reassign", "reassignment"))
ACTION_STATES = (ActionLog.State.DONE, ActionLog.State.FAILED, ActionLog.State.INTERRUPTED, ActionLog.State.PENDING)


def site_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


@dataclass
class Line:
    text: str
    url: str = ""
    tone: str = ""  # good, bad, warn or ""


@dataclass
class ActionLine:
    pk: int
    kind: str
    title: str
    state: str
    when: datetime
    actor: str
    reason: str
    outcome: str
    url: str


@dataclass
class Section:
    tid: int
    name: str
    type: str
    status: str
    production_id: int | None
    url: str
    production_url: str
    jobs_total: int
    jobs_failed: int
    failed_share: float
    report: Report | None = None
    report_text: str = ""
    report_cycle: int | None = None
    report_time: datetime | None = None
    report_url: str = ""
    # The most frequent failure signatures of the report (reports/insight.py): (signature, jobs, sites).
    signatures: list[tuple[str, int, list[str]]] = field(default_factory=list)
    reassigned: list[tuple[str, str]] = field(default_factory=list)
    reassigned_total: int = 0
    actions: list[ActionLine] = field(default_factory=list)
    attention: list[attention_rules.Item] = field(default_factory=list)
    proposals: list[ActionLine] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    news: bool = False

    @property
    def has_content(self) -> bool:
        return bool(self.report or self.actions or self.attention or self.proposals)

    @property
    def report_rows(self) -> list[dict]:
        return self.report.table_rows() if self.report else []

    @property
    def reassigned_more(self) -> int:
        return self.reassigned_total - len(self.reassigned)


@dataclass
class Digest:
    address: str
    user_name: str
    kind: str
    period: str
    title: str
    window_start: datetime
    window_end: datetime
    previous_sent: datetime | None
    cycle_id: int | None
    subscriptions: list[Subscription]
    summary: list[Line] = field(default_factory=list)
    changes: list[Line] = field(default_factory=list)
    changes_more: int = 0
    sections: list[Section] = field(default_factory=list)
    more: int = 0
    snapshot: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    links: dict = field(default_factory=dict)

    @property
    def has_content(self) -> bool:
        return bool(self.sections)

    @property
    def headline(self) -> str:
        c = self.counts
        parts = []
        if c.get("actions"):
            parts.append(f"{c['actions']} action{pluralize(c['actions'])}")
        if c.get("reports"):
            parts.append(f"{c['reports']} report{pluralize(c['reports'])}")
        if c.get("attention"):
            parts.append(f"{c['attention']} attention item{pluralize(c['attention'])}")
        if c.get("proposals"):
            parts.append(f"{c['proposals']} proposal{pluralize(c['proposals'])} waiting")
        return ", ".join(parts) or "nothing new"


# -- scope -----------------------------------------------------------------------------------------


def scope_q(sub: Subscription) -> Q | None:
    """The subscription's transformations as a filter (the rule of Subscription.matches); None: all."""
    ids = Q(transformation_id__in=sub.transformations) if sub.transformations else None
    if not sub.productions and not sub.transformation_types:
        return ids
    q = Q()
    if sub.productions:
        q &= Q(production_id__in=sub.productions)
    if sub.transformation_types:
        q &= Q(type__in=sub.transformation_types)
    return q | ids if ids is not None else q


def states_in_scope(subs: Sequence[Subscription]) -> list[TransformationState]:
    qs = TransformationState.objects.order_by("transformation_id")
    filters = [scope_q(sub) for sub in subs]
    if not filters or any(f is None for f in filters):
        return list(qs)
    q = filters[0]
    for f in filters[1:]:
        q |= f
    return list(qs.filter(q))


# -- snapshots and changes -----------------------------------------------------------------------


def _jobs_key(jobs: dict) -> str:
    return hashlib.sha256(json.dumps(jobs or {}, sort_keys=True).encode()).hexdigest()[:12]


def _item_key(item: attention_rules.Item) -> str:
    # By code and number, never by wording: rewording a blocker is not news.
    return f"{item.code}:{item.count if item.count is not None else ''}"


def snapshot_of(state: TransformationState, items: list, proposals: list[int]) -> dict:
    return {
        "status": state.status,
        "total": state.jobs_total,
        "failed": state.jobs_failed,
        "jobs": _jobs_key(state.jobs),
        "attention": sorted({_item_key(i) for i in items}),
        "proposals": sorted(proposals),
    }


def changes_between(before: dict | None, now: dict, titles: dict[str, str]) -> list[str]:
    """What changed for one transformation between two snapshots, in words."""
    if before is None:
        return []
    out = []
    if before.get("status") != now["status"]:
        out.append(f"status {before.get('status') or '?'} → {now['status']}")
    if before.get("failed") != now["failed"]:
        delta = now["failed"] - (before.get("failed") or 0)
        out.append(f"failed jobs {before.get('failed', 0)} → {now['failed']} ({delta:+d})")
    elif before.get("total") != now["total"]:
        out.append(f"jobs {before.get('total', 0)} → {now['total']}")
    elif before.get("jobs") != now["jobs"]:
        out.append("jobs changed status")
    old, new = set(before.get("attention", [])), set(now["attention"])
    for key in sorted(new - old):
        out.append(f"new attention item: {titles.get(key, key.split(':', 1)[-1])}")
    for key in sorted(old - new):
        out.append(f"resolved: {attention_rules.TITLES.get(key.split(':', 1)[0], key.split(':', 1)[-1])}")
    fresh = set(now["proposals"]) - set(before.get("proposals", []))
    if fresh:
        out.append(f"{len(fresh)} new proposal{pluralize(len(fresh))}")
    return out


# -- building ------------------------------------------------------------------------------------


def _action_line(a: ActionLog) -> ActionLine:
    return ActionLine(
        pk=a.pk,
        kind=a.kind,
        title=ACTION_TITLES.get(a.kind, a.get_kind_display()),
        state=a.state,
        when=a.created,
        actor=a.actor,
        reason=a.reason,
        outcome=a.outcome or a.error,
        url=site_url(reverse("audit_entry", args=[a.pk])),
    )


def _reassigned(actions: Sequence[ActionLog]) -> list[tuple[str, str]]:
    out = []
    for a in actions:
        if a.kind != ActionLog.Kind.REASSIGN:
            continue
        moved = a.details.get("moved") or []
        task_of = {lfn: str(task) for task, lfns in (a.details.get("tasks") or {}).items() for lfn in lfns}
        out += [(task_of.get(lfn, "?"), lfn) for lfn in moved]
    return sorted(set(out), key=lambda tl: (int(tl[0]) if tl[0].isdigit() else 0, tl[1]))


def build_digest(
    subs: Sequence[Subscription],
    *,
    address: str,
    kind: str,
    period: str,
    title: str,
    window_start: datetime,
    window_end: datetime,
    previous: DigestRecord | None = None,
    cycle_id: int | None = None,
) -> Digest:
    subs = list(subs)
    policy = Policy.current()
    user = next((s.user for s in subs if s.user_id), None)
    digest = Digest(
        address=address,
        user_name=(user.get_full_name() or user.get_username()) if user else "",
        kind=kind,
        period=period,
        title=title,
        window_start=window_start,
        window_end=window_end,
        previous_sent=previous.sent if previous else None,
        cycle_id=cycle_id,
        subscriptions=subs,
    )
    states = states_in_scope(subs)
    ids = {s.transformation_id for s in states}
    actions: dict[int, list[ActionLog]] = defaultdict(list)
    for a in ActionLog.objects.filter(
        created__gte=window_start, created__lt=window_end, kind__in=ACTION_KINDS, state__in=ACTION_STATES
    ).order_by("created", "id"):
        if a.transformation_id in ids:
            actions[a.transformation_id].append(a)
    proposals: dict[int, list[ActionLog]] = defaultdict(list)
    for p in ActionLog.objects.filter(state=ActionLog.State.PROPOSED).order_by("created", "id"):
        if p.transformation_id in ids:
            proposals[p.transformation_id].append(p)
    items = attention_rules.items_for(states, policy) if states else {}
    reporting = set(policy.transformation_statuses or ["Active"])
    store = get_store()
    before = previous.snapshot if previous else None

    sections: list[Section] = []
    changes: list[Line] = []
    counts: Counter = Counter()
    for state in states:
        tid = state.transformation_id
        mine = [s for s in subs if s.matches(state.production_id, state.type, tid)]
        if not mine:
            continue
        t_items = [i for i in items.get(tid, []) if i.code != attention_rules.PROPOSAL]
        t_proposals = proposals.get(tid, [])
        snap = snapshot_of(state, t_items, [p.pk for p in t_proposals])
        digest.snapshot[str(tid)] = snap
        titles = {_item_key(i): i.title for i in t_items}
        t_changes = changes_between(before.get(str(tid)) if before is not None else None, snap, titles)
        section = Section(
            tid=tid,
            name=state.name,
            type=state.type,
            status=state.status,
            production_id=state.production_id,
            url=site_url(reverse("transformation", args=[tid])),
            production_url=site_url(reverse("production", args=[state.production_id]))
            if state.production_id is not None else "",
            jobs_total=state.jobs_total,
            jobs_failed=state.jobs_failed,
            failed_share=state.failed_share,
            changes=t_changes,
        )
        shares = [s.min_failed_share for s in mine if s.want_reports]
        if shares and state.status in reporting and state.jobs_total > 0 and state.failed_share >= min(shares):
            stored = stored_aggregates(tid, store=store)
            if stored is not None and stored.rows:
                section.report = build_report(tid, stored.rows)
                section.report_text = render_text(section.report)
                section.report_cycle = stored.cycle_id
                section.report_time = stored.timestamp
                section.report_url = f"{section.url}?cycle={stored.cycle_id}"
                section.signatures = top_signatures(stored.rows, TOP_SIGNATURES)
        t_actions = actions.get(tid, [])
        if any(s.want_actions for s in mine):
            section.actions = [_action_line(a) for a in t_actions]
            moved = _reassigned(t_actions)
            section.reassigned_total = len(moved)
            section.reassigned = moved[:MAX_LFNS]
        if any(s.want_attention for s in mine):
            section.attention = t_items
        if any(s.want_proposals for s in mine):
            section.proposals = [_action_line(p) for p in t_proposals]
        # Only what the subscriptions ask for is reported as changed.
        if not section.attention and not any(s.want_attention for s in mine):
            t_changes = [c for c in t_changes if not c.startswith(("new attention", "resolved"))]
        if not any(s.want_proposals for s in mine):
            t_changes = [c for c in t_changes if "proposal" not in c]
        section.changes = t_changes
        # News, what makes "a cycle that did something": an action, a status, new failures, a new
        # attention item or proposal. Jobs merely moving on (Running to Done) are not news.
        newsworthy = [c for c in t_changes if not c.startswith(("jobs ", "resolved"))]
        section.news = bool(newsworthy or section.actions or before is None or str(tid) not in before)
        only_news = all(s.frequency == Subscription.Frequency.CYCLE for s in mine)
        if t_changes and before is not None:
            label = f"{tid} {state.name}".strip()
            changes += [Line(f"{label}: {c}", section.url, _tone(c)) for c in t_changes]
        if not section.has_content or (only_news and not section.news):
            continue
        sections.append(section)
        counts["reports"] += bool(section.report)
        counts["actions"] += len(section.actions)
        counts["reassigned"] += section.reassigned_total
        counts["attention"] += len(section.attention)
        counts["proposals"] += len(section.proposals)
        counts["transformations"] += 1
        for a in section.actions:
            counts[f"kind:{a.kind}"] += 1
            counts["failed_actions"] += a.state == ActionLog.State.FAILED

    digest.sections = sections[:MAX_SECTIONS]
    digest.more = len(sections) - len(digest.sections)
    digest.changes = changes[:MAX_CHANGES]
    digest.changes_more = len(changes) - len(digest.changes)
    digest.counts = dict(counts)
    digest.links = _links(subs, user)
    digest.summary = _summary(digest, counts, bool(subs) and any(s.want_reports for s in subs))
    return digest


def _tone(change: str) -> str:
    if change.startswith("resolved") or "→ Completed" in change:
        return "good"
    if change.startswith("failed jobs") and "(+" in change:
        return "bad"
    if change.startswith("new attention") or "proposal" in change:
        return "warn"
    return ""


def _summary(digest: Digest, counts: Counter, reports_wanted: bool) -> list[Line]:
    out = []
    n = counts.get("actions", 0)
    if n:
        kinds = ", ".join(
            f"{counts[f'kind:{k}']} {word}{pluralize(counts[f'kind:{k}'])}"
            for k, word in ACTION_COUNTS if counts.get(f"kind:{k}")
        )
        text = f"{n} action{pluralize(n)} taken ({kinds})"
        if counts.get("reassigned"):
            text += f"; {counts['reassigned']} file{pluralize(counts['reassigned'])} set back to Unused"
        if counts.get("failed_actions"):
            text += f"; {counts['failed_actions']} failed"
        out.append(Line(text, site_url(reverse("audit")), "bad" if counts.get("failed_actions") else ""))
    if counts.get("proposals"):
        p = counts["proposals"]
        out.append(Line(f"{p} proposal{pluralize(p)} waiting for an operator",
                        site_url(reverse("proposals")), "warn"))
    if counts.get("attention"):
        a = counts["attention"]
        out.append(Line(f"{a} attention item{pluralize(a)}", site_url(reverse("attention")), "warn"))
    if reports_wanted and counts.get("reports"):
        r = counts["reports"]
        out.append(Line(f"{r} transformation report{pluralize(r)} with failed jobs at or above your threshold"
                        if all(s.min_failed_share > 0 for s in digest.subscriptions if s.want_reports)
                        else f"{r} transformation report{pluralize(r)}", site_url(reverse("overview"))))
    return out


def _links(subs: Sequence[Subscription], user) -> dict:
    token = make_token(subs)
    return {
        "site": settings.SITE_URL,
        "overview": site_url(reverse("overview")),
        "attention": site_url(reverse("attention")),
        "proposals": site_url(reverse("proposals")),
        "audit": site_url(reverse("audit")),
        "manage": site_url(reverse("digests:list")) if user is not None else "",
        "unsubscribe": site_url(reverse("digests:unsubscribe", args=[token])),
    }
