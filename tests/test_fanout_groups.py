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


def test_a_fanned_out_cycle_sends_one_task_per_group_and_costs_what_the_single_task_costs(
    settings, eager, django_capture_on_commit_callbacks, monkeypatch
):
    settings.FAILOVER_FANOUT_GROUP = 6
    seed_policy()
    load_scenario(scenario())
    sent = []
    real = cycles.group_signature

    def recording(cycle_id, ids):
        sent.append(list(ids))
        return real(cycle_id, ids)

    monkeypatch.setattr(cycles, "group_signature", recording)
    made = []

    def counted_backend():
        made.append(SimulatedDirac())
        return made[-1]

    monkeypatch.setattr("failover.cycles.get_backend", counted_backend)
    monkeypatch.setattr("failover.engine.get_backend", counted_backend)
    with django_capture_on_commit_callbacks(execute=True):
        cycle = cycles.start_cycle(trigger="beat")
    cycle.refresh_from_db()
    assert cycle.state == "finished", cycle.outcomes
    assert sent == [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10], [11, 12]]
    assert set(CycleItem.objects.filter(cycle=cycle).values_list("state", flat=True)) == {"ok"}
    fanned: dict[str, int] = {}
    for backend in made:
        for method, n in backend.calls.snapshot().items():
            fanned[method] = fanned.get(method, 0) + n
    # What the cycle records is what its start and its groups called.
    assert sum(fanned.values()) == cycle.calls["transformations"] + cycle.calls["transformation tasks"]
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
    # The same writes, call for call; each group reads its transformations in one batch as the
    # one-task cycle reads its one batch, and the fan-out's own selection read comes on top.
    assert fanned_writes == single_writes
    assert fanned_reads <= 1 + len(sent) * single_reads
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
