"""Insight from what a cycle already read and the stored history: site hints, forecasts, alerts.

Pure functions on plain values (no Django, no DIRAC): the engine (``failover/engine.py``) calls
them with the jobs it read for the rules and the transformation's recent history samples
(``failover.models.ProgressSample``), and turns what they find into blockers (attention items as
data). Nothing here costs a DIRAC call.

- ``site_hints``: a site whose failure share among the transformation's recent finished jobs is
  far above the other sites', by a one-sided Fisher exact test (``fisher_greater``).
- ``forecast``: when the remaining files (Unused + Assigned) will be Processed, at the rate of the
  recent history, with a low-high range.
- ``alerts``: stalls and problems seen over the history (no file Processed for hours, every recent
  job failed, too many failed, tasks not submitted, still Active long after the parent finished).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from operator import attrgetter

from django.template.defaultfilters import pluralize

from failover import blockers
from failover.blockers import Blocker
from failover.domain import (
    ACTIVE,
    ASSIGNED,
    DONE_TASK_STATUSES,
    FAILED_TASK_STATUSES,
    FINAL_TASK_STATUSES,
    FINAL_TRANSFORMATION_STATUSES,
    PROCESSED,
    UNUSED,
    JobInfo,
)
from failover.outcomes import count
from failover.signatures import signature


@dataclass(frozen=True)
class InsightSettings:
    """The thresholds (environment variables in dashboard/settings.py, defaults in README)."""

    # Site hints: the p-value below which a site is named (divided by the number of sites tested:
    # Bonferroni), the least finished jobs at the site, the least excess of its failure share over
    # the rest's, and how many of the latest finished jobs are looked at.
    site_p: float = 0.001
    site_min_jobs: int = 20
    site_min_excess: float = 0.20
    window_jobs: int = 500
    # Forecasts: the least history samples, and how far back the rate is measured.
    forecast_min_cycles: int = 3
    forecast_window_hours: float = 24.0
    # Alerts.
    stall_hours: float = 6.0
    all_failed_jobs: int = 20
    failed_percent: float = 50.0
    failed_min_jobs: int = 50
    unsubmitted_hours: float = 6.0
    child_late_hours: float = 24.0


# -- the statistical test -----------------------------------------------------------------------


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_greater(a: int, b: int, c: int, d: int) -> float:
    """One-sided Fisher exact test on the 2x2 table [[a, b], [c, d]]: the probability, with the
    margins fixed, of a top-left count of ``a`` or more (the hypergeometric upper tail).

    Here a = failed at the site, b = succeeded at the site, c = failed elsewhere, d = succeeded
    elsewhere: a small value says the site fails more often than chance would make it. Exact
    (summed term by term in log space), in pure Python.
    """
    row1, col1, n = a + b, a + c, a + b + c + d
    if n == 0 or row1 == 0 or col1 == 0:
        return 1.0
    hi = min(row1, col1)
    lo = max(0, row1 + col1 - n)
    if a <= lo:
        return 1.0
    denominator = _log_comb(n, row1)
    total = 0.0
    for x in range(a, hi + 1):
        total += math.exp(_log_comb(col1, x) + _log_comb(n - col1, row1 - x) - denominator)
    return min(1.0, total)


# -- site hints ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteHint:
    site: str
    failed: int
    total: int
    rest_failed: int
    rest_total: int
    p_value: float
    signature: str

    @property
    def share(self) -> float:
        return self.failed / self.total if self.total else 0.0

    @property
    def rest_share(self) -> float:
        return self.rest_failed / self.rest_total if self.rest_total else 0.0

    def as_blocker(self) -> Blocker:
        text = (
            f"site {self.site} failed {self.failed}/{self.total} of the recent jobs ({self.share:.0%}) against "
            f"{self.rest_failed}/{self.rest_total} ({self.rest_share:.0%}) at the other sites; mostly "
            f"\"{self.signature}\". {count(self.failed, 'job')} lost (CPU time: not read). A person may exclude the "
            f"site from the transformation's jobs or tell the site."
        )
        return Blocker(
            blockers.SITE_HINT, text, count=self.failed,
            details={"site": self.site, "failed": self.failed, "total": self.total,
                     "rest_failed": self.rest_failed, "rest_total": self.rest_total,
                     "p_value": float(f"{self.p_value:.3g}"), "signature": self.signature, "cpu_seconds": None,
                     "suggestions": ["exclude the site from the transformation", "tell the site"]},
        )


def recent_final(jobs: Iterable[JobInfo], window: int) -> list[JobInfo]:
    """The latest ``window`` finished jobs (by job id: DIRAC numbers jobs in submission order)."""
    final = [j for j in jobs if j.status in FINAL_TASK_STATUSES]
    final.sort(key=attrgetter("id"))
    return final[-window:] if window else final


@dataclass(frozen=True)
class RecentJobs:
    """A transformation's latest finished jobs as the site hints and the alerts read them: counted,
    with only the very latest listed. ``of`` makes it from the jobs; the engine has the database
    count the same (failover/mirror.py ``recent_jobs``), so no cycle holds the jobs themselves.

    - ``groups``: the latest ``window_jobs`` (all with 0), counted by (site, failed or not,
      MinorStatus, ApplicationStatus);
    - ``total``, ``failed``: how many of the latest max(``window_jobs``, ``all_failed_jobs``) (all
      with ``window_jobs`` 0 and ``all_failed_jobs`` 0) there are, and how many failed;
    - ``last``: the latest ``all_failed_jobs`` of those, in ascending id (all of them with 0).
    """

    groups: tuple[tuple[str, bool, str, str, int], ...] = ()
    total: int = 0
    failed: int = 0
    last: tuple[JobInfo, ...] = ()

    @staticmethod
    def windows(cfg: InsightSettings) -> tuple[int | None, int | None, int | None]:
        """How many of the latest finished jobs ``groups``, ``total`` and ``last`` cover (None: all)."""
        sites = cfg.window_jobs or None
        alerts = max(cfg.all_failed_jobs, cfg.window_jobs) or None
        last = cfg.all_failed_jobs or alerts
        return sites, alerts, last

    @classmethod
    def of(cls, jobs: Iterable[JobInfo], cfg: InsightSettings) -> RecentJobs:
        final = recent_final(jobs, 0)
        w_sites, w_alerts, w_last = cls.windows(cfg)

        def latest(n: int | None) -> list[JobInfo]:
            return final[-n:] if n else final

        groups: Counter = Counter(
            (j.site, j.status in FAILED_TASK_STATUSES, j.minor_status, j.application_status) for j in latest(w_sites))
        recent = latest(w_alerts)
        return cls(
            groups=tuple(sorted((*k, n) for k, n in groups.items())),
            total=len(recent), failed=sum(1 for j in recent if j.status in FAILED_TASK_STATUSES),
            last=tuple(recent[-w_last:] if w_last else recent),
        )

    def site_counts(self) -> dict[str, tuple[int, int]]:
        """The latest ``window_jobs`` finished jobs per site (an empty site is "Unknown"): (failed, total)."""
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for site, failed, _, _, n in self.groups:
            out[site or "Unknown"][1] += n
            if failed:
                out[site or "Unknown"][0] += n
        return {s: (f, t) for s, (f, t) in out.items()}

    def failed_signatures(self, site: str) -> Counter:
        """The signatures of the site's failed jobs among the latest ``window_jobs``."""
        sigs: Counter = Counter()
        for s, failed, minor, application, n in self.groups:
            if failed and (s or "Unknown") == site:
                sigs[signature(minor, application)] += n
        return sigs


