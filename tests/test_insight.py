"""Insight's pure parts: the Fisher test, the site test (clear, borderline, too few jobs), each
alert's start and end, and forecasts on histories built for the purpose (frozen time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from math import comb

import pytest

from failover import blockers
from failover.domain import JobInfo
from failover.insight import (
    Context,
    Forecast,
    InsightSettings,
    RecentJobs,
    Sample,
    after_parent,
    alerts,
    failing_sites as sites_failing,
    final_since,
    fisher_greater,
    forecast,
    site_hints,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CFG = InsightSettings()


def exact_upper_tail(a, b, c, d) -> Fraction:
    """The hypergeometric upper tail in exact fractions: an independent oracle for the test."""
    r1, c1, n = a + b, a + c, a + b + c + d
    return sum((Fraction(comb(c1, x) * comb(n - c1, r1 - x), comb(n, r1)) for x in range(a, min(r1, c1) + 1)),
               Fraction(0))


@pytest.mark.parametrize("table", [(3, 1, 1, 3), (8, 2, 1, 5), (60, 40, 5, 95), (0, 10, 3, 7), (5, 0, 0, 5),
                                   (12, 8, 30, 150), (1, 0, 0, 0)])
def test_fisher_one_sided_matches_the_exact_hypergeometric_tail(table):
    assert fisher_greater(*table) == pytest.approx(float(exact_upper_tail(*table)), rel=1e-9)


def test_fisher_tea_tasting_is_17_over_70():
    assert fisher_greater(3, 1, 1, 3) == pytest.approx(17 / 70, rel=1e-12)


def jobs_at(site: str, failed: int, done: int, start: int, minor="Application Finished With Errors",
            app="Operation not permitted ( 1 : cta-prod-setup-software Exited With Status 1)") -> list[JobInfo]:
    out = [JobInfo(start + i, "Failed", minor, app, site) for i in range(failed)]
    out += [JobInfo(start + failed + i, "Done", "Execution Complete", "Workflow successful", site) for i in range(done)]
    return out


# (site counts {site: (failed, total)}, named sites): clear cases, borderline cases, too few jobs.
SITE_CASES = [
    pytest.param({"BAD": (60, 100), "A": (5, 100), "B": (5, 100)}, ["BAD"], id="clear-60-vs-5"),
    pytest.param({"BAD": (20, 20), "A": (1, 100)}, ["BAD"], id="clear-all-failed-at-20-jobs"),
    pytest.param({"A": (5, 100), "B": (6, 100), "C": (4, 100)}, [], id="clear-none-all-alike"),
    pytest.param({"BAD": (19, 19), "A": (0, 200)}, [], id="too-few-jobs-19-of-20"),
    pytest.param({"BAD": (3, 3), "A": (0, 1000)}, [], id="too-few-jobs-3"),
    pytest.param({"BAD": (24, 100), "A": (5, 100), "B": (5, 100)}, [], id="borderline-excess-below-0.2"),
    pytest.param({"BAD": (25, 100), "A": (5, 100), "B": (5, 100)}, ["BAD"], id="borderline-excess-0.2-significant"),
    # Large excess on few jobs against a noisy rest: not significant at 0.001 / 2.
    pytest.param({"BAD": (10, 20), "A": (5, 20)}, [], id="borderline-not-significant"),
    pytest.param({"BAD": (60, 100)}, [], id="one-site-nothing-to-compare"),
]


@pytest.mark.parametrize(("counts", "named"), SITE_CASES)
def test_the_site_test(counts, named):
    assert [s for s, _ in sites_failing(counts, CFG)] == named


def test_the_threshold_and_the_minimum_are_settings():
    counts = {"BAD": (10, 20), "A": (5, 20)}
    assert [s for s, _ in sites_failing(counts, InsightSettings(site_p=0.5))] == ["BAD"]
    assert sites_failing({"BAD": (19, 19), "A": (0, 200)}, InsightSettings(site_min_jobs=10))[0][0] == "BAD"


def test_a_site_hint_says_which_site_its_numbers_its_dominant_signature_and_what_a_person_can_do():
    jobs = jobs_at("LCG.BAD.xx", 60, 40, 1) + jobs_at("LCG.GRIF.fr", 5, 95, 1000) + jobs_at("LCG.CNAF.it", 5, 95, 2000)
    (hint,) = site_hints(jobs, CFG)
    assert (hint.site, hint.failed, hint.total, hint.rest_failed, hint.rest_total) == ("LCG.BAD.xx", 60, 100, 10, 200)
    assert hint.signature == ("Application Finished With Errors | "
                              "Operation not permitted ( N : cta-prod-setup-software Exited With Status N)")
    b = hint.as_blocker()
    assert b.code == blockers.SITE_HINT and b.count == 60 and b.fix is None
    assert b.details["site"] == "LCG.BAD.xx" and b.details["cpu_seconds"] is None
    assert "exclude the site" in b.text and "tell the site" in b.text


def test_site_hints_look_at_the_latest_jobs_only():
    old = jobs_at("LCG.BAD.xx", 60, 0, 1) + jobs_at("LCG.GRIF.fr", 3, 57, 100)
    new = jobs_at("LCG.BAD.xx", 0, 60, 1000) + jobs_at("LCG.GRIF.fr", 3, 57, 2000)
    assert site_hints(old + new, InsightSettings(window_jobs=120)) == []
    assert [h.site for h in site_hints(old + new, InsightSettings(window_jobs=1000))] == ["LCG.BAD.xx"]
    assert RecentJobs.of(old, CFG).site_counts() == {"LCG.BAD.xx": (60, 60), "LCG.GRIF.fr": (3, 60)}


# -- alerts: each one's start and end -----------------------------------------------------------


def hist(*points, status="Active", start=T0, step_hours=1.0) -> list[Sample]:
    """Samples an hour apart: each point (unused, assigned, processed[, oldest_unsubmitted])."""
    out = []
    for i, p in enumerate(points):
        u, a, pr, *rest = p
        oldest = rest[0] if rest else 0
        out.append(Sample(start + timedelta(hours=i * step_hours), status, u, a, pr,
                          unsubmitted=1 if oldest else 0, oldest_unsubmitted=oldest))
    return out


def codes(found) -> list[str]:
    return [b.code for b in found]


def test_stalled_starts_after_n_hours_without_a_processed_file_and_ends_when_one_is():
    cfg = InsightSettings(stall_hours=6)
    h = hist((10, 5, 5), (10, 5, 10), *[(10, 5, 10)] * 6)   # last progress at T0+1h
    now = h[-1].at                                           # T0+7h: 6 h without progress
    (b,) = alerts(h, Context("Active"), now, cfg)
    assert b.code == blockers.STALLED and b.since == T0 + timedelta(hours=1) and b.count == 15
    assert alerts(h[:-1], Context("Active"), h[-2].at, cfg) == []           # 5 h: not yet
    moved = [*h, Sample(now + timedelta(hours=1), "Active", 9, 5, 11)]
    assert alerts(moved, Context("Active"), moved[-1].at, cfg) == []         # a file Processed: cleared
    done = [*h[:-1], Sample(now, "Active", 0, 0, 25)]
    assert alerts(done, Context("Active"), now, cfg) == []                   # nothing left: cleared


def failing(n, sites=("A", "B"), start=1, app="Exited With Status 1"):
    return [JobInfo(start + i, "Failed", "Application Finished With Errors", app, sites[i % len(sites)])
            for i in range(n)]


def test_all_failed_starts_when_the_last_n_jobs_failed_and_ends_with_one_success():
    cfg = InsightSettings(all_failed_jobs=20)
    h = hist((10, 5, 5))
    jobs = [JobInfo(1, "Done", "Execution Complete", "ok", "A"), *failing(20, start=2)]
    (b,) = alerts(h, Context("Active", jobs), h[-1].at, cfg)
    assert b.code == blockers.ALL_FAILED and b.count == 20
    assert "likely a configuration error" in b.text and b.details["sites"] == ["A", "B"]
    assert b.details["signature"] == "Application Finished With Errors | Exited With Status N"
    assert alerts(h, Context("Active", failing(19, start=2)), h[-1].at, cfg) == []       # too few yet
    recovered = [*jobs, JobInfo(100, "Done", "Execution Complete", "ok", "A")]
    assert alerts(h, Context("Active", recovered), h[-1].at, cfg) == []


def test_many_failed_starts_above_p_percent_and_ends_below():
    cfg = InsightSettings(failed_percent=50, failed_min_jobs=50, all_failed_jobs=20)
    h = hist((10, 5, 5))
    done = [JobInfo(1000 + i, "Done", "Execution Complete", "ok", "A") for i in range(24)]
    jobs = failing(26) + done                       # 26 of 50 failed: 52 %
    (b,) = alerts(h, Context("Active", jobs), h[-1].at, cfg)
    assert b.code == blockers.MANY_FAILED and b.count == 26 and b.details == {"failed": 26, "total": 50}
    jobs = failing(25) + done + [JobInfo(2000, "Done", "Execution Complete", "ok", "A")]   # 25 of 50
    assert alerts(h, Context("Active", jobs), h[-1].at, cfg) == []
    assert alerts(h, Context("Active", failing(26) + done[:20]), h[-1].at, cfg) == []     # 46 jobs: too few


def test_not_submitted_starts_when_the_same_task_waited_n_hours_and_ends_when_it_is_submitted():
    cfg = InsightSettings(unsubmitted_hours=6, stall_hours=1000)
    h = hist((10, 0, 0, 0), *[(10, 0, 0, 7)] * 7)      # task 7 without a job from T0+1h
    (b,) = alerts(h, Context("Active"), h[-1].at, cfg)
    assert b.code == blockers.NOT_SUBMITTED and b.since == T0 + timedelta(hours=1) and "task 7" in b.text
    assert alerts(h[:-1], Context("Active"), h[-2].at, cfg) == []                           # 5 h
    nxt = [*h, Sample(h[-1].at + timedelta(hours=1), "Active", 10, 0, 0, unsubmitted=1, oldest_unsubmitted=8)]
    assert alerts(nxt, Context("Active"), nxt[-1].at, cfg) == []                            # 7 submitted


def test_child_late_starts_n_hours_after_the_parent_finished_and_ends_when_the_child_is_not_active():
    cfg = InsightSettings(child_late_hours=24, stall_hours=1000)
    parent = hist(*[(0, 0, 10)] * 3, status="Active") + hist(*[(0, 0, 10)] * 30, status="Completed",
                                                               start=T0 + timedelta(hours=3))
    since = final_since(parent)
    assert since == T0 + timedelta(hours=3)
    h = hist((5, 0, 0))
    ctx = Context("Active", (), 4846, "Completed", since)
    (b,) = alerts(h, ctx, since + timedelta(hours=24), cfg)
    assert b.code == blockers.CHILD_LATE and b.related == 4846 and b.since == since
    assert alerts(h, ctx, since + timedelta(hours=23), cfg) == []
    assert alerts(h, Context("Completed", (), 4846, "Completed", since), since + timedelta(hours=30), cfg) == []
    assert final_since(parent[:3]) is None


# -- forecasts ----------------------------------------------------------------------------------


def test_a_constant_rate_gives_the_exact_date():
    # 10 files an hour; 100 left at T0+4h: done at T0+14h, and the range is that date too.
    h = [Sample(T0 + timedelta(hours=i), "Active", 100 - 10 * i + 40, 0, 10 * i, jobs_done=10 * i)
         for i in range(5)]
    f = forecast(h, h[-1].at, CFG)
    assert f.basis == "forecast" and f.rate == 10.0 and f.remaining == 100
    assert f.eta == f.low == f.high == T0 + timedelta(hours=14)
    assert f.jobs_needed == 100 and f.failed_share == 0.0


def test_failed_jobs_that_come_back_cost_more_jobs():
    h = [Sample(T0 + timedelta(hours=i), "Active", 100, 0, 10 * i, jobs_done=10 * i, jobs_failed=10 * i)
         for i in range(4)]
    f = forecast(h, h[-1].at, CFG)
    assert f.failed_share == 0.5 and f.jobs_needed == 200 and f.eta == T0 + timedelta(hours=13)


def test_an_uneven_rate_gives_a_range_around_the_estimate():
    h = [Sample(T0 + timedelta(hours=i), "Active", 60, 0, p) for i, p in enumerate((0, 10, 30, 40))]
    f = forecast(h, h[-1].at, CFG)
    # 40 files in 3 h; the slowest hour 10, the fastest 20.
    assert f.eta == h[-1].at + timedelta(hours=60 * 3 / 40)
    assert f.low == h[-1].at + timedelta(hours=3) and f.high == h[-1].at + timedelta(hours=6)


def test_a_sparse_history_takes_the_last_sample_before_the_window_as_its_start():
    # Samples are stored only when something changed: nothing moved between T0+1h and T0+26h.
    h = [Sample(T0 + timedelta(hours=t), "Active", 100 - p, 0, p) for t, p in ((0, 0), (1, 10), (26, 20), (27, 30))]
    f = forecast(h, h[-1].at, CFG)
    # The window starts at T0+3h with 10 Processed: 20 files in 24 h.
    assert f.rate == round(20 / 24, 3) and f.eta == h[-1].at + timedelta(hours=70 / (20 / 24))
    assert f.low == h[-1].at + timedelta(hours=7) and f.high == h[-1].at + timedelta(hours=70 * 23 / 10)


def test_no_basis_with_too_few_cycles_or_no_progress():
    h = [Sample(T0 + timedelta(hours=i), "Active", 10, 0, i) for i in range(2)]
    f = forecast(h, h[-1].at, CFG)
    assert f.eta is None and f.basis == "no_basis" and f.note.startswith("no basis: 2 of 3 cycles")
    stalled = [Sample(T0 + timedelta(hours=i), "Active", 10, 0, min(i, 2)) for i in range(30)]
    f = forecast(stalled, stalled[-1].at, CFG)
    assert f.eta is None and f.note == "no progress since 2026-03-01 14:00 UTC"
    never = [Sample(T0 + timedelta(hours=i), "Active", 10, 0, 0) for i in range(5)]
    assert forecast(never, never[-1].at, CFG).note == "no progress since 2026-03-01 12:00 UTC (first seen)"
    assert forecast([], T0, CFG).eta is None


def test_nothing_left_is_done():
    h = [Sample(T0, "Active", 0, 0, 10)]
    f = forecast(h, T0, CFG)
    assert f.basis == "done" and f.eta == T0


def test_a_child_is_forecast_after_its_parent():
    parent = Forecast(eta=T0 + timedelta(hours=10), low=T0 + timedelta(hours=8), high=T0 + timedelta(hours=12),
                      basis="forecast")
    quick = Forecast(eta=T0 + timedelta(hours=2), low=T0 + timedelta(hours=1), high=T0 + timedelta(hours=3),
                     basis="forecast", remaining=5)
    f = after_parent(quick, 4846, parent, parent_final=False)
    assert (f.eta, f.low, f.high, f.basis, f.after_parent) == (parent.eta, parent.low, parent.high,
                                                               "after_parent", 4846)
    waiting = Forecast(note="no basis: 0 of 3 cycles needed", remaining=5)
    f = after_parent(waiting, 4846, parent, parent_final=False)
    assert f.eta == parent.eta and f.basis == "after_parent" and f.high is None
    slow = Forecast(eta=T0 + timedelta(hours=20), basis="forecast")
    assert after_parent(slow, 4846, parent, parent_final=False) is slow
    assert after_parent(quick, 4846, parent, parent_final=True) is quick
