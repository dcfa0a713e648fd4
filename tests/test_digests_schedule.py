"""When a daily or weekly digest is due (reports/digests/schedule.py): pure functions, a table each."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from reports.digests import schedule
from reports.digests.building import changes_between
from reports.digests.models import Subscription

UTC = ZoneInfo("UTC")
PARIS = ZoneInfo("Europe/Paris")


def at(text: str, tz: ZoneInfo = UTC) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=tz)


CREATED = at("2026-01-01 00:00")


@pytest.mark.parametrize(
    "kind, hour, weekday, now, expected",
    [
        ("daily", 7, 0, "2026-11-25 06:59", "daily:2026-11-24T07"),
        ("daily", 7, 0, "2026-11-25 07:00", "daily:2026-11-25T07"),
        ("daily", 7, 0, "2026-11-25 23:59", "daily:2026-11-25T07"),
        ("daily", 0, 0, "2026-11-25 00:00", "daily:2026-11-25T00"),
        ("daily", 23, 0, "2026-01-01 22:00", None),  # before the subscription existed
        # 2026-11-25 is a Wednesday (weekday 2).
        ("weekly", 9, 2, "2026-11-25 09:00", "weekly:2026-11-25T09"),
        ("weekly", 9, 2, "2026-11-25 08:59", "weekly:2026-11-18T09"),
        ("weekly", 9, 0, "2026-11-25 12:00", "weekly:2026-11-23T09"),
        ("weekly", 9, 6, "2026-11-25 12:00", "weekly:2026-11-22T09"),
        ("weekly", 9, 3, "2026-11-25 12:00", "weekly:2026-11-19T09"),
    ],
)
def test_it_finds_the_latest_due_period(kind, hour, weekday, now, expected):
    period = schedule.due_period(kind, hour, weekday, CREATED, at(now), UTC)
    assert (period.key if period else None) == expected


@pytest.mark.parametrize(
    "created, now, expected",
    [
        ("2026-11-24 15:00", "2026-11-25 06:00", None),  # subscribed after yesterday's 08:00
        ("2026-11-24 15:00", "2026-11-25 08:00", "daily:2026-11-25T08"),
        ("2026-11-25 08:00", "2026-11-25 08:00", "daily:2026-11-25T08"),  # at the very moment
        ("2026-11-25 08:00:01", "2026-11-25 09:00", None),
    ],
)
def test_a_moment_before_the_subscription_is_not_due(created, now, expected):
    period = schedule.due_period("daily", 8, 0, at(created), at(now), UTC)
    assert (period.key if period else None) == expected


def test_a_worker_down_for_days_sends_only_the_latest_period():
    period = schedule.due_period("daily", 7, 0, CREATED, at("2026-11-28 10:00"), UTC)
    assert period.key == "daily:2026-11-28T07"
    assert period.start == at("2026-11-27 07:00")


@pytest.mark.parametrize(
    "kind, now, expected",
    [
        ("daily", "2026-11-25 06:00", "daily:2026-11-25T07"),
        ("daily", "2026-11-25 07:00", "daily:2026-11-26T07"),
        ("weekly", "2026-11-25 10:00", "weekly:2026-12-02T09"),
        ("weekly", "2026-11-24 10:00", "weekly:2026-11-25T09"),
    ],
)
def test_the_upcoming_period(kind, now, expected):
    hour = 7 if kind == "daily" else 9
    assert schedule.upcoming_period(kind, hour, 2, at(now), UTC).key == expected


@pytest.mark.parametrize(
    "now, expected_utc",
    [
        ("2026-03-29 12:00", "2026-03-29 06:00"),  # summer time started at 02:00: 08:00 CEST is 06:00 UTC
        ("2026-03-28 12:00", "2026-03-28 07:00"),  # the day before: 08:00 CET is 07:00 UTC
        ("2026-10-25 12:00", "2026-10-25 07:00"),  # back to CET
    ],
)
def test_the_hour_is_wall_clock_time_across_daylight_saving(now, expected_utc):
    moment = schedule.latest_moment("daily", 8, 0, at(now, PARIS), PARIS)
    assert moment.astimezone(UTC) == at(expected_utc)


def test_an_unknown_kind_is_an_error():
    with pytest.raises(ValueError):
        schedule.latest_moment("hourly", 1, 0, at("2026-11-25 10:00"), UTC)


# -- scope and changes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "productions, types, ids, row, expected",
    [
        ([], [], [], (7, "Merging", 4848), True),  # nothing chosen: everything
        ([7], [], [], (7, "Merging", 4848), True),
        ([7], [], [], (8, "Merging", 4900), False),
        ([], ["Merging"], [], (8, "Merging", 4900), True),
        ([7], ["Merging"], [], (7, "DataReprocessing", 4846), False),  # production AND type
        ([7], ["Merging"], [4846], (7, "DataReprocessing", 4846), True),  # listed ids always count
        ([], [], [4846], (7, "Merging", 4848), False),  # only ids: only those
        ([], [], [4846], (7, "Merging", 4846), True),
        ([7], [], [], (None, "MCSimulation", 10), False),
    ],
)
def test_the_scope_of_a_subscription(productions, types, ids, row, expected):
    sub = Subscription(productions=productions, transformation_types=types, transformations=ids)
    assert sub.matches(*row) is expected


BEFORE = {"status": "Active", "total": 2244, "failed": 328, "jobs": "a", "attention": ["at_cap:x"], "proposals": [1]}


@pytest.mark.parametrize(
    "now, expected",
    [
        ({}, []),
        ({"status": "Completed"}, ["status Active → Completed"]),
        ({"failed": 340, "total": 2256}, ["failed jobs 328 → 340 (+12)"]),
        ({"failed": 300}, ["failed jobs 328 → 300 (-28)"]),
        ({"total": 2300, "jobs": "b"}, ["jobs 2244 → 2300"]),
        ({"jobs": "b"}, ["jobs changed status"]),
        ({"attention": []}, ["resolved: Files at their reassign cap"]),
        ({"attention": ["at_cap:x", "flush_limit:Flush limit reached"]}, ["new attention item: Flush limit reached"]),
        ({"proposals": [1, 2, 3]}, ["2 new proposals"]),
        ({"proposals": []}, []),
    ],
)
def test_what_changed_since_the_last_digest(now, expected):
    titles = {"flush_limit:Flush limit reached": "Flush limit reached"}
    assert changes_between(BEFORE, {**BEFORE, **now}, titles) == expected


def test_a_first_digest_has_no_changes():
    assert changes_between(None, BEFORE, {}) == []
