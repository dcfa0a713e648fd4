"""Shared pieces of the digest tests (no tests here): a real SMTP server (aiosmtpd) and the seed's 4848 data."""

from __future__ import annotations

import email
import email.policy
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from aiosmtpd.controller import Controller
from django.contrib.auth.models import Group
from django.utils import timezone

from failover.models import ActionLog, Cycle, TransformationState
from reports.aggregation import aggregate_jobs
from reports.stores import SnapshotMeta, SqlAggregateStore
from tests.test_report import seed_jobs

SITE = "https://failover.example.org"
MOVED = ["/ctao/prod5b/4848/merged_0017.DL2.h5", "/ctao/prod5b/4848/merged_0018.DL2.h5"]


class Inbox:
    """An aiosmtpd handler: refuses DATA with the given replies, in order, then accepts."""

    def __init__(self, refusals: list[str] | None = None):
        self.refusals = list(refusals or [])
        self.envelopes = []
        self.attempts = 0

    async def handle_DATA(self, server, session, envelope):
        self.attempts += 1
        if self.refusals:
            return self.refusals.pop(0)
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(e.original_content or e.content, policy=email.policy.default)
                for e in self.envelopes]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SmtpServer:
    inbox: Inbox
    port: int
    controller: Controller = field(repr=False)

    def refuse(self, *replies: str) -> None:
        self.inbox.refusals.extend(replies)


@pytest.fixture
def smtp(settings):
    """A real SMTP server on 127.0.0.1 and a free port, and the settings that point at it."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "failover@example.org"
    settings.SITE_URL = SITE
    try:
        yield SmtpServer(inbox, port, controller)
    finally:
        controller.stop()


@pytest.fixture
def eager():
    """Celery tasks run in this process (retries included, without their countdown)."""
    from dashboard.celery import app

    app.conf.task_always_eager = True
    try:
        yield app
    finally:
        app.conf.task_always_eager = False


def make_user(django_user_model, name: str, email: str = "", role: str | None = "viewer"):
    user = django_user_model.objects.create_user(username=name, password=None, email=email)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@dataclass
class Seeded:
    cycle: Cycle
    reassign: ActionLog
    flush: ActionLog


def seed_4848(now=None, *, cycle_minutes_ago: int = 2, failed_extra: int = 0, write_store: bool = True) -> Seeded:
    """Production 7 after a cycle: 4848 with the seed's 2244 jobs stored as aggregates, a reassign on
    4848 and a flush on 4847 during that cycle."""
    now = now or timezone.now()
    started = now - timedelta(minutes=cycle_minutes_ago)
    cycle = Cycle.objects.create(started=started, finished=started + timedelta(seconds=50), state="finished",
                                 trigger="beat", transformations=2)
    if write_store:
        SqlAggregateStore().write(cycle.pk, started + timedelta(seconds=30), SnapshotMeta(4848, 7, "Merging"),
                                  aggregate_jobs(seed_jobs()))
    done, failed = 1916, 328 + failed_extra
    TransformationState.objects.update_or_create(transformation_id=4848, defaults=dict(
        name="step3", type="Merging", status="Active", group_size=10000, production_id=7, parent_id=4847,
        files={"Processed": 40, "Assigned": 2, "Unused": 3}, files_total=45, files_processed=40,
        jobs={"Done": done, "Failed": failed}, jobs_total=done + failed, jobs_failed=failed,
        failed_share=round(100 * failed / (done + failed), 1), last_cycle=cycle, last_seen=now,
    ))
    TransformationState.objects.update_or_create(transformation_id=4847, defaults=dict(
        name="step2", type="Merging", status="Flush", group_size=50, production_id=7, parent_id=4846,
        files={"Processed": 50, "Unused": 1}, files_total=51, files_processed=50,
        jobs={"Done": 10}, jobs_total=10, jobs_failed=0, failed_share=0.0, last_cycle=cycle, last_seen=now,
    ))
    reassign = ActionLog.objects.create(
        created=started + timedelta(seconds=10), finished=started + timedelta(seconds=11), cycle=cycle,
        transformation_id=4848, kind="reassign", state="done", reason="2 Assigned files of a Failed task",
        details={"kind": "reassign", "transformation": 4848, "tasks": {"17": MOVED}, "moved": MOVED},
        outcome="2 files set Unused",
    )
    flush = ActionLog.objects.create(
        created=started + timedelta(seconds=20), finished=started + timedelta(seconds=21), cycle=cycle,
        transformation_id=4847, kind="flush", state="done", reason="1 Unused file, fewer than the group size 50",
        details={"kind": "flush", "transformation": 4847, "status": "Flush", "expected": "Active"},
        outcome="status Active -> Flush",
    )
    return Seeded(cycle, reassign, flush)


class Tables(HTMLParser):
    """Every <table> of an HTML document: rows of (text, style) cells."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[tuple[str, str]]]] = []
        self._stack: list[list] = []
        self._cell: list[str] | None = None
        self._style = ""
        self.links: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "table":
            self._stack.append([])
        elif tag == "tr" and self._stack:
            self._stack[-1].append([])
        elif tag in ("td", "th") and self._stack:
            self._cell, self._style = [], attrs.get("style", "")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._stack and self._stack[-1]:
            self._stack[-1][-1].append((" ".join("".join(self._cell).split()), self._style))
            self._cell = None
        elif tag == "table" and self._stack:
            self.tables.append(self._stack.pop())

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse_html(html: str) -> Tables:
    parser = Tables()
    parser.feed(html)
    return parser


def report_table(html: str) -> list[list[tuple[str, str]]]:
    for table in parse_html(html).tables:
        if table and [c[0] for c in table[0]] == ["Status", "MinorStatus", "ApplicationStatus", "Site", "Total"]:
            return table
    raise AssertionError("no report table in the HTML part")
