"""Attention items: made by the rules and the engine as values, stored by code, selected by code.

No test here writes a blocker's wording: the texts are whatever the rules say, so rewording one
changes nothing about which items a page shows.
"""

from __future__ import annotations

import dataclasses

import pytest

from failover import attention, blockers, rules
from failover.blockers import Blocker
from failover.domain import FileCounts, FileInfo, JobInfo, TaskInfo, TransformationInfo
from failover.engine import after_acting
from failover.models import ActionLog, TransformationState
from failover.simulated.models import SimJob
from tests.factories import run_cycle
from tests.test_rules import SEED

pytestmark = pytest.mark.django_db(databases="__all__")


def row(tid: int, found=(), **fields) -> TransformationState:
    defaults = dict(name=f"t{tid}", type="Merging", status="Active", group_size=10, files={}, jobs={})
    state = TransformationState.objects.create(transformation_id=tid, **{**defaults, **fields})
    attention.save_blockers(tid, list(found))
    return state


def codes() -> dict[int, set[str]]:
    states = list(TransformationState.objects.all())
    return {tid: {i.code for i in items} for tid, items in attention.items_for(states).items() if items}


def agree() -> dict[int, set[str]]:
    """The items of the rows, the "needs attention" filter, each code's filter and the counts agree."""
    found = codes()
    in_sql = set(TransformationState.objects.filter(attention.needs_attention_q()).values_list("pk", flat=True))
    assert set(found) == in_sql
    for code in attention.TITLES:
        rows = set(attention.rows_needing_attention(codes=code).values_list("pk", flat=True))
        unknown = code == attention.OTHER
        expected = {tid for tid, cs in found.items() if code in cs or (unknown and cs - set(attention.TITLES))}
        assert rows == expected, code
    counted = {c: n for c in attention.TITLES if (n := len(attention.rows_needing_attention(codes=c)))}
    assert attention.counts_by_code_sql() == counted
    return found


def test_the_plan_of_the_rules_becomes_the_items_of_the_page():
    """plan_transformation's blockers, stored as the cycle stores them, are the page's items."""
    t = TransformationInfo(4848, "t", "Merging", "Active", 50, 7, 4847)
    plan = rules.plan_transformation(
        t,
        counts=FileCounts({"Unused": 10, "Assigned": 2, "Processed": 100}),
        tasks=[TaskInfo(4848, 1, 11, "Failed")],
        jobs={11: JobInfo(11, "Failed", "x", "y", "LCG.GRIF.fr")},
        parent=rules.ParentView(4847, "Merging", "Active", False),
        assigned_files=[FileInfo(4848, "/a", "Assigned", 1), FileInfo(4848, "/b", "Assigned", 1)],
        counters={"/a": 3},
        flush_count=0,
        policy=SEED,
    )
    row(4848, plan.blockers)
    items = attention.items_for([TransformationState.objects.get(pk=4848)])[4848]
    # The wait for the parent is no item; the file at its cap is, with the rule's own text and numbers.
    assert [(i.code, i.count, i.text) for i in items] == [
        (b.code, b.count, b.text) for b in plan.blockers if b.code != blockers.WAITING
    ] == [(blockers.AT_CAP, 1, plan.blockers[1].text)]
    assert attention.waiting_for(TransformationState.objects.get(pk=4848)) == 4847
    assert agree() == {4848: {blockers.AT_CAP}}


def test_rewording_a_blocker_changes_no_item_but_its_text():
    first = Blocker(blockers.FLUSH_LIMIT, "some words", count=4, limit=2)
    row(1, [first])
    before = agree()
    attention.save_blockers(1, [dataclasses.replace(first, text="other words entirely")])
    assert agree() == before == {1: {blockers.FLUSH_LIMIT}}
    assert attention.items_for([TransformationState.objects.get(pk=1)])[1][0].text == "other words entirely"


