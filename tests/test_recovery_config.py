"""Importing DIRAC's DataRecoveryAgent section (failover/config_import.py) into the recovery policy."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from failover.config_import import parse_text
from failover.errors import ConfigurationError
from failover.models import Policy, RecoveryPolicy

BOTH = """\
Operations
{
  Defaults
  {
    Transformations
    {
      FilesMaxResetCounter = 7
      ExtendableTransfTypes = MCSimulation
      DataProcessing = MCSimulation, Merging, Processing
    }
  }
}
Systems
{
  Transformation
  {
    Agents
    {
      TransformationFailoverAgent
      {
        PollingTime = 600
        Reassign = Merging
        MaxReassign = 3
      }
      DataRecoveryAgent
      {
        PollingTime = 1800
        EnableFlag = True
        TransformationStatus = Active, Completing, Stopped
        TransformationsToIgnore = 12, 13
        MailTo = ops@example.org
        PrintEvery = 200
      }
    }
  }
}
"""

RECOVERY_ONLY = """\
Systems
{
  DataRecoveryAgent
  {
    EnableFlag = False
    TransformationsWithInput = Merging
    TransformationsNoInput = MCSimulation
  }
}
"""


def write(tmp_path, text, name="agent.cfg"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_both_sections_parse_into_both_policies():
    imported = parse_text(BOTH)
    assert imported.has_failover and imported.values["max_reassign"] == 3
    rec = imported.recovery
    assert rec.values == {
        "polling_time": 1800,
        "mode": "act",
        "transformation_statuses": ["Active", "Completing", "Stopped"],
        "transformations_to_ignore": [12, 13],
        "mail_to": ["ops@example.org"],
        "files_max_reset_counter": 7,
        # The agent's defaults from Operations when its own options are absent.
        "types_no_input": ["MCSimulation"],
        "types_with_input": ["Merging", "Processing"],
    }
    assert rec.path == "/Systems/Transformation/Agents/DataRecoveryAgent"
    assert any(item.startswith("DataRecoveryAgent/PrintEvery") for item in rec.ignored)


def test_recovery_only_section():
    imported = parse_text(RECOVERY_ONLY)
    assert not imported.has_failover
    assert imported.recovery.values == {"mode": "propose", "types_with_input": ["Merging"],
                                        "types_no_input": ["MCSimulation"]}


BAD = [
    ("unknown option", "DataRecoveryAgent\n{\n  EnableFlg = True\n}\n",
     "x.cfg: unknown option 'EnableFlg' in /DataRecoveryAgent (known: EnableFlag, MailFrom, MailTo, PollingTime, "
     "TransformationStatus, TransformationsNoInput, TransformationsToIgnore, TransformationsWithInput)"),
    ("bad flag", "DataRecoveryAgent\n{\n  EnableFlag = maybe\n}\n",
     "x.cfg: /DataRecoveryAgent/EnableFlag = 'maybe' must be True or False"),
    ("bad ignore list", "DataRecoveryAgent\n{\n  TransformationsToIgnore = 12, twelve\n}\n",
     "x.cfg: TransformationsToIgnore = '12, twelve' must be transformation ids"),
    ("bad polling time", "DataRecoveryAgent\n{\n  PollingTime = 0\n}\n",
     "x.cfg: /DataRecoveryAgent/PollingTime = '0' must be positive"),
    ("bad counter", "Operations\n{\n  Transformations\n  {\n    FilesMaxResetCounter = ten\n  }\n}\n"
     "DataRecoveryAgent\n{\n  EnableFlag = False\n}\n", "x.cfg: FilesMaxResetCounter = 'ten' is not a whole number"),
    ("two counters", "Operations\n{\n  Defaults\n  {\n    Transformations\n    {\n      FilesMaxResetCounter = 5\n"
     "    }\n  }\n  Prod\n  {\n    Transformations\n    {\n      FilesMaxResetCounter = 6\n    }\n  }\n}\n"
     "DataRecoveryAgent\n{\n  EnableFlag = False\n}\n", "x.cfg: FilesMaxResetCounter is '5' in"),
    ("option twice", "DataRecoveryAgent\n{\n  PollingTime = 10\n  PollingTime = 20\n}\n",
     "x.cfg: line 4: PollingTime is set again in DataRecoveryAgent"),
    ("two sections", "A\n{\n  DataRecoveryAgent\n  {\n    PollingTime = 1\n  }\n}\n"
     "B\n{\n  DataRecoveryAgent\n  {\n    PollingTime = 2\n  }\n}\n", "x.cfg: DataRecoveryAgent appears 2 times"),
    ("neither section", "Systems\n{\n  Other\n  {\n    A = 1\n  }\n}\n",
     "x.cfg: no TransformationFailoverAgent section found (nor a DataRecoveryAgent section)"),
]


@pytest.mark.parametrize("text, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_recovery_options_give_one_clear_line(text, message):
    with pytest.raises(ConfigurationError) as info:
        parse_text(text, "x.cfg")
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.django_db
def test_import_config_stores_both_policies(tmp_path, capsys):
    call_command("failover", "import-config", str(write(tmp_path, BOTH)))
    policy = Policy.current()
    assert policy.pk and policy.max_reassign == 3 and policy.reassign_types == ["Merging"]
    rec = RecoveryPolicy.current()
    assert rec.pk and rec.mode == "act" and rec.polling_time == 1800 and rec.files_max_reset_counter == 7
    assert rec.transformations_to_ignore == [12, 13]
    assert rec.source.endswith("agent.cfg:/Systems/Transformation/Agents/DataRecoveryAgent")
    out = capsys.readouterr().out
    assert "Created recovery policy 'default'" in out and "FilesMaxResetCounter: 7" in out


@pytest.mark.django_db
def test_import_of_recovery_only_leaves_the_failover_policy(tmp_path):
    call_command("failover", "import-config", str(write(tmp_path, BOTH)))
    call_command("failover", "import-config", str(write(tmp_path, RECOVERY_ONLY, "rec.cfg")))
    assert Policy.objects.get().max_reassign == 3
    rec = RecoveryPolicy.objects.get()
    # Options absent from the new file go back to DIRAC's defaults, as a fresh import of the section.
    assert rec.mode == "propose" and rec.types_with_input == ["Merging"] and rec.files_max_reset_counter == 10
    assert rec.polling_time == 3600 and rec.transformations_to_ignore == []


@pytest.mark.django_db
def test_a_bad_recovery_section_changes_nothing(tmp_path):
    call_command("failover", "import-config", str(write(tmp_path, BOTH)))
    bad = BOTH.replace("EnableFlag = True", "EnableFlag = True\n        Foo = 1")
    with pytest.raises(CommandError, match="unknown option 'Foo'"):
        call_command("failover", "import-config", str(write(tmp_path, bad, "bad.cfg")))
    assert RecoveryPolicy.objects.get().mode == "act"
    assert Policy.objects.get().max_reassign == 3


def test_recovery_policy_defaults_are_diracs():
    rec = RecoveryPolicy()
    assert rec.mode == "propose" and rec.transformation_statuses == ["Active", "Completing"]
    assert rec.types_no_input == ["MCSimulation"] and rec.files_max_reset_counter == 10 and rec.polling_time == 3600
    assert rec.selects(5, "Merging", "Active") and not rec.selects(5, "Merging", "Stopped")
    assert rec.selects(5, "MCSimulation", "Completing") and not rec.with_input("MCSimulation")
    rec.transformations_to_ignore = [5]
    assert not rec.selects(5, "Merging", "Active")


@pytest.mark.django_db
def test_policy_command_shows_the_recovery_policy(tmp_path, capsys):
    call_command("failover", "policy")
    assert "Recovery policy 'default' (defaults, not stored" in capsys.readouterr().out
    call_command("failover", "import-config", str(write(tmp_path, BOTH)))
    capsys.readouterr()
    call_command("failover", "policy")
    out = capsys.readouterr().out
    assert "Recovery policy 'default'\n" in out and "Mode: act (EnableFlag True" in out
