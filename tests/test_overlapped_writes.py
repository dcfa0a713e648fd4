"""Overlapped writes (issue 14, item 4): a cycle's DIRAC writes of different transformations in
flight together, at most FAILOVER_DIRAC_CONCURRENCY at once, each logged pending before its call
and settled after in the calling thread, answers never mixed; concurrency 1 as before.

The simulated DIRAC here is the real one with injected latency; the tests assert on the recorded
call intervals and on what was settled, never on wall time.
"""

from __future__ import annotations

import re
import threading
import time

import pytest

from failover.engine import Engine
from failover.models import ActionLog, ReassignCounter
from failover.simulated.fastpath import FastSimulatedDirac
from failover.simulated.generate import generate_large
from failover.simulated.store import dump
from tests.factories import load_scenario, seed_policy

# Other threads must see the simulator's state: committed, not inside the test's transaction.
pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

WRITES = ("set_task_status", "set_file_status", "set_transformation_status")


class Recording:
    """The simulated DIRAC as it is, with each write's interval and thread recorded (and, for some
    transformations, an extra delay so that answers come back in another order than asked)."""

    def __init__(self, backend, slower: dict[int, float] | None = None) -> None:
        self._backend = backend
        self.slower = slower or {}
        self.intervals: list[tuple[int, str, float, float, int]] = []
        self._lock = threading.Lock()

    def __getattr__(self, name):
        target = getattr(self._backend, name)
        if name not in WRITES:
            return target

        def call(transformation, *args, **kwargs):
            start = time.monotonic()
            try:
                time.sleep(self.slower.get(transformation, 0.0))
                return target(transformation, *args, **kwargs)
            finally:
                with self._lock:
                    self.intervals.append((transformation, name, start, time.monotonic(), threading.get_ident()))

        return call

    def max_in_flight(self) -> int:
        events = sorted([(s, 1) for _, _, s, _, _ in self.intervals] + [(e, -1) for _, _, _, e, _ in self.intervals])
        now = peak = 0
        for _, delta in events:
            now += delta
            peak = max(peak, now)
        return peak


def workload() -> None:
    """Eight three-step productions, every task behind its job: every transformation writes."""
    seed_policy()
    load_scenario(generate_large(24, 24 * 20, catch_up=True, seed=3).as_dict())


def state() -> dict:
    d = dump()
    return {
        "t": {t["id"]: t["status"] for t in d.transformations},
        "files": {(f["transformation"], f["lfn"]): (f["status"], f["error_count"]) for f in d.files},
        "tasks": {(t["transformation"], t["task"]): t["status"] for t in d.tasks},
    }


def log_rows() -> list[tuple]:
    return sorted(ActionLog.objects.values_list("transformation_id", "kind", "state", "outcome"))


def cycle(backend, concurrency: int, **kw):
    return Engine(backend, retries=0, backoff=0, concurrency=concurrency, **kw).run_cycle()


def test_writes_overlap_within_the_limit_and_end_as_one_after_another():
    workload()
    overlapped = Recording(FastSimulatedDirac(latency_ms=20))
    result = cycle(overlapped, 4)
    assert not result.failed, result.summary()
    main = threading.get_ident()
    assert overlapped.intervals and all(thread != main for *_, thread in overlapped.intervals)
    assert 1 < overlapped.max_in_flight() <= 4
    # One transformation's writes never overlap each other: they follow the order of its actions.
    by_t: dict[int, list] = {}
    for tid, _, start, end, _ in overlapped.intervals:
        by_t.setdefault(tid, []).append((start, end))
    for spans in by_t.values():
        spans.sort()
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))
    # Every DIRAC call counted, across threads: what the recorder saw is what the cycle reports.
    # (set_file_status of fewer than 1,000 files costs DIRAC's client two RPCs: a read, then the write.)
    writes = sum(n for method, n in result.calls.items() if method in WRITES)
    assert writes == sum(2 if method == "set_file_status" else 1 for _, method, *_ in overlapped.intervals)
    after, log = state(), log_rows()

    # The same cycle one write after another, from the same start: the same end state, the same log.
    from django.core.management import call_command

    call_command("flush", "--noinput", database="default", verbosity=0)
    workload()
    sequential = Recording(FastSimulatedDirac())
    again = cycle(sequential, 1)
    assert {thread for *_, thread in sequential.intervals} == {main}
    assert sequential.max_in_flight() == 1
    assert state() == after and log_rows() == log
    assert again.calls == result.calls