def _recent(jobs: Iterable[JobInfo] | RecentJobs, cfg: InsightSettings) -> RecentJobs:
    return jobs if isinstance(jobs, RecentJobs) else RecentJobs.of(jobs, cfg)


def failing_sites(counts: dict[str, tuple[int, int]], cfg: InsightSettings) -> list[tuple[str, float]]:
    """The sites that fail far more than the rest, with their p-values, most significant first.

    A site is named when (1) it has at least ``site_min_jobs`` finished jobs, (2) its failure share
    exceeds the rest's by ``site_min_excess`` or more, and (3) the one-sided Fisher exact test of
    "this site fails more than the others" gives p < ``site_p`` / (number of sites tested).
    """
    tested = {s: ft for s, ft in counts.items() if ft[1] >= cfg.site_min_jobs}
    all_failed = sum(f for f, _ in counts.values())
    all_total = sum(t for _, t in counts.values())
    if len(counts) < 2 or not tested:
        return []
    alpha = cfg.site_p / len(tested)
    out = []
    for site, (f, t) in tested.items():
        rf, rt = all_failed - f, all_total - t
        if rt == 0:
            continue
        if f / t - rf / rt < cfg.site_min_excess:
            continue
        p = fisher_greater(f, t - f, rf, rt - rf)
        if p < alpha:
            out.append((site, p))
    return sorted(out, key=lambda sp: (sp[1], sp[0]))


