"""The failover and report commands: output, JSON, and one clear message for bad input."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from failover.models import ActionLog, Cycle
from failover.simulated.scenario import to_json
from failover.simulated.store import dump
from tests.factories import chain_scenario, load_scenario, seed_policy

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def chain():
    seed_policy()
    load_scenario(chain_scenario())


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_cycle_dry_run_prints_decisions_and_changes_nothing(chain):
    before = to_json(dump())
    out = run("failover", "cycle", "--dry-run")
    assert "4846: complete: all 3 files Processed" in out
    assert "4847: flush: 1 Unused file, fewer than the group size 50" in out
    assert "Dry run: 3 transformations, would do 1 complete, 1 flush, 1 sync" in out
    assert to_json(dump()) == before and not Cycle.objects.exists()


def test_cycle_json_is_data(chain):
    data = json.loads(run("failover", "cycle", "--json"))
    assert data["dry_run"] is False and data["cycle"] == Cycle.objects.get().pk
    by_t = {t["transformation"]: t for t in data["transformations"]}
    assert [d["kind"] for d in by_t[4847]["decisions"]] == ["sync", "flush"]
    assert by_t[4847]["decisions"][1] == {
        "kind": "flush", "transformation": 4847, "status": "Flush", "expected": "Active",
        "reason": "1 Unused file, fewer than the group size 50",
    }
    [waiting] = by_t[4848]["blockers"]
    assert (waiting["code"], waiting["count"], waiting["related"]) == ("waiting", 1, 4847)


def test_cycle_on_one_transformation_with_only_some_actions(chain):
    run("failover", "cycle", "--transformation", "4847", "--only", "sync")
    assert list(ActionLog.objects.values_list("transformation_id", "kind")) == [(4847, "sync")]


def test_an_unknown_transformation_is_one_clear_message(chain):
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("failover", "cycle", "--transformation", "999", stdout=out)
    assert exit_info.value.code == 1
    assert "cycle stopped: transformation 999 does not exist" in out.getvalue()
    with pytest.raises(CommandError, match="transformation 999 does not exist"):
        call_command("report", "999")


def test_report_live_and_stored_give_the_same_numbers(chain):
    run("failover", "cycle")
    live = json.loads(run("report", "4847", "--format", "json"))
    stored = json.loads(run("report", "4847", "--format", "json", "--stored"))
    assert live == stored
    assert live["total"] == 3
    assert [(s["status"], s["count"]) for s in live["statuses"]] == [("Done", 1), ("Failed", 1), ("Killed", 1)]
    table = run("report", "4847", "--stored")
    assert table.startswith(f"Stored by cycle {Cycle.objects.get().pk} at ")
    assert "Total # tasks:" in table
    csv = run("report", "4847", "--format", "csv")
    assert csv.splitlines()[0] == "transformation,status,minor_status,application_status,site,count"


def test_stored_report_without_a_cycle_says_so(chain):
    with pytest.raises(CommandError, match="has no stored aggregates"):
        call_command("report", "4847", "--stored")
    with pytest.raises(CommandError, match="--cycle goes with --stored"):
        call_command("report", "4847", "--cycle", "3")


def test_generate_refuses_half_a_large_workload():
    with pytest.raises(CommandError, match="--transformations and --jobs go together"):
        call_command("simdirac", "generate", "--transformations", "10")


def test_import_config_then_policy_shows_it(tmp_path):
    cfg = tmp_path / "agent.cfg"
    cfg.write_text("Systems\n{\n Transformation\n {\n  Agents\n  {\n   TransformationFailoverAgent\n   {\n"
                   "    Flush = Merging\n    MaxReassign = 4\n   }\n  }\n }\n}\n")
    run("failover", "import-config", str(cfg))
    out = run("failover", "policy")
    assert "Flush: Merging" in out and "MaxReassign: 4" in out


def test_prune_drops_old_cycles_and_aggregates_but_keeps_the_audit_log(chain, time_machine):
    time_machine.move_to("2026-01-01 10:00:00Z", tick=False)
    run("failover", "cycle")
    old_cycle = Cycle.objects.get()
    time_machine.move_to("2026-11-25 10:00:00Z", tick=False)
    load_scenario(chain_scenario())
    run("failover", "cycle")
    out = run("failover", "prune", "--keep-days", "30")
    assert "removed 1 cycle, 3 stored snapshots" in out
    assert not Cycle.objects.filter(pk=old_cycle.pk).exists()
    assert Cycle.objects.count() == 1
    assert ActionLog.objects.filter(created__year=2026, created__month=1).exists()
    assert json.loads(run("report", "4847", "--stored", "--format", "json"))["total"] == 3