def test_a_failed_write_fails_only_its_own_transformation():
    workload()
    backend = Recording(FastSimulatedDirac(latency_ms=10, faults="set_file_status:error@2"))
    result = cycle(backend, 8)
    reassigns = ActionLog.objects.filter(kind="reassign")
    failed = list(reassigns.filter(state="failed"))
    assert len(failed) == 1 and failed[0].outcome == "DIRAC refused"
    loser = failed[0].transformation_id
    assert result.outcomes[loser].state == "error"
    # Every other transformation's writes were settled, done, with their counters.
    assert reassigns.exclude(state__in=["done", "failed"]).count() == 0
    assert reassigns.filter(state="done").count() == reassigns.count() - 1
    assert not ActionLog.objects.filter(state="pending").exists()
    assert not ReassignCounter.objects.filter(transformation_id=loser).exists()
    others = {o.transformation for o in result.outcomes.values() if o.transformation != loser}
    assert all(result.outcomes[t].state == "ok" for t in others)


def test_answers_go_back_to_the_transformation_that_asked():
    workload()
    # Early transformations answer slowest, so answers come back in another order than asked.
    backend = Recording(FastSimulatedDirac(latency_ms=5), slower={tid: 0.06 / tid for tid in range(1, 25)})
    result = cycle(backend, 8)
    assert not result.failed, result.summary()
    finished = [tid for tid, *_ in sorted(backend.intervals, key=lambda i: i[3])]
    started = [tid for tid, *_ in sorted(backend.intervals, key=lambda i: i[2])]
    assert finished != started
    reassigns = ActionLog.objects.filter(kind="reassign", state="done")
    assert reassigns.exists()
    for action in reassigns:
        own = f"/sim/{action.transformation_id:08d}/"
        written = action.details["written"]
        assert written and all(lfn.startswith(own) for lfn in written), (action.transformation_id, written)
        asked = {lfn for lfns in action.details["tasks"].values() for lfn in lfns}
        assert set(written) <= asked
        counted = set(ReassignCounter.objects.filter(transformation_id=action.transformation_id)
                      .values_list("lfn", flat=True))
        assert counted == set(action.details["moved"])
    for action in ActionLog.objects.filter(kind="sync"):
        # "N tasks set S" for the tasks of its own transformation only.
        asked = sum(len(ids) for ids in action.details["tasks"].values())
        said = sum(int(n.replace(",", "")) for n in re.findall(r"([\d,]+) tasks? set", action.outcome))
        assert said == asked


def test_a_child_starts_after_its_parents_turn():
    workload()
    backend = Recording(FastSimulatedDirac(latency_ms=10))
    cycle(backend, 8)
    first_write = {}
    last_write = {}
    for tid, _, start, end, _ in backend.intervals:
        first_write[tid] = min(first_write.get(tid, start), start)
        last_write[tid] = max(last_write.get(tid, end), end)
    # generate_large: three steps per production, ids 1, 2, 3 then 4, 5, 6 ...
    for child in first_write:
        parent = child - 1 if (child - 1) % 3 else None
        if parent in last_write:
            assert first_write[child] >= last_write[parent]


@pytest.mark.django_db(transaction=False, databases="__all__")
def test_inside_an_open_transaction_the_simulator_is_called_from_this_thread_only():
    # A test's transaction holds the simulator's state: another thread would not see it.
    workload()
    backend = Recording(FastSimulatedDirac())
    assert backend.concurrent_calls is False
    result = cycle(backend, 8)
    assert not result.failed and backend.intervals
    assert {thread for *_, thread in backend.intervals} == {threading.get_ident()}


def test_writes_that_time_out_open_the_circuit_and_the_rest_is_skipped_not_lost():
    workload()
    # Every file-status write times out (DIRAC acted or not: unknown), three in a row open the circuit.
    backend = Recording(FastSimulatedDirac(latency_ms=10, faults="set_file_status:timeout%1.0,seed=1"))
    result = Engine(backend, retries=0, backoff=0, concurrency=8, circuit_failures=3).run_cycle()
    reassigns = ActionLog.objects.filter(kind="reassign")
    # A write that got no answer stays pending (its reconcile could not read DIRAC either, the
    # circuit being open) or was settled from what DIRAC shows; none is lost or counted twice.
    assert reassigns.exists()
    assert set(reassigns.values_list("state", flat=True)) <= {"pending", "interrupted", "failed", "done"}
    for action in reassigns.filter(state="pending"):
        assert "outcome unknown" in action.error
    for action in reassigns.filter(state="failed"):
        assert action.outcome == "not sent: DIRAC unreachable"
    assert not ReassignCounter.objects.exists()  # nothing reached Unused
    skipped = [o for o in result.outcomes.values() if o.state == "skipped"]
    assert skipped and all(o.message == "DIRAC unreachable" for o in skipped)
    # Every transformation has its outcome, and no lock is left behind.
    assert len(result.outcomes) == 24
    from failover.models import TransformationState

    assert not TransformationState.objects.exclude(locked_by="").exists()
