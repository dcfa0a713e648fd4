"""The mirror (failover/mirror.py): a cycle reads what changed, plans what changed, never misses a
change (margin, full resync), and reports drift; all on the simulated DIRAC."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from failover import health, rules
from failover.engine import Engine
from failover.models import Cycle, MirrorJob, MirrorState, MirrorTask, TransformationState
from failover.simulated.backend import SimulatedDirac
from failover.simulated.models import SimJob, SimTask
from reports.models import Snapshot
from tests.factories import job, load_scenario, seed_policy

pytestmark = pytest.mark.django_db(databases="__all__")

IDS = (501, 502, 503)
START = "2026-11-30 10:00:00Z"


def steady_scenario() -> dict:
    """Three Merging transformations outside productions, each with three Running jobs holding
    Assigned files: nothing to do until a job changes."""
    data = {"productions": [], "transformations": [], "files": [], "tasks": [], "jobs": []}
    job_id = 9000
    for tid in IDS:
        data["transformations"].append({"id": tid, "name": f"t{tid}", "type": "Merging", "status": "Active",
                                        "group_size": 1000})
        for task in (1, 2, 3):
            job_id += 1
            data["tasks"].append({"transformation": tid, "task": task, "job": job_id, "status": "Running"})
            data["jobs"].append(job(job_id, "Running", minor="Application", app="Running"))
            data["files"].append({"transformation": tid, "lfn": f"/m/{tid}/{task}.h5", "status": "Assigned",
                                  "task": task})
    return data


def job_of(tid: int, task: int) -> int:
    return 9000 + 3 * IDS.index(tid) + task


def run(backend=None, **kw):
    return Engine(backend or SimulatedDirac(), retries=0, backoff=0).run_cycle(**kw)


@pytest.fixture
def steady(time_machine, settings):
    # The clock moves 10 minutes between these tests' cycles: no periodic replan in the way
    # (test_a_quiet_transformation_is_planned_again_after_the_replan_period turns it on).
    settings.FAILOVER_REPLAN_MINUTES = 0
    time_machine.move_to(START, tick=False)
    seed_policy()
    load_scenario(steady_scenario())
    first = run()
    assert first.errors == 0 and not first.decisions
    return time_machine


@pytest.fixture
def plans(monkeypatch):
    """The transformations the rules were asked to plan."""
    planned: list[int] = []
    original = rules.plan_transformation

    def counting(t, **kw):
        planned.append(t.id)
        return original(t, **kw)

    monkeypatch.setattr(rules, "plan_transformation", counting)
    return planned


def test_a_first_cycle_reads_in_full_and_fills_the_mirror(steady):
    assert set(MirrorState.objects.values_list("transformation_id", flat=True)) == set(IDS)
    assert MirrorTask.objects.count() == 9 and MirrorJob.objects.count() == 9
    state = MirrorState.objects.get(pk=501)
    assert (state.tasks, state.jobs, state.quiet) == (3, 3, True)
    assert state.file_counts == {"Assigned": 3}
    # The overview's counters come from the mirror's GROUP BY.
    assert TransformationState.objects.get(pk=501).jobs == {"Running": 3}


def test_a_cycle_with_nothing_changed_reads_deltas_only_and_plans_nothing(steady, plans):
    steady.shift(600)
    result = run()
    assert result.errors == 0 and not result.decisions
    # No full read of tasks or jobs, no Assigned files: the deltas, the selection and the counts.
    assert set(result.calls) == {"transformations", "file_counts", "tasks_changed_since", "jobs_changed_since"}
    assert plans == []
    assert all(o.state == "ok" for o in result.outcomes.values())
    assert TransformationState.objects.get(pk=502).unchanged_cycles == 1
    # The cycle's stored aggregates are the last ones, carried forward.
    snaps = Snapshot.objects.filter(cycle_id=result.cycle_id)
    assert snaps.count() == 3
    before = Snapshot.objects.exclude(cycle_id=result.cycle_id).get(transformation_id=502)
    assert snaps.get(transformation_id=502).aggregate_set_id == before.aggregate_set_id


def test_a_changed_job_replans_only_its_transformation(steady, plans):
    steady.shift(600)
    SimJob.objects.filter(id=job_of(502, 2)).update(status="Failed", minor_status="Application Finished With Errors",
                                                     last_update=timezone.now())
    result = run()
    assert plans == [502]
    kinds = sorted(d.kind for d in result.decisions)
    assert kinds == ["reassign", "sync"]
    assert SimTask.objects.get(transformation=502, task=2).status == "Failed"
    # What the sync wrote is in the mirror at once; the report's aggregates are the mirror's.
    assert MirrorTask.objects.get(transformation_id=502, task_id=2).status == "Failed"
    assert TransformationState.objects.get(pk=502).jobs == {"Failed": 1, "Running": 2}
    rows = Snapshot.objects.get(cycle_id=result.cycle_id, transformation_id=502).aggregate_set.rows.all()
    assert sorted((r.status, r.count) for r in rows) == [("Failed", 1), ("Running", 2)]
    # The next cycle plans it once more (its last plan acted), then it is quiet again.
    steady.shift(600)
    plans.clear()
    run()
    assert plans == [502]
    steady.shift(600)
    plans.clear()
    result = run()
    assert plans == [] and not result.decisions


def test_a_quiet_transformation_is_planned_again_after_the_replan_period(steady, plans, settings):
    """What follows the clock (insight's stall alerts, the forecast) needs a plan now and then."""
    settings.FAILOVER_REPLAN_MINUTES = 30
    steady.shift(600)
    run()
    # The first cycle planned them all at START: 10 minutes on, they stay quiet.
    assert plans == []
    steady.shift(20 * 60)
    run()
    assert sorted(plans) == list(IDS)
    plans.clear()
    steady.shift(600)
    run()
    assert plans == []


def test_an_operators_cycle_of_given_transformations_plans_them(steady, plans):
    steady.shift(600)
    Engine(SimulatedDirac(), retries=0, backoff=0).run_cycle([501])
    assert plans == [501]


def test_a_lost_mirror_is_read_in_full_again(steady, plans):
    MirrorState.objects.all().delete()
    MirrorTask.objects.all().delete()
    MirrorJob.objects.all().delete()
    steady.shift(600)
    result = run()
    assert {"tasks", "jobs"} <= set(result.calls)
    assert MirrorTask.objects.count() == 9 and sorted(plans) == list(IDS)
    assert not Cycle.objects.get(pk=result.cycle_id).drift_rows


def test_a_full_resync_finds_reports_and_repairs_drift(steady, caplog, client):
    steady.shift(600)
    run()  # the rows' LastUpdateTime is now older than the next cut less its margin
    steady.shift(600)
    # Behind the mirror's back: a job edited without a new LastUpdateTime, a task deleted.
    edited = job_of(501, 1)
    SimJob.objects.filter(id=edited).update(site="LCG.Elsewhere.fr", application_status="Stalled?")
    SimTask.objects.filter(transformation=503, task=3).delete()
    run()
    # A delta cannot see either.
    assert MirrorJob.objects.get(pk=edited).site == "LCG.GRIF.fr"
    assert MirrorTask.objects.filter(transformation_id=503, task_id=3).exists()

    steady.shift(600)
    caplog.set_level(logging.WARNING)
    result = run(full=True)
    cycle = Cycle.objects.get(pk=result.cycle_id)
    assert cycle.full and cycle.resynced == 3 and cycle.drift_rows == 2
    assert cycle.drift == {"added": 0, "changed": 1, "removed": 1, "transformations": {
        "501": {"added": 0, "changed": 1, "removed": 0}, "503": {"added": 0, "changed": 0, "removed": 1}}}
    assert result.drift == cycle.drift
    # Repaired.
    assert MirrorJob.objects.get(pk=edited).site == "LCG.Elsewhere.fr"
    assert not MirrorTask.objects.filter(transformation_id=503, task_id=3).exists()
    assert not MirrorJob.objects.filter(pk=job_of(503, 3)).exists()
    assert TransformationState.objects.get(pk=503).jobs == {"Running": 2}
    # In the log, on the health check and its page.
    assert any("2 rows of drift" in r.getMessage() and "501, 503" in r.getMessage() for r in caplog.records)
    check = health.check_mirror()
    assert check.ok and check.data["rows"] == 2 and "drift of 2 rows" in check.detail and "501, 503" in check.detail
    page = client.get("/health/").content.decode()
    assert 'id="mirror-drift"' in page and 'data-transformation="503"' in page
    # A second resync finds nothing left to repair.
    steady.shift(600)
    again = run(full=True)
    assert Cycle.objects.get(pk=again.cycle_id).drift_rows == 0
    assert "no drift" in health.check_mirror().detail


def test_the_periodic_resync_comes_by_itself(steady, settings):
    settings.FAILOVER_RESYNC_HOURS = 1
    steady.shift(1800)
    assert run().resynced == 0
    steady.shift(1900)
    result = run()
    assert result.resynced == 3 and result.drift["added"] == 0
    assert {"tasks", "jobs"} <= set(result.calls)


def test_a_resync_overdue_fails_the_health_check(steady, settings):
    settings.FAILOVER_RESYNC_HOURS = 1
    MirrorState.objects.update(last_full=timezone.now() - timedelta(hours=3))
    check = health.check_mirror()
    assert not check.ok and "resync overdue" in check.detail


class ChangeDuringRead(SimulatedDirac):
    """DIRAC changes a job while our cycle reads, stamped one second before our cut (its clock a
    second behind ours): the change is after our delta read, its LastUpdateTime before our cut."""

    def __init__(self, job_id: int):
        super().__init__()
        self.job_id = job_id

    def jobs_changed_since(self, ids, since):
        answer = super().jobs_changed_since(ids, since)
        if self.job_id:
            stamp = timezone.now() - timedelta(seconds=1)
            SimJob.objects.filter(id=self.job_id).update(status="Failed", last_update=stamp)
            self.job_id = 0
        return answer


@pytest.mark.parametrize("margin, seen", [(120, True), (0, False)])
def test_a_change_just_before_the_cut_is_seen_by_the_next_cycle(steady, settings, margin, seen):
    settings.FAILOVER_MIRROR_MARGIN_SECONDS = margin
    steady.shift(600)
    changed = job_of(502, 1)
    during = run(ChangeDuringRead(changed))
    assert not during.decisions  # read before the change
    assert MirrorJob.objects.get(pk=changed).status == "Running"
    steady.shift(600)
    after = run()
    # With the margin the next cycle sees it; without, the change would be lost until a resync.
    assert (MirrorJob.objects.get(pk=changed).status == "Failed") is seen
    assert bool([d for d in after.decisions if d.kind == "sync"]) is seen


def test_the_mirrors_assigned_files_test_is_the_rules_one():
    """``read.needs_assigned_files`` (one query over the mirror) answers as ``rules.needs_assigned_files``
    (over the tasks and jobs) for every case: a job's status, no job yet, a job gone from the Job DB."""
    from failover import mirror
    from failover.cycle.read import needs_assigned_files
    from failover.domain import DONE_TASK_STATUSES, FAILED_TASK_STATUSES, TransformationInfo
    from failover.rules import RulesPolicy, needs_assigned_files as rules_needs

    seed_policy()
    data = {"productions": [], "transformations": [], "files": [], "tasks": [], "jobs": []}
    cases = {
        601: [("Running", "Running")], 602: [("Running", "Failed")], 603: [("Running", "Done")],
        604: [("Running", None)], 605: [("Done", None)], 606: [("Killed", None)], 607: [("Created", 0)],
        608: [("Done", 0)], 609: [("Failed", "Running")],
    }
    job_id = 7000
    gone = []
    for tid, tasks in cases.items():
        data["transformations"].append({"id": tid, "name": f"t{tid}", "type": "Merging", "status": "Active",
                                        "group_size": 10})
        for n, (task_status, job_status) in enumerate(tasks, 1):
            job_id += 1
            data["tasks"].append({"transformation": tid, "task": n, "job": 0 if job_status == 0 else job_id,
                                  "status": task_status})
            if job_status != 0:
                data["jobs"].append(job(job_id, job_status or "Running"))
            if job_status is None:
                gone.append(job_id)
    load_scenario(data)
    SimJob.objects.filter(id__in=gone).delete()  # gone from the Job DB
    backend = SimulatedDirac()
    Engine(backend, dry_run=True).run_cycle()  # fills the mirror, acts on nothing
    assert MirrorTask.objects.count() == len(cases)
    for reassign in (frozenset({"Merging"}), frozenset()):
        policy = RulesPolicy(reassign_types=reassign)
        for tid in cases:
            t = TransformationInfo(tid, f"t{tid}", "Merging", "Active", 10)
            tasks = backend.tasks([tid])
            jobs = backend.jobs([x.job for x in tasks if x.job])
            flags = mirror.synced_flags([tid], FAILED_TASK_STATUSES, DONE_TASK_STATUSES)[tid]
            assert needs_assigned_files(t, policy, flags) == rules_needs(t, tasks, jobs, policy), (tid, reassign)


def test_the_full_cycle_command_says_what_it_found(steady):
    from io import StringIO

    from django.core.management import call_command

    steady.shift(600)
    out = StringIO()
    call_command("failover", "cycle", "--full", stdout=out)
    assert "full resync of 3 transformations: no drift" in out.getvalue()
    SimJob.objects.filter(id=job_of(502, 3)).update(site="LCG.Moved.fr")  # no new LastUpdateTime
    steady.shift(600)
    out = StringIO()
    call_command("failover", "cycle", "--full", stdout=out)
    assert ("full resync of 3 transformations: drift of 1 rows (0 added, 1 changed, 0 removed; "
            "transformations: 502), repaired") in out.getvalue()
    assert Cycle.objects.order_by("-pk").first().full


def test_the_mirrors_aggregates_are_the_reports_over_dirac(time_machine):
    """The report's rows by GROUP BY over the mirror equal ``aggregate_jobs`` over DIRAC's jobs
    (the live report), order included, and the overview's counters add up to them."""
    from reports.aggregation import aggregate_jobs
    from reports.recording import mirror_aggregates
    from tests.factories import chain_scenario

    time_machine.move_to(START, tick=False)
    seed_policy()
    data = chain_scenario()
    data["jobs"].append(job(104, "Failed", site="LCG.CNAF.it"))
    data["jobs"].append(job(105, "Done"))
    data["tasks"] += [{"transformation": 4847, "task": 4, "job": 104, "status": "Running"},
                      {"transformation": 4847, "task": 5, "job": 105, "status": "Done"},
                      {"transformation": 4848, "task": 1, "job": 0, "status": "Created"}]
    load_scenario(data)
    backend = SimulatedDirac()
    run(backend)
    for tid in (4846, 4847, 4848):
        jobs = backend.jobs([t.job for t in backend.tasks([tid]) if t.job])
        assert mirror_aggregates(tid) == aggregate_jobs(jobs.values()), tid
        by_status: dict[str, int] = {}
        for j in jobs.values():
            by_status[j.status] = by_status.get(j.status, 0) + 1
        assert TransformationState.objects.get(pk=tid).jobs == by_status


def test_prune_drops_the_mirror_of_transformations_no_longer_read(steady):
    from failover.maintenance import prune

    MirrorState.objects.filter(pk=503).update(cut=timezone.now() - timedelta(days=100))
    result = prune(90)
    assert "1 mirrors of transformations not read since" in str(result)
    assert set(MirrorState.objects.values_list("transformation_id", flat=True)) == {501, 502}
    assert not MirrorTask.objects.filter(transformation_id=503).exists()
    assert not MirrorJob.objects.filter(transformation_id=503).exists()


def test_a_run_of_some_kinds_only_does_not_make_a_transformation_quiet(steady, plans):
    """A sync-only run (an operator's button) plans without reassign: nothing found to do then
    says nothing of the next full cycle, which must plan the transformation again."""
    steady.shift(600)
    SimJob.objects.filter(id=job_of(502, 2)).update(status="Failed", minor_status="Application Finished With Errors",
                                                     last_update=timezone.now())
    run(kinds=["sync"])
    assert 502 in plans
    plans.clear()
    steady.shift(600)
    result = run()
    # Every transformation the sync-only run planned is planned again in full, and 502's failed
    # task is reassigned now.
    assert sorted(plans) == list(IDS) and [d.kind for d in result.decisions] == ["reassign"]


@pytest.mark.parametrize("seed", range(6))
def test_a_plan_from_the_mirrors_view_is_the_plan_from_every_task(seed):
    """``mirror.plan_view`` gives the rules only the tasks whose status moves and those of the
    Assigned files, with every task counted in SQL, and ``mirror.recent_jobs`` counts the latest
    finished jobs for insight: the plan, the insight's inputs and the engine's counts are those
    made from all the tasks and jobs, on random mirrors (tasks in step with their
    job or not, without a job, whose job is gone from the Job DB; files Assigned to any of them)."""
    import random

    from failover import insight, mirror
    from failover.domain import FileCounts, FileInfo, TransformationInfo
    from failover.engine import _failed_waiting
    from failover.rules import ParentView, RulesPolicy

    rng = random.Random(seed)
    windows = [insight.InsightSettings(), insight.InsightSettings(window_jobs=3, all_failed_jobs=2),
               insight.InsightSettings(window_jobs=2, all_failed_jobs=5), insight.InsightSettings(window_jobs=0),
               insight.InsightSettings(window_jobs=4, all_failed_jobs=0),
               insight.InsightSettings(window_jobs=0, all_failed_jobs=0)]
    statuses = ["Created", "Submitted", "Waiting", "Running", "Done", "Completed", "Failed", "Killed"]
    policy = RulesPolicy(complete_types=frozenset({"Merging"}), flush_types=frozenset({"Merging"}),
                         reassign_types=frozenset({"Merging"}) if seed % 2 else frozenset(), max_reassign=2)
    job_id = 50_000
    kinds: set[str] = set()
    narrower = 0
    for tid in range(700, 712):
        n = rng.choice([0, 1, 5, 40])
        in_step = rng.random() < 0.3  # every task already has its job's status: only a flush can come
        # Every task final: the flush "all tasks are final" looks at all of them (the summary).
        choices = ["Done", "Failed", "Killed"] if in_step and rng.random() < 0.6 else statuses
        tasks, jobs = [], []
        for task in range(1, n + 1):
            job_id += 1
            kind = rng.random()
            status = rng.choice(choices)
            if kind < 0.1:
                tasks.append(MirrorTask(transformation_id=tid, task_id=task, job_id=0, status=status))
                continue
            tasks.append(MirrorTask(transformation_id=tid, task_id=task, job_id=job_id, status=status))
            if kind < 0.2:
                continue  # gone from the Job DB
            job_status = status if in_step or rng.random() < 0.6 else rng.choice(choices)
            jobs.append(MirrorJob(job_id=job_id, transformation_id=tid, status=job_status,
                                  minor_status=rng.choice(["", "Application Finished", "Input Data Resolution"]),
                                  application_status=rng.choice(["", "Exit 1"]), site=rng.choice(["LCG.A", "LCG.B"])))
        MirrorTask.objects.bulk_create(tasks)
        MirrorJob.objects.bulk_create(jobs)
        files = [FileInfo(tid, f"/f/{tid}/{k}", rng.choice(["Assigned", "Assigned", "Processed"]), x.task_id)
                 for k, x in enumerate(tasks) if rng.random() < 0.5]
        counters = {f.lfn: rng.choice([0, 1, 2]) for f in files}
        t = TransformationInfo(tid, f"t{tid}", "Merging", "Active", rng.choice([1, 1000]), parent=-1)
        counts = FileCounts({"Unused": rng.choice([0, 3]), "Assigned": len(files), "Processed": rng.choice([0, 2])})
        parent = ParentView(-1, "", "Completed", True)

        all_tasks = mirror.tasks_of(tid)
        all_jobs = mirror.jobs_of(tid)
        full = rules.plan_transformation(t, counts=counts, tasks=all_tasks, jobs=all_jobs, parent=parent,
                                         assigned_files=files, counters=counters, flush_count=0, policy=policy)
        for cfg in windows:
            # The site hints' and alerts' jobs, counted by the database as from every job.
            assert mirror.recent_jobs(tid, cfg) == insight.RecentJobs.of(all_jobs.values(), cfg), (tid, cfg)
        view = mirror.plan_view(tid, (f.task for f in files))
        assert view.summary == rules.summarise(full.tasks), tid
        assert view.jobs == {k: all_jobs[k] for k in view.jobs}
        part = rules.plan_transformation(t, counts=counts, tasks=view.tasks, jobs=view.jobs, parent=parent,
                                         assigned_files=files, counters=counters, flush_count=0, policy=policy,
                                         summary=view.summary)
        assert [d.as_dict() for d in part.decisions] == [d.as_dict() for d in full.decisions], tid
        kinds.update(d.kind for d in part.decisions)
        kinds.update("flush: all final" for d in part.decisions if "are final" in d.reason)
        narrower += len(part.tasks) < len(full.tasks)
        assert part.blockers == full.blockers and part.at_cap == full.at_cap, tid
        assert part.recoverable == full.recoverable, tid
        by_id = {x.task: x for x in full.tasks}
        assert all(by_id[x.task] == x for x in part.tasks), tid  # the same tasks, synced the same
        assert {f.task for f in files} <= {x.task for x in part.tasks}  # every Assigned file's task
        needs = rules.summary_needs_assigned_files(t, view.summary, policy)
        assert needs == rules.synced_needs_assigned_files(t, full.tasks, policy), tid
        for moved in (set(), {f.lfn for f in files[:1]}):
            assert (_failed_waiting(part.tasks, part.summary, files if needs else None, moved)
                    == _failed_waiting(full.tasks, full.summary, files if needs else None, moved)), tid
    # The cases were not empty ones: plans with decisions, and views narrower than every task.
    assert {"sync"} <= kinds and narrower
