"""Fan-out by production (issue 14, item 5): one task per production (small ones packed whole),
parents first inside it, with the batched reads of a one-task cycle."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from failover import cycles
from failover.engine import Engine
from failover.models import ActionLog, Cycle, CycleItem
from failover.simulated.backend import SimulatedDirac
from failover.simulated.generate import generate_large
from failover.simulated.store import dump
from tests.factories import load_scenario, seed_policy

pytestmark = pytest.mark.django_db(databases="__all__")

@pytest.fixture
def eager():
    import failover.tasks  # noqa: F401 - registers the tasks by name
    from dashboard.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def t(tid, production):
    return SimpleNamespace(id=tid, production=production)


def test_productions_are_packed_whole_and_never_split(settings):
    settings.FAILOVER_FANOUT_GROUP = 4
    ordered = [t(1, 7), t(2, 7), t(3, 7), t(4, 8), t(5, 8), t(6, 9), t(7, 9), t(8, 9), t(9, 9), t(10, 9),
               t(11, None), t(12, None), t(13, None), t(14, None), t(15, None)]
    groups = [[x.id for x in g] for g in cycles.fanout_groups(ordered)]
    # 7 (3 steps) then 8 (2) would be 5: 8 starts the next group; 9 has 5 steps, a group of its own;
    # the transformations outside productions in batches of 4.
    assert groups == [[1, 2, 3], [4, 5], [6, 7, 8, 9, 10], [11, 12, 13, 14], [15]]
    settings.FAILOVER_FANOUT_GROUP = 1
    assert [[x.id for x in g] for g in cycles.fanout_groups(ordered)][:3] == [[1, 2, 3], [4, 5], [6, 7, 8, 9, 10]]


def state() -> dict:
    d = dump()
    return {
        "t": {x["id"]: x["status"] for x in d.transformations},
        "files": {(f["transformation"], f["lfn"]): (f["status"], f["error_count"]) for f in d.files},
        "tasks": {(x["transformation"], x["task"]): x["status"] for x in d.tasks},
    }


def scenario() -> dict:
    # Three three-step productions, a one-step one (10), two transformations alone (11, 12); every
    # task behind its job.
    data = generate_large(12, 240, catch_up=True, seed=5).as_dict()
    for x in data["transformations"][-2:]:
        x.update(production=None, parent=None)
    return data


def fanned_cycle(monkeypatch, django_capture_on_commit_callbacks) -> tuple[Cycle, dict[str, int]]:
    """A fanned-out cycle run here (its groups eager), and the DIRAC calls its start and groups made."""
    made = []

    def counted_backend():
        made.append(SimulatedDirac())
        return made[-1]

    monkeypatch.setattr("failover.cycles.get_backend", counted_backend)
    monkeypatch.setattr("failover.engine.get_backend", counted_backend)
    with django_capture_on_commit_callbacks(execute=True):
        cycle = cycles.start_cycle(trigger="beat")
    cycle.refresh_from_db()
    calls: dict[str, int] = {}
    for backend in made:
        for method, n in backend.calls.snapshot().items():
            calls[method] = calls.get(method, 0) + n
    return cycle, calls


def three_groups(settings, monkeypatch) -> list[tuple[int, list[int], object]]:
    """The scenario in three groups; the messages sent, as (cycle, ids, carried reads)."""
    settings.FAILOVER_FANOUT_GROUP = 6
    seed_policy()
    load_scenario(scenario())
    sent = []
    real = cycles.group_signature

    def recording(cycle_id, ids, carried=None):
        sent.append((cycle_id, list(ids), carried))
        return real(cycle_id, ids, carried)

    monkeypatch.setattr(cycles, "group_signature", recording)
    return sent


def test_a_fanned_out_cycle_sends_one_task_per_group_and_costs_what_the_single_task_costs(
    settings, eager, django_capture_on_commit_callbacks, monkeypatch
):
    messages = three_groups(settings, monkeypatch)
    cycle, fanned = fanned_cycle(monkeypatch, django_capture_on_commit_callbacks)
    assert cycle.state == "finished", cycle.outcomes
    sent = [ids for _, ids, _ in messages]
    assert sent == [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10], [11, 12]]
    for _, ids, carried in messages:
        # Its part of the start's selection, parents first as a group reading it would order it.
        assert carried is not None and sorted(t.id for t in carried.selection.selected) == sorted(ids)
    assert set(CycleItem.objects.filter(cycle=cycle).values_list("state", flat=True)) == {"ok"}
    # What the cycle records is what its start and its groups called.
    assert sum(fanned.values()) == sum(cycle.calls.values())
    after = state()
    log = sorted(ActionLog.objects.filter(cycle=cycle).values_list("transformation_id", "kind", "state"))

    # The same state, one task.
    load_scenario(scenario())
    single = Engine(SimulatedDirac(), retries=0).run_cycle()
    assert state() == after
    one = sorted(ActionLog.objects.filter(cycle_id=single.cycle_id).values_list("transformation_id", "kind", "state"))
    assert one == log

    def split(calls):
        writes = {m: n for m, n in calls.items() if m.startswith("set_")}
        return sum(calls.values()) - sum(writes.values()), writes

    fanned_reads, fanned_writes = split(fanned)
    single_reads, single_writes = split(single.calls)
    # The same writes, call for call. The start reads the selection, its file counts and what
    # changed once for all groups; each group reads only what its own batch needs (a first cycle
    # fills each group's mirror, and the Assigned files of its planned ones: a read per group
    # where the one-task cycle makes one for its one batch).
    assert fanned_writes == single_writes
    # (The one-task cycle runs on a mirror the fan-out filled, so it reads changes instead.)
    for method in ("transformations", "file_counts"):
        assert fanned[method] == single.calls[method] == 1
    per_batch = {"tasks", "jobs", "files"}
    assert not set(fanned) - per_batch - {"transformations", "file_counts"} - set(fanned_writes)
    # Per group at most: its tasks, their jobs (getJobsStates and getJobsSites), its Assigned files.
    assert fanned_reads - 2 <= len(sent) * 4, fanned
    assert Cycle.objects.get(pk=cycle.pk).errors == 0


def test_a_group_treats_its_parents_first_and_records_every_item(settings, eager, django_capture_on_commit_callbacks,
                                                                 monkeypatch):
    settings.FAILOVER_FANOUT_GROUP = 50
    seed_policy()
    load_scenario(scenario())
    order = []
    real = Engine._treat

    def spy(self, run, t, selection, inputs):
        order.append(t.id)
        return (yield from real(self, run, t, selection, inputs))

    monkeypatch.setattr(Engine, "_treat", spy)
    with django_capture_on_commit_callbacks(execute=True):
        cycle = cycles.start_cycle(trigger="beat")
    assert sorted(order) == list(range(1, 13))
    # Parents first: generate_large's productions are ids 1, 2, 3 / 4, 5, 6 / 7, 8, 9 / 10.
    for child in (2, 3, 5, 6, 8, 9):
        assert order.index(child - 1) < order.index(child)
    items = CycleItem.objects.filter(cycle=cycle)
    assert items.count() == 12 and all(i.state == "ok" and i.attempts == 1 for i in items)
    # A group's calls are counted once, on its first item: productions 1-10, then 11 and 12 alone.
    calls = dict(items.values_list("transformation_id", "calls"))
    assert calls[1] > 0 and calls[11] > 0 and all(n == 0 for tid, n in calls.items() if tid not in (1, 11))


def settled(monkeypatch, django_capture_on_commit_callbacks) -> None:
    """Fanned-out cycles until one writes nothing to DIRAC."""
    for _ in range(8):
        cycle, calls = fanned_cycle(monkeypatch, django_capture_on_commit_callbacks)
        assert cycle.state == "finished", cycle.outcomes
        if not any(m.startswith("set_") for m in calls):
            return
    raise AssertionError("the scenario never settled")


def test_a_fanned_out_cycle_with_nothing_changed_makes_the_calls_of_the_one_task_cycle(
    settings, eager, django_capture_on_commit_callbacks, monkeypatch
):
    # Three groups. Nothing changed in DIRAC: the start's reads are the whole cycle's, and no
    # group calls DIRAC (the one-task cycle's reads are the same calls, method for method).
    settings.FAILOVER_FANOUT_GROUP = 6
    settings.FAILOVER_STALL_CYCLES = 1000  # no "no progress" plan comes due in between
    seed_policy()
    load_scenario(scenario())
    settled(monkeypatch, django_capture_on_commit_callbacks)
    single = Engine(SimulatedDirac(), retries=0).run_cycle()
    assert not any(m.startswith("set_") for m in single.calls)
    cycle, fanned = fanned_cycle(monkeypatch, django_capture_on_commit_callbacks)
    assert cycle.state == "finished" and cycle.errors == 0
    assert CycleItem.objects.filter(cycle=cycle).count() == 12
    assert fanned == single.calls
    assert {"transformations", "file_counts", "tasks_changed_since", "jobs_changed_since"} <= set(fanned)
    # Every item ran in a group that made no call of its own.
    assert set(CycleItem.objects.filter(cycle=cycle).values_list("calls", flat=True)) == {0}


def test_a_change_the_start_read_is_planned_by_its_group(
    settings, eager, django_capture_on_commit_callbacks, monkeypatch
):
    # The start reads what changed and writes it to the mirror; the group given that read plans
    # the transformation whose job moved (it is not quiet), and copies the job's status.
    from failover.simulated.backend import dirac_now
    from failover.simulated.models import SimJob, SimTask

    settings.FAILOVER_FANOUT_GROUP = 6
    settings.FAILOVER_STALL_CYCLES = 1000
    seed_policy()
    load_scenario(scenario())
    settled(monkeypatch, django_capture_on_commit_callbacks)
    task = SimTask.objects.filter(transformation=8, status="Done").exclude(job=0).order_by("task").first()
    SimJob.objects.filter(id=task.job).update(status="Failed", last_update=dirac_now())
    cycle, calls = fanned_cycle(monkeypatch, django_capture_on_commit_callbacks)
    assert cycle.state == "finished" and cycle.errors == 0
    synced = ActionLog.objects.get(cycle=cycle, transformation_id=8, kind="sync")
    assert synced.state == "done" and synced.details["tasks"] == {"Failed": [task.task]}
    assert SimTask.objects.get(pk=task.pk).status == "Failed"
    # The group of transformation 8 read nothing of what the start read for it.
    assert calls["transformations"] == 1 and calls["tasks_changed_since"] == 1


def test_a_group_put_back_on_the_queue_reads_for_itself(
    settings, eager, django_capture_on_commit_callbacks, monkeypatch
):
    # Beat's requeue sends a group without the start's reads: it reads its selection again.
    sent = three_groups(settings, monkeypatch)
    monkeypatch.setattr("celery.canvas.Signature.apply_async", lambda self, *a, **kw: None)
    with django_capture_on_commit_callbacks(execute=True):
        cycle = cycles.start_cycle(trigger="beat")
    assert len(sent) == 3 and all(c is not None and i == cycle.pk for i, _, c in sent)
    backend = SimulatedDirac()
    monkeypatch.setattr("failover.engine.get_backend", lambda: backend)
    cycle_id, ids, carried = sent[0]
    # The message as beat's requeue sends it: no carried reads.
    cycles.treat_group(cycle_id, ids)
    assert backend.calls.snapshot()["transformations"] == 1 and backend.calls.snapshot()["file_counts"] == 1
    items = CycleItem.objects.filter(cycle_id=cycle_id, transformation_id__in=ids)
    assert {i.state for i in items} == {"ok"}
    # The same group given the start's reads, as a copy of the first message, finds its items done.
    assert cycles.treat_group(cycle_id, ids, carried=carried.as_message()).startswith("nothing to treat")