def site_hints(jobs: Iterable[JobInfo] | RecentJobs, cfg: InsightSettings) -> list[SiteHint]:
    """Site hints over the transformation's latest ``window_jobs`` finished jobs (its jobs, or
    ``RecentJobs`` of them)."""
    recent = _recent(jobs, cfg)
    counts = recent.site_counts()
    hits = failing_sites(counts, cfg)
    out = []
    all_failed = sum(f for f, _ in counts.values())
    all_total = sum(t for _, t in counts.values())
    for site, p in hits:
        f, t = counts[site]
        sigs = recent.failed_signatures(site)
        dominant = sorted(sigs.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] if sigs else ""
        out.append(SiteHint(site, f, t, all_failed - f, all_total - t, p, dominant))
    return out


# -- history ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """A transformation as one cycle saw it (``ProgressSample`` as a plain value)."""

    at: datetime
    status: str
    unused: int
    assigned: int
    processed: int
    jobs_done: int = 0
    jobs_failed: int = 0
    unsubmitted: int = 0
    # The lowest task number without a job, or 0: the same number in two samples is the same task.
    oldest_unsubmitted: int = 0

    @property
    def remaining(self) -> int:
        return self.unused + self.assigned


def sample_of(at: datetime, status: str, files: dict[str, int], jobs: Iterable[JobInfo],
              unsubmitted: Sequence[int]) -> Sample:
    done = failed = 0
    for j in jobs:
        if j.status in DONE_TASK_STATUSES:
            done += 1
        elif j.status in FAILED_TASK_STATUSES:
            failed += 1
    return counted_sample(at, status, files, done, failed, len(unsubmitted), min(unsubmitted) if unsubmitted else 0)


def counted_sample(at: datetime, status: str, files: dict[str, int], jobs_done: int, jobs_failed: int,
                   unsubmitted: int, oldest_unsubmitted: int) -> Sample:
    """``sample_of`` from counts already made (the database's GROUP BY)."""
    return Sample(at, status, files.get(UNUSED, 0), files.get(ASSIGNED, 0), files.get(PROCESSED, 0), jobs_done,
                  jobs_failed, unsubmitted, oldest_unsubmitted)


def last_progress(history: Sequence[Sample]) -> datetime | None:
    """When the Processed count last went up (the sample that first showed it), or None."""
    for prev, cur in zip(reversed(history[:-1]), reversed(history[1:]), strict=False):
        if cur.processed > prev.processed:
            return cur.at
    return None


# -- forecasts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forecast:
    """When the remaining files will be Processed; ``eta`` None when there is no basis (``note``)."""

    eta: datetime | None = None
    low: datetime | None = None
    high: datetime | None = None
    # Files per hour over the window, the remaining files, the jobs still needed, the failure share.
    rate: float | None = None
    remaining: int = 0
    jobs_needed: int | None = None
    failed_share: float | None = None
    note: str = ""
    # "forecast", "done", "no_basis", "after_parent"
    basis: str = "no_basis"
    after_parent: int | None = None

    def as_dict(self) -> dict:
        return {"eta": self.eta, "low": self.low, "high": self.high, "rate_per_hour": self.rate,
                "remaining": self.remaining, "jobs_needed": self.jobs_needed, "failed_share": self.failed_share,
                "basis": self.basis, "note": self.note, "after_parent": self.after_parent}


def _fmt(t: datetime) -> str:
    return f"{t:%Y-%m-%d %H:%M} UTC"


def _no_progress(since: datetime | None, first_seen: datetime) -> str:
    return f"no progress since {_fmt(since)}" if since else f"no progress since {_fmt(first_seen)} (first seen)"


