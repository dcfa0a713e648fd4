"""A cycle against a DIRAC in trouble (simulated): the circuit breaker, failed cycles' counts and
exit status, the reconciling of a pending reassign, a cycle that dies."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError

from failover import circuit as circuit_breaker, cycles
from failover.engine import Engine
from failover.models import ActionLog, Cycle, CycleItem, ReassignCounter
from failover.simulated.backend import SimulatedDirac
from failover.simulated.generate import generate_large
from failover.simulated.models import SimFile, SimTask
from failover.simulated.store import load
from tests.factories import chain_scenario, load_scenario, seed_policy

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def many(settings):
    """30 Active transformations, each read in a batch of its own."""
    settings.FAILOVER_BATCH_SIZE = 1
    seed_policy(transformation_statuses=[])
    scenario = generate_large(30, 90, seed=3, failure_rate=0.2)
    load(scenario)
    return [t["id"] for t in scenario.transformations]


def run(backend, **kw):
    return Engine(backend, retries=kw.pop("retries", 2), backoff=0, **kw).run_cycle()


def test_a_dead_service_opens_the_circuit_and_the_rest_is_skipped(many):
    backend = SimulatedDirac(faults="tasks:timeout%1.0")
    result = run(backend, circuit_failures=3)
    states = [result.outcomes[t].state for t in sorted(result.outcomes)]
    # The first transformation's read tried three times (a call and two retries), all without an
    # answer: the circuit opened, and nobody called DIRAC's task service again this cycle.
    assert backend.calls.snapshot()["tasks"] == 3
    assert states[0] == "error" and "no answer" in result.outcomes[min(result.outcomes)].message
    assert states[1:] == ["skipped"] * (len(many) - 1)
    assert {o.message for o in list(result.outcomes.values())[1:]} == {circuit_breaker.SKIPPED}
    assert result.failed and result.errors == 1 and result.skipped == len(many) - 1
    assert "DIRAC unreachable: 29 not tried, the next cycle tries again" in result.summary()
    cycle = Cycle.objects.get(pk=result.cycle_id)
    assert cycle.errors == 1 and cycle.outcomes[str(many[5])] == "skipped: DIRAC unreachable"
    assert not ActionLog.objects.exists()


def test_without_the_breaker_every_transformation_pays_the_retries(many):
    backend = SimulatedDirac(faults="tasks:timeout%1.0")
    result = run(backend, circuit_failures=0)
    assert backend.calls.snapshot()["tasks"] == 3 * len(many)
    assert result.errors == len(many)


def test_answers_between_failures_keep_the_circuit_closed(many):
    # Every other tasks read times out and its retry answers: never three in a row.
    backend = SimulatedDirac(faults=",".join(f"tasks:timeout@{n}" for n in range(1, 60, 2)))
    result = run(backend, circuit_failures=2, retries=1)
    assert result.errors == 0 and result.skipped == 0


def test_a_refusal_is_an_answer_and_does_not_open_the_circuit(many):
    backend = SimulatedDirac(faults="tasks:error%1.0")
    result = run(backend, circuit_failures=2)
    assert result.errors == len(many) and result.skipped == 0


def test_the_next_cycle_tries_again_and_settles_everything(many):
    first = run(SimulatedDirac(faults="jobs:timeout%1.0"), circuit_failures=3)
    assert first.skipped == len(many) - 1
    second = run(SimulatedDirac(), circuit_failures=3)
    assert second.errors == 0 and second.skipped == 0
    assert len(second.outcomes) == len(many)
    assert not ActionLog.objects.exclude(state="done").exists()


def test_a_write_without_answer_counts_and_its_reconciling_read_closes_the_count():
    seed_policy()
    data = chain_scenario()
    data["transformations"][0]["status"] = "Stopped"
    data["files"] = [f for f in data["files"] if f["lfn"] != "/p/u1.h5"]
    load_scenario(data)
    result = run(SimulatedDirac(faults="set_file_status:lost@1"), circuit_failures=1)
    # The write's answer was lost (one failure: the circuit opened at once, threshold 1), so
    # its reconciling read was not sent: the action stays pending, nothing is counted twice.
    action = ActionLog.objects.get(kind="reassign")
    assert action.state == "pending" and ReassignCounter.objects.count() == 0
    assert result.failed
    run(SimulatedDirac(), circuit_failures=1)
    action.refresh_from_db()
    assert action.state == "done" and ReassignCounter.objects.count() == 3


def test_a_fanned_out_cycle_shares_its_circuit_in_a_worker(many, settings):
    settings.SIMDIRAC_FAULTS = "tasks:timeout%1.0"
    settings.DIRAC_CIRCUIT_FAILURES = 3
    settings.DIRAC_RETRIES = 0
    cycle = cycles.start_cycle(trigger="test")  # enqueues on commit: never, inside this test
    for tid in many:
        cycles.treat_in_cycle(cycle.pk, tid, None)
    items = dict(CycleItem.objects.filter(cycle=cycle).values_list("transformation_id", "state"))
    assert sorted(items.values()) == ["error"] * 3 + ["skipped"] * (len(many) - 3)
    cycle.refresh_from_db()
    assert cycle.state == "finished" and cycle.errors == 3
    # The next cycle has a circuit of its own.
    settings.SIMDIRAC_FAULTS = ""
    again = cycles.start_cycle(trigger="test")
    for tid in many:
        cycles.treat_in_cycle(again.pk, tid, None)
    assert set(CycleItem.objects.filter(cycle=again).values_list("state", flat=True)) == {"ok"}


# -- a failed cycle's counts, summary and exit status -------------------------------------------------


def test_a_cycle_that_stops_at_once_is_not_zero_errors(many):
    result = run(SimulatedDirac(faults="transformations:timeout%1.0"))
    assert result.message.startswith("cycle stopped: ")
    assert result.errors == 1 and result.failed
    summary = result.summary()
    assert summary.startswith(f"Cycle {result.cycle_id} failed (cycle stopped: ") and "; 1 error, " in summary
    assert "\n" not in summary
    cycle = Cycle.objects.get(pk=result.cycle_id)
    assert (cycle.state, cycle.errors) == ("failed", 1)


def test_a_fanned_out_cycle_that_cannot_select_is_one_error(settings, many):
    settings.SIMDIRAC_FAULTS = "transformations:error%1.0"
    cycle = cycles.start_cycle(trigger="test")
    assert (cycle.state, cycle.errors) == ("failed", 1)


def command(*args):
    out, err = StringIO(), StringIO()
    code = 0
    try:
        call_command("failover", "cycle", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("faults", ["set_transformation_status:error@1", "jobs:error@1", "tasks:timeout%1.0"])
def test_any_failed_transformation_exits_1_with_a_one_line_summary(settings, faults):
    seed_policy()
    load_scenario(chain_scenario())
    settings.SIMDIRAC_FAULTS = faults
    settings.DIRAC_RETRIES = 0
    code, out, err = command()
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and re.search(r" errors?, ", err) and not err.startswith("Cycle None")
    assert out.strip().splitlines()[-1] == err.strip()
    code, out, err = command("--json")
    assert code == 1
    data = json.loads(out)  # nothing but the JSON on stdout
    assert data["errors"] >= 1 and data["summary"] == err.strip()


def test_a_good_cycle_exits_0_and_says_nothing_on_stderr():
    seed_policy()
    load_scenario(chain_scenario())
    code, out, err = command("--json")
    assert (code, err) == (0, "") and json.loads(out)["errors"] == 0


class GoneDatabase(SimulatedDirac):
    """The simulated DIRAC, but our database goes away once the transformations were read."""

    def file_counts(self, ids):
        raise DatabaseError("disk I/O error")


def test_a_cycle_that_dies_does_not_stay_running():
    seed_policy()
    load_scenario(chain_scenario())
    with pytest.raises(DatabaseError):
        run(GoneDatabase())
    cycle = Cycle.objects.get()
    assert cycle.state == "failed" and cycle.finished is not None
    assert cycle.message == "cycle stopped: DatabaseError: disk I/O error"


# -- reconciling a pending reassign ---------------------------------------------------------------


def test_reconciling_counts_only_the_files_that_went_unused_from_their_task():
    seed_policy()
    data = chain_scenario()
    data["transformations"][0]["status"] = "Stopped"
    data["tasks"].append({"transformation": 4847, "task": 4, "job": 0, "status": "Created"})
    load_scenario(data)
    # A reassign whose answer never came back (a crash): DIRAC set /p/a1.h5 Unused as asked; then,
    # before we read it back, DIRAC itself processed /p/a2.h5 and gave /p/k1.h5 a new task, and
    # /p/d1.h5 went Unused from another task than the one asked.
    action = ActionLog.objects.create(
        transformation_id=4847, kind="reassign", state="pending",
        details={"tasks": {"1": ["/p/a1.h5", "/p/a2.h5"], "2": ["/p/k1.h5"], "9": ["/p/d1.h5"]}},
    )
    SimFile.objects.filter(lfn="/p/a1.h5").update(status="Unused", error_count=1)
    SimFile.objects.filter(lfn="/p/a2.h5").update(status="Processed")
    SimFile.objects.filter(lfn="/p/k1.h5").update(status="Assigned", task=4)
    SimFile.objects.filter(lfn="/p/d1.h5").update(status="Unused", task=3)
    assert SimTask.objects.filter(transformation=4847, task=4).exists()
    Engine(SimulatedDirac(), retries=0, backoff=0)._reconcile(action)
    action.refresh_from_db()
    assert action.state == "done" and action.details["moved"] == ["/p/a1.h5"]
    assert action.outcome.startswith("1 of 4 files")
    assert dict(ReassignCounter.objects.values_list("lfn", "count")) == {"/p/a1.h5": 1}


def test_reconciling_with_nothing_moved_is_interrupted_and_counts_nothing():
    seed_policy()
    load_scenario(chain_scenario())
    action = ActionLog.objects.create(
        transformation_id=4847, kind="reassign", state="pending", details={"tasks": {"1": ["/p/a1.h5"]}})
    SimFile.objects.filter(lfn="/p/a1.h5").update(status="Processed")
    Engine(SimulatedDirac(), retries=0, backoff=0)._reconcile(action)
    action.refresh_from_db()
    assert action.state == "interrupted" and not ReassignCounter.objects.exists()


# -- the circuit itself -------------------------------------------------------------------------------


def test_the_circuit_counts_calls_in_a_row_of_any_kind_and_of_each_kind():
    from failover.errors import BackendTimeout

    no_answer = BackendTimeout("connection refused", call="x")
    c = circuit_breaker.Circuit(3)
    c.failure("set_file_status", no_answer)
    c.failure("files", no_answer)
    assert not c.is_open
    c.failure("tasks", no_answer)  # a service down: whatever it is asked, no answer
    assert c.is_open and c.describe().startswith("DIRAC unreachable: 3 calls in a row got no answer")

    c = circuit_breaker.Circuit(3)
    for _ in range(2):
        c.failure("jobs", no_answer)
        c.success("tasks")  # another service answers in between
    assert not c.is_open
    c.failure("jobs", no_answer)
    assert c.is_open

    c = circuit_breaker.Circuit(0)
    for _ in range(100):
        c.failure("jobs", no_answer)
    assert not c.is_open


def test_an_open_circuit_sends_nothing():
    backend = SimulatedDirac()
    c = circuit_breaker.Circuit(1)
    guarded = circuit_breaker.guard(backend, c)
    guarded.transformations()
    c.failure("tasks", Exception("refused"))
    with pytest.raises(circuit_breaker.CircuitOpen):
        guarded.transformations()
    assert backend.calls.snapshot() == {"transformations": 1}
    assert guarded.name == backend.name and guarded.calls is backend.calls
