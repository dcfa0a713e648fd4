"""The stored history and what the engine makes of it at settle time (the Django side of insight).

Per transformation and cycle the engine calls ``observe``: it reads the transformation's latest
``ProgressSample`` rows (one query; one more for a child whose parent is final, or whose parent was
not forecast in this process and cycle), and returns the insight blockers (site hints, alerts), the
forecast's fields for the transformation's row, and the new sample, which ``save`` writes in the
transaction that releases the lock (only when something in it changed). The computations are the
pure functions of ``failover/insight.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from failover import insight
from failover.blockers import Blocker
from failover.domain import (
    FINAL_TRANSFORMATION_STATUSES,
    NO_JOB,
    ROOT,
    FileCounts,
    JobInfo,
    TaskInfo,
    TransformationInfo,
)
from failover.models import ProgressSample, TransformationState


@dataclass(frozen=True)
class JobsCounted:
    """A transformation's jobs and unsubmitted tasks as the database counts them, for ``observe``."""

    done: int = 0
    failed: int = 0
    unsubmitted: int = 0
    oldest_unsubmitted: int = 0


def insight_settings() -> insight.InsightSettings:
    return insight.InsightSettings(
        site_p=settings.FAILOVER_SITE_HINT_P,
        site_min_jobs=settings.FAILOVER_SITE_HINT_MIN_JOBS,
        site_min_excess=settings.FAILOVER_SITE_HINT_MIN_EXCESS,
        window_jobs=settings.FAILOVER_INSIGHT_WINDOW_JOBS,
        forecast_min_cycles=settings.FAILOVER_FORECAST_MIN_CYCLES,
        forecast_window_hours=settings.FAILOVER_FORECAST_WINDOW_HOURS,
        stall_hours=settings.FAILOVER_STALL_HOURS,
        all_failed_jobs=settings.FAILOVER_ALL_FAILED_JOBS,
        failed_percent=settings.FAILOVER_FAILED_PERCENT,
        failed_min_jobs=settings.FAILOVER_FAILED_MIN_JOBS,
        unsubmitted_hours=settings.FAILOVER_UNSUBMITTED_HOURS,
        child_late_hours=settings.FAILOVER_CHILD_LATE_HOURS,
    )


# How many of a transformation's latest samples the engine reads back: a sample is written only
# when something in it changed (``observe``), so these reach back over every window the alerts and
# the forecast need unless the transformation moved more than this many times in them.
HISTORY_READ = 200


def as_sample(row: ProgressSample) -> insight.Sample:
    return insight.Sample(row.at, row.status, row.unused, row.assigned, row.processed, row.jobs_done,
                          row.jobs_failed, row.unsubmitted, row.oldest_unsubmitted)


# Samples read ahead for a batch (``prefetch``), taken once by ``samples``.
_ahead: dict[int, list[insight.Sample]] = {}


def prefetch(ids: Sequence[int], limit: int = HISTORY_READ) -> None:
    """Read the latest samples of a batch of transformations in one query (a window function)."""
    _ahead.clear()
    if len(ids) < 2:
        return
    rank = Window(RowNumber(), partition_by=[F("transformation_id")], order_by=[F("at").desc(), F("id").desc()])
    rows = (ProgressSample.objects.filter(transformation_id__in=list(ids)).annotate(rank=rank)
            .filter(rank__lte=limit).order_by("transformation_id", "at", "id"))
    out: dict[int, list[insight.Sample]] = {tid: [] for tid in ids}
    for r in rows:
        out[r.transformation_id].append(as_sample(r))
    _ahead.update(out)


def samples(transformation_id: int, limit: int | None = HISTORY_READ) -> list[insight.Sample]:
    """A transformation's latest samples (``limit`` of them), oldest first."""
    ahead = _ahead.pop(transformation_id, None)
    if ahead is not None:
        return ahead
    qs = ProgressSample.objects.filter(transformation_id=transformation_id).order_by("-at", "-id")
    rows = list(qs[:limit] if limit else qs)
    return [as_sample(r) for r in reversed(rows)]


def _same(a: insight.Sample, b: insight.Sample) -> bool:
    return (a.status, a.unused, a.assigned, a.processed, a.jobs_done, a.jobs_failed, a.unsubmitted,
            a.oldest_unsubmitted) == (b.status, b.unused, b.assigned, b.processed, b.jobs_done, b.jobs_failed,
                                      b.unsubmitted, b.oldest_unsubmitted)


# The forecasts made in this process, by transformation: a child treated after its parent in the
# same cycle and process reads its parent's from here instead of the database.
_made: dict[int, tuple[int | None, insight.Forecast]] = {}


def parent_final_since(parent_id: int) -> datetime | None:
    """When the parent's history first shows it in the final status it is in now (its latest run)."""
    rows = ProgressSample.objects.filter(transformation_id=parent_id)
    last_open = rows.exclude(status__in=FINAL_TRANSFORMATION_STATUSES).order_by("-at", "-id").values_list(
        "at", flat=True).first()
    after = rows.filter(status__in=FINAL_TRANSFORMATION_STATUSES)
    if last_open is not None:
        after = after.filter(at__gt=last_open)
    return after.order_by("at", "id").values_list("at", flat=True).first()