def forecast(history: Sequence[Sample], now: datetime, cfg: InsightSettings) -> Forecast:
    """A transformation's own forecast from its history (oldest first, the last is the current one).

    The rate r is the rise of Processed over the samples of the last ``forecast_window_hours``,
    divided by the time between the first and the last of them; the estimate is
    now + remaining / r. A failed job's files come back Unused and cost another job, so the rate
    of files reaching Processed is already net of failures; the jobs still needed are
    remaining / (files per Done job) / (1 - failure share). The range takes the slowest and the
    fastest rate between two consecutive samples of the window. No file Processed over the window,
    or for ``stall_hours``, is "no progress since ...": no date. The history holds a sample only when
    something changed (``failover/history.py``): the last sample before the window stands for the
    state at its start.
    """
    if not history:
        return Forecast(note="no basis: not seen by a cycle yet")
    cur = history[-1]
    if cur.remaining == 0:
        return Forecast(eta=cur.at, low=cur.at, high=cur.at, remaining=0, basis="done",
                        note="no file left Unused or Assigned")
    since = last_progress(history)
    first_seen = history[0].at
    # Nothing Processed for stall_hours (or ever, over that long): a rate from before would mislead.
    stall = timedelta(hours=cfg.stall_hours)
    if (since is not None and cur.at - since >= stall) or (since is None and cur.at - first_seen >= stall):
        return Forecast(remaining=cur.remaining, note=_no_progress(since, first_seen))
    start = cur.at - timedelta(hours=cfg.forecast_window_hours)
    inside = [s for s in history if s.at >= start]
    before = [s for s in history if s.at < start]
    # A sample is stored only when something changed: the state at the window's start is the last
    # sample before it.
    window = ([replace(before[-1], at=start)] if before else []) + inside
    if len(window) < cfg.forecast_min_cycles:
        return Forecast(remaining=cur.remaining,
                        note=f"no basis: {len(window)} of {cfg.forecast_min_cycles} cycles needed in the last "
                             f"{cfg.forecast_window_hours:g} h")
    first = window[0]
    hours = (cur.at - first.at).total_seconds() / 3600
    gained = cur.processed - first.processed
    if hours <= 0 or gained <= 0:
        return Forecast(remaining=cur.remaining, note=_no_progress(since, first_seen))
    rate = gained / hours
    rates = [
        (b.processed - a.processed) / ((b.at - a.at).total_seconds() / 3600)
        for a, b in zip(window, window[1:], strict=False) if b.at > a.at
    ]
    fastest = max(rates)
    slowest = min(rates)
    eta = now + timedelta(hours=cur.remaining / rate)
    low = now + timedelta(hours=cur.remaining / fastest)
    high = now + timedelta(hours=cur.remaining / slowest) if slowest > 0 else None
    done = cur.jobs_done - first.jobs_done
    failed = cur.jobs_failed - first.jobs_failed
    share = failed / (done + failed) if done + failed else None
    jobs_needed = None
    if done > 0:
        per_job = gained / done
        jobs_needed = math.ceil(cur.remaining / per_job / (1 - share)) if share is not None and share < 1 else None
    return Forecast(eta=eta, low=low, high=high, rate=round(rate, 3), remaining=cur.remaining,
                    jobs_needed=jobs_needed, failed_share=round(share, 3) if share is not None else None,
                    basis="forecast", note="" if high else "the slowest recent interval processed nothing: no upper "
                    "bound")


def after_parent(own: Forecast, parent_id: int, parent: Forecast | None, parent_final: bool) -> Forecast:
    """A child waiting for its parent finishes after it: never before the parent's estimate."""
    if parent_final or own.basis == "done" or parent is None:
        return own
    if parent.eta is None:
        if own.eta is None:
            return own
        return Forecast(remaining=own.remaining, note=f"after parent {parent_id}, which has no forecast",
                        after_parent=parent_id)

    def later(a: datetime | None, b: datetime | None) -> datetime | None:
        return max(a, b) if a and b else None

    if own.eta is None:
        return Forecast(eta=parent.eta, low=parent.low, high=None, remaining=own.remaining, basis="after_parent",
                        note=f"after parent {parent_id} ({own.note})", after_parent=parent_id)
    if own.eta >= parent.eta:
        return own
    return Forecast(eta=parent.eta, low=later(own.low, parent.low), high=later(own.high, parent.high),
                    rate=own.rate, remaining=own.remaining, jobs_needed=own.jobs_needed,
                    failed_share=own.failed_share, basis="after_parent", note=f"after parent {parent_id}",
                    after_parent=parent_id)