def test_each_code_is_filtered_and_counted_and_unknown_codes_are_other():
    row(1, [Blocker(blockers.AT_CAP, "a", count=3, limit=3)])
    row(2, [Blocker(blockers.WAITING, "w", related=1), Blocker(blockers.FLUSH_LIMIT, "f", count=4)])
    row(3, [Blocker(blockers.WAITING, "w", related=2)])
    row(4, [Blocker(blockers.ASSIGNED_FINAL, "s", count=5, fix=rules.REASSIGN)])
    row(5, [Blocker("from_a_newer_version", "x")])
    row(6)
    assert agree() == {1: {"at_cap"}, 2: {"flush_limit"}, 4: {"assigned_final"}, 5: {"from_a_newer_version"}}
    items = attention.items_for(list(TransformationState.objects.filter(pk__in=[1, 4, 5])))
    assert items[1][0].count == 3 and items[1][0].fix is None
    assert items[4][0].fix == "reassign"
    assert items[5][0].title == attention.TITLES[attention.OTHER]


def test_storing_the_same_blockers_again_writes_nothing(django_assert_num_queries):
    found = [Blocker(blockers.AT_CAP, "a", count=3, limit=3)]
    row(1, found)
    with django_assert_num_queries(1):  # the read that compares
        attention.save_blockers(1, list(found))


def test_a_child_left_active_under_a_final_parent_is_flagged_after_acting(settings):
    settings.FAILOVER_STALL_CYCLES = 6
    child = TransformationInfo(2, "c", "Merging", "Active", 10, 7, 1)
    done = TransformationInfo(1, "p", "Merging", "Completed", 10, 7, -1)
    running = TransformationInfo(1, "p", "Merging", "Active", 10, 7, -1)
    processed = FileCounts({"Processed": 4})
    unused = FileCounts({"Unused": 2})
    [b] = after_acting(child, done, processed, {"Done": 4}, 0)
    assert (b.code, b.related, b.fix) == (blockers.CHILD_ACTIVE, 1, rules.COMPLETE)
    assert after_acting(child, done, unused, {}, 0)[0].fix == rules.FLUSH_ACTION
    assert after_acting(child, done, unused, {"Running": 2, "Done": 1}, 0) == []  # on its way
    assert after_acting(child, running, processed, {"Done": 4}, 0) == []  # parent not done
    completed = dataclasses.replace(child, status="Completed")
    assert after_acting(completed, done, processed, {"Done": 4}, 0) == []


def test_it_flags_proposals_waiting():
    row(1)
    ActionLog.objects.create(transformation_id=1, kind="flush", state="proposed", reason="1 Unused files")
    ActionLog.objects.create(transformation_id=1, kind="flush", state="rejected", reason="old")
    assert agree() == {1: {"proposal"}}


def test_no_progress_reads_the_engines_counter_on_any_store(settings, chain_synced):
    settings.FAILOVER_STALL_CYCLES = 3
    # A job that stays Running: 4847 should be moving, and its counts do not move.
    SimJob.objects.filter(id=103).update(status="Running")
    for _ in range(3):
        run_cycle(["sync"])
    assert TransformationState.objects.get(pk=4847).unchanged_cycles == 2
    assert blockers.NO_PROGRESS in agree().get(4847, set())
    SimJob.objects.filter(id=103).update(status="Done")
    run_cycle(["sync"])
    assert TransformationState.objects.get(pk=4847).unchanged_cycles == 0
    assert blockers.NO_PROGRESS not in agree().get(4847, set())


def test_the_engine_stores_what_it_saw_and_the_next_cycle_replaces_it(chain_synced):
    # 4848 waits for 4847; the engine's dry run reports the same blockers it stores.
    stored = attention.blockers_of(4848)
    assert [b.code for b in stored] == [blockers.WAITING] and stored[0].related == 4847
    outcome = run_cycle(["sync"], dry_run=True).outcomes[4848]
    assert outcome.blockers == stored
