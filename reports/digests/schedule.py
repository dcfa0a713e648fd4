"""When a daily or weekly digest is due. Pure functions of times (no ORM), table-tested.

A period is named by its scheduled moment in the project's TIME_ZONE: ``daily:2026-11-25T07``,
``weekly:2026-11-23T07``. Only the latest moment counts: a worker that was down for three days sends
one digest when it comes back, not three.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

DAILY = "daily"
WEEKLY = "weekly"


@dataclass(frozen=True)
class Period:
    key: str
    kind: str
    moment: datetime  # the scheduled moment (aware)
    length: timedelta

    @property
    def start(self) -> datetime:
        """Where the window starts when there is no earlier digest of this kind."""
        return self.moment - self.length


def _at(day: datetime, hour: int) -> datetime:
    return day.replace(hour=hour, minute=0, second=0, microsecond=0)


def latest_moment(kind: str, hour: int, weekday: int, now: datetime, tz: ZoneInfo) -> datetime:
    """The latest scheduled moment at or before ``now``."""
    local = now.astimezone(tz)
    moment = _at(local, hour)
    if kind == DAILY:
        if moment > local:
            moment -= timedelta(days=1)
    elif kind == WEEKLY:
        moment -= timedelta(days=(local.weekday() - weekday) % 7)
        if moment > local:
            moment -= timedelta(days=7)
    else:
        raise ValueError(f"not a scheduled kind: {kind}")
    # Arithmetic on an aware datetime is wall-clock time: across a DST change the hour stays put.
    return moment


def next_moment(kind: str, hour: int, weekday: int, now: datetime, tz: ZoneInfo) -> datetime:
    return latest_moment(kind, hour, weekday, now, tz) + timedelta(days=1 if kind == DAILY else 7)


def period_at(kind: str, moment: datetime) -> Period:
    length = timedelta(days=1 if kind == DAILY else 7)
    return Period(f"{kind}:{moment:%Y-%m-%dT%H}", kind, moment, length)


def due_period(kind: str, hour: int, weekday: int, created: datetime, now: datetime, tz: ZoneInfo) -> Period | None:
    """The period a daily or weekly subscription is due for at ``now``, or None.

    A moment before the subscription existed is not due: subscribing at 15:00 for 08:00 does not
    send at once.
    """
    moment = latest_moment(kind, hour, weekday, now, tz)
    return period_at(kind, moment) if moment >= created else None


def upcoming_period(kind: str, hour: int, weekday: int, now: datetime, tz: ZoneInfo) -> Period:
    """The next period: what ``digest send --now`` sends early, so the scheduled run finds it sent."""
    return period_at(kind, next_moment(kind, hour, weekday, now, tz))