# -- alerts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What the alerts read besides the history: the transformation and its parent now."""

    status: str
    # The transformation's jobs, or ``RecentJobs`` of them.
    jobs: Sequence[JobInfo] | RecentJobs = field(default_factory=tuple)
    parent_id: int | None = None
    parent_status: str | None = None
    # When the parent's history first shows it final (its latest run of final samples), if known.
    parent_final_since: datetime | None = None


def _hours(h: float) -> str:
    return f"{h:g} h"


def alerts(history: Sequence[Sample], ctx: Context, now: datetime, cfg: InsightSettings) -> list[Blocker]:
    """The typed problem alerts of one transformation, each with ``since`` (when its condition began)."""
    out: list[Blocker] = []
    if not history or ctx.status != ACTIVE:
        return out
    cur = history[-1]
    # 1. No file Processed for stall_hours while files remain.
    if cur.remaining:
        since = last_progress(history) or history[0].at
        if now - since >= timedelta(hours=cfg.stall_hours):
            out.append(Blocker(
                blockers.STALLED, f"no file Processed since {_fmt(since)} while {count(cur.remaining, 'file')} "
                f"{pluralize(cur.remaining, 'is,are')} Unused or "
                f"Assigned (more than {_hours(cfg.stall_hours)})", count=cur.remaining, since=since,
            ))
    # 2 and 3. The latest finished jobs.
    recent = _recent(ctx.jobs, cfg)
    last_n = recent.last
    if len(last_n) >= cfg.all_failed_jobs and all(j.status in FAILED_TASK_STATUSES for j in last_n):
        sigs = Counter(signature(j.minor_status, j.application_status) for j in last_n)
        top, n_top = sorted(sigs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        sites = sorted({j.site or "Unknown" for j in last_n})
        likely = "likely a configuration error: " if n_top == len(last_n) and len(sites) > 1 else ""
        out.append(Blocker(
            blockers.ALL_FAILED, f"the last {len(last_n)} jobs all failed, at {count(len(sites), 'site')}; "
            f"{likely}{n_top} of them \"{top}\"", count=len(last_n),
            details={"signature": top, "same_signature": n_top, "sites": sites},
        ))
    elif recent.total >= cfg.failed_min_jobs:
        failed = recent.failed
        share = 100 * failed / recent.total
        if share > cfg.failed_percent:
            out.append(Blocker(
                blockers.MANY_FAILED, f"{failed} of the last {recent.total} finished jobs failed ({share:.0f}%, more "
                f"than {cfg.failed_percent:g}%): likely a site or data problem", count=failed,
                limit=round(cfg.failed_percent), details={"failed": failed, "total": recent.total},
            ))
    # 4. Tasks created but not submitted for unsubmitted_hours: the same oldest task still waits.
    if cur.oldest_unsubmitted:
        since = cur.at
        for s in reversed(history):
            if s.oldest_unsubmitted != cur.oldest_unsubmitted:
                break
            since = s.at
        if now - since >= timedelta(hours=cfg.unsubmitted_hours):
            out.append(Blocker(
                blockers.NOT_SUBMITTED, f"{count(cur.unsubmitted, 'task')} created but not submitted, the oldest (task "
                f"{cur.oldest_unsubmitted}) since {_fmt(since)}", count=cur.unsubmitted, since=since,
            ))
    # 5. Still Active long after the parent finished.
    if ctx.parent_id and ctx.parent_status in FINAL_TRANSFORMATION_STATUSES and ctx.parent_final_since:
        if now - ctx.parent_final_since >= timedelta(hours=cfg.child_late_hours):
            late = round((now - ctx.parent_final_since).total_seconds() / 3600, 1)
            out.append(Blocker(
                blockers.CHILD_LATE, f"still Active {_hours(late)}"
                f" after its parent {ctx.parent_id} became {ctx.parent_status} ({_fmt(ctx.parent_final_since)})",
                related=ctx.parent_id, since=ctx.parent_final_since,
            ))
    return out


def final_since(history: Sequence[Sample]) -> datetime | None:
    """When a transformation's history first shows it in its current final status (None if not final)."""
    if not history or history[-1].status not in FINAL_TRANSFORMATION_STATUSES:
        return None
    since = history[-1].at
    for s in reversed(history):
        if s.status not in FINAL_TRANSFORMATION_STATUSES:
            break
        since = s.at
    return since