def stored_forecast(state: TransformationState | None) -> insight.Forecast | None:
    """The forecast a transformation's row holds (as the engine wrote it), or None if never made."""
    if state is None or not state.eta_basis and not state.eta_note:
        return None
    return insight.Forecast(eta=state.eta, low=state.eta_low, high=state.eta_high, basis=state.eta_basis or "no_basis",
                            note=state.eta_note)


def forecast_fields(f: insight.Forecast) -> dict:
    return {"eta": f.eta, "eta_low": f.low, "eta_high": f.high, "eta_basis": f.basis, "eta_note": f.note[:255]}


@dataclass
class Observation:
    blockers: list[Blocker] = field(default_factory=list)
    fields: dict = field(default_factory=dict)
    sample: ProgressSample | None = None
    forecast: insight.Forecast | None = None


def observe(t: TransformationInfo, counts: FileCounts, jobs: Iterable[JobInfo] | insight.RecentJobs,
            tasks: Sequence[TaskInfo], parent: TransformationInfo | None, cycle_id: int | None,
            now: datetime | None = None, cfg: insight.InsightSettings | None = None, *,
            counted: JobsCounted | None = None) -> Observation:
    """Site hints, alerts and the forecast of one treated transformation, and its new sample.

    ``jobs`` and ``tasks``: all of the transformation's; or, with ``counted`` (the database's
    counts), ``jobs`` the ``insight.RecentJobs`` of them and ``tasks`` unused."""
    cfg = cfg or insight_settings()
    now = now or timezone.now()
    if counted is not None:
        new = insight.counted_sample(now, t.status, counts.by_status, counted.done, counted.failed,
                                     counted.unsubmitted, counted.oldest_unsubmitted)
    else:
        jobs = list(jobs)
        unsubmitted = [task.task for task in tasks if task.job == NO_JOB]
        new = insight.sample_of(now, t.status, counts.by_status, jobs, unsubmitted)
    # What the site hints and the alerts read of the jobs, made once for both.
    jobs = jobs if isinstance(jobs, insight.RecentJobs) else insight.RecentJobs.of(jobs, cfg)
    stored = samples(t.id)
    history = [*stored, new]
    found: list[Blocker] = []
    if t.status == "Active":
        found.extend(h.as_blocker() for h in insight.site_hints(jobs, cfg))
    parent_id = parent.id if parent is not None else None
    parent_status = parent.status if parent is not None else None
    final_since = parent_final_since(parent_id) if parent_status in FINAL_TRANSFORMATION_STATUSES else None
    found.extend(insight.alerts(history, insight.Context(t.status, jobs, parent_id, parent_status, final_since),
                                now, cfg))
    own = insight.forecast(history, now, cfg)
    if t.status in FINAL_TRANSFORMATION_STATUSES:
        own = insight.Forecast(eta=now, low=now, high=now, remaining=new.remaining, basis="done", note=t.status)
    if parent_id is not None and parent_id != ROOT and parent_status not in FINAL_TRANSFORMATION_STATUSES:
        made = _made.get(parent_id)
        if made is not None and cycle_id is not None and made[0] == cycle_id:
            parent_forecast = made[1]
        else:
            parent_forecast = stored_forecast(TransformationState.objects.filter(transformation_id=parent_id).only(
                "eta", "eta_low", "eta_high", "eta_basis", "eta_note").first())
        own = insight.after_parent(own, parent_id, parent_forecast, False)
    if len(_made) > 100_000:
        _made.clear()
    _made[t.id] = (cycle_id, own)
    # Nothing changed since the last sample: none is written (the history keeps the first of a
    # run of equal samples, which is when that state began).
    sample = None if stored and _same(stored[-1], new) else ProgressSample(
        transformation_id=t.id, cycle_id=cycle_id, at=new.at, status=new.status, unused=new.unused,
        assigned=new.assigned, processed=new.processed, jobs_done=new.jobs_done, jobs_failed=new.jobs_failed,
        unsubmitted=new.unsubmitted, oldest_unsubmitted=new.oldest_unsubmitted,
    )
    return Observation(found, forecast_fields(own), sample, own)


def save(observation: Observation) -> None:
    """Write the sample (call in the transaction that releases the transformation's lock)."""
    if observation.sample is not None:
        observation.sample.save()


# -- reading for the pages -----------------------------------------------------------------------


def forecast_of(state: TransformationState) -> insight.Forecast:
    """A transformation's forecast as its row holds it (never computed on a page)."""
    return stored_forecast(state) or insight.Forecast(note="no basis: not forecast by a cycle yet")


def production_forecast(steps: Sequence[TransformationState]) -> tuple[insight.Forecast, int | None]:
    """A production's forecast is its last step's: the step no other step of it has as parent (the
    latest estimate among them when several). Returns (forecast, the step's id)."""
    if not steps:
        return insight.Forecast(note="no basis: no step seen"), None
    parents = {s.parent_id for s in steps}
    last = [s for s in steps if s.transformation_id not in parents] or list(steps)
    # A last step without an estimate makes the production's unknown too.
    undecided = sorted((s for s in last if s.eta is None), key=lambda s: s.transformation_id)
    chosen = undecided[0] if undecided else max(last, key=lambda s: (s.eta, s.transformation_id))
    return forecast_of(chosen), chosen.transformation_id
