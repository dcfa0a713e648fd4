"""Attention items: each rule, and the SQL filter agreeing with the Python items."""

from __future__ import annotations

import pytest

from failover import attention
from failover.models import ActionLog, Cycle, Policy, TransformationState
from tests.webfixtures import *  # noqa: F401,F403 (fixtures)

pytestmark = pytest.mark.django_db(databases="__all__")


def row(tid: int, **fields) -> TransformationState:
    defaults = dict(name=f"t{tid}", type="Merging", status="Active", group_size=10, files={}, jobs={})
    return TransformationState.objects.create(transformation_id=tid, **{**defaults, **fields})


def codes() -> dict[int, set[str]]:
    states = list(TransformationState.objects.all())
    return {tid: {i.code for i in items} for tid, items in attention.items_for(states).items() if items}


def sql_ids() -> set[int]:
    return set(TransformationState.objects.filter(attention.needs_attention_q()).values_list("pk", flat=True))


def agree() -> dict[int, set[str]]:
    """The items built in Python and the SQL filters (all, and per code) find the same rows."""
    found = codes()
    assert set(found) == sql_ids()
    for code in attention.TITLES:
        q = attention.code_q(code)
        in_sql = set(TransformationState.objects.filter(q).values_list("pk", flat=True)) if q is not None else set()
        assert in_sql == {tid for tid, cs in found.items() if code in cs}, code
    counts = attention.counts_by_code_sql()
    assert counts == {c: n for c in attention.TITLES if (n := sum(c in cs for cs in found.values()))}
    return found


def test_it_classifies_the_engine_blockers():
    row(1, attention=["3 files reached MaxReassign (3) and stay Assigned"])
    row(2, attention=["flush limit reached (2 of 2) with 4 Unused files"])
    row(3, attention=["1 Unused files; waiting for 2 to complete before flushing"])
    row(4, attention=["all files Processed; waiting for 3 to complete"])
    row(5, attention=["reading Assigned files failed: timeout"])
    row(6, attention=[{"code": "tasks_without_job", "text": "7 tasks have no job", "count": 7}])
    row(7, attention=["5 Assigned files belong to tasks whose job is final"])
    row(8, attention=["waiting for 3 to complete", "flush limit reached (2 of 2)"])
    found = agree()
    assert found == {1: {"at_cap"}, 2: {"flush_limit"}, 5: {"other"}, 6: {"tasks_without_job"},
                     7: {"assigned_final"}, 8: {"flush_limit"}}
    items = attention.items_for([TransformationState.objects.get(pk=1), TransformationState.objects.get(pk=7)])
    assert items[1][0].count == 3 and items[1][0].fix is None
    assert items[7][0].fix == "reassign"


def test_it_flags_unused_files_below_the_group_size_with_no_flush_left():
    Policy.objects.create(name="default", max_flush=2)
    row(1, files={"Unused": 3}, group_size=10, flush_count=2)
    row(2, files={"Unused": 3}, group_size=10, flush_count=1)  # a flush is left
    row(3, files={"Unused": 30}, group_size=10, flush_count=2)  # enough to fill tasks
    row(4, files={"Unused": 3}, group_size=10, flush_count=2, status="Completed")
    assert agree() == {1: {"unused_no_flush"}}


def test_it_flags_a_stuck_child_of_a_completed_parent():
    row(1, status="Completed")
    row(2, parent_id=1, files={"Processed": 4}, files_total=4, files_processed=4, jobs={"Done": 4}, jobs_total=4)
    row(3, parent_id=1, files={"Unused": 2}, files_total=2, jobs={}, jobs_total=0)
    row(4, parent_id=1, jobs={"Running": 2, "Done": 1}, jobs_total=3)  # still running: on its way
    row(5, status="Active")
    row(6, parent_id=5, jobs={"Done": 1}, jobs_total=1)  # parent not done
    found = agree()
    assert found == {2: {"child_active"}, 3: {"child_active"}}
    items = attention.items_for(list(TransformationState.objects.filter(pk__in=[2, 3])))
    assert items[2][0].fix == "complete" and items[3][0].fix == "flush"


def test_it_flags_proposals_waiting():
    row(1)
    ActionLog.objects.create(transformation_id=1, kind="flush", state="proposed", reason="1 Unused files")
    ActionLog.objects.create(transformation_id=1, kind="flush", state="rejected", reason="old")
    assert agree() == {1: {"proposal"}}


def test_it_flags_no_progress_over_n_cycles(settings, chain_synced):
    settings.FAILOVER_STALL_CYCLES = 3
    # Nothing moves in DIRAC between these cycles: 4847 has unfinished files and jobs... all final,
    # so make one job Running to have a transformation that should be moving.
    from failover.simulated.models import SimJob

    SimJob.objects.filter(id=103).update(status="Running")
    for _ in range(3):
        run_cycle(["sync"])
    assert Cycle.objects.filter(state="finished").count() == 4
    found = agree()
    assert "no_progress" in found.get(4847, set())
    # A web cycle of one transformation does not count as a scheduled cycle.
    SimJob.objects.filter(id=103).update(status="Done")
    run_cycle(["sync"])
    assert "no_progress" not in agree().get(4847, set())


def test_it_lists_every_item_for_the_page(chain_proposed):
    items = attention.all_items()
    assert [(i.transformation_id, i.code) for i in items] == [(4846, "proposal"), (4847, "proposal")]
    assert attention.counts_by_code(items) == {"proposal": 2}
    assert attention.all_items(codes=["at_cap"]) == []
