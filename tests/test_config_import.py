"""Importing the agent's options from a DIRAC configuration file (failover/config_import.py) and
the ``failover import-config`` command.

Reference: the agent's options and defaults (README, "The policy") and diraccfg's casting.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from failover.config_import import parse_path, parse_text
from failover.errors import ConfigurationError
from failover.models import Policy
from failover.rules import RulesPolicy
from tests.sites import manage

ROOT = Path(__file__).resolve().parent.parent

# The seed's figure "Configuration of the agent in the CS", pasted as it is.
SEED_FIGURE = """\
TransformationFailoverAgent
├── PollingTime = 600
├── maxThreadsInPool = 10
├── MailFrom =
├── MailTo = natthan.pigoux@cta-consortium.org, arrabito@in2p3.fr
├── TransformationStatus = Active
├── Report =
├── Reassign = DataReprocessing, Merging, Training, ApplyModel
├── Flush = DataReprocessing, Merging
├── MaxReassign = 3
└── Complete = DataReprocessing, Merging, Training, ApplyModel
"""

SEED_TYPES = ["DataReprocessing", "Merging", "Training", "ApplyModel"]
SEED_VALUES = {
    "polling_time": 600,
    "mail_from": "",
    "mail_to": ["natthan.pigoux@cta-consortium.org", "arrabito@in2p3.fr"],
    "transformation_statuses": ["Active"],
    # "Report =" is present but empty: an empty list, no fall-back (reference 4.1).
    "report_types": [],
    "reassign_types": SEED_TYPES,
    "flush_types": ["DataReprocessing", "Merging"],
    "max_reassign": 3,
    "complete_types": SEED_TYPES,
}

FULL_CFG = """\
# A DIRAC configuration with the agent where it lives.
DIRAC
{
  Setup = CTAO-Production
}
Systems
{
  Transformation
  {
    Agents
    {
      TransformationAgent
      {
        PollingTime = 120
      }
      TransformationFailoverAgent
      {
        PollingTime = 600
        MaxCycles = 500
        TransformationStatus = Active, Completing
        TransformationTypes = Merging, DataReprocessing
        Complete = Merging
        Flush = Merging
        Reassign = Merging, DataReprocessing
        MaxReassign = 4
        MaxFlush = 1
        MailTo = ops@example.org
        MailFrom = dirac@example.org
        htmlReport = False
      }
    }
  }
}
"""


def write(tmp_path: Path, text: str, name: str = "agent.cfg") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- parsing --------------------------------------------------------------------------------------


def test_it_reads_the_seed_figure_as_pasted():
    imported = parse_text(SEED_FIGURE)
    assert imported.values == SEED_VALUES
    assert imported.path == "/TransformationFailoverAgent"
    assert [i.split(" ")[0] for i in imported.ignored] == ["maxThreadsInPool"]
    # No TransformationTypes (every type) and no MaxFlush (the default) in the seed.
    assert "transformation_types" not in imported.values
    assert "max_flush" not in imported.values


def test_it_reads_the_seed_figure_indented_and_with_windows_line_ends():
    text = "\r\n".join("    " + line for line in SEED_FIGURE.splitlines()) + "\r\n"
    assert parse_text(text).values == SEED_VALUES


def test_it_reads_the_seed_figure_without_its_root_line():
    imported = parse_text(SEED_FIGURE.split("\n", 1)[1])
    assert imported.values == SEED_VALUES
    assert imported.path == "(bare section)"


def test_it_reads_the_example_shipped_with_the_project():
    imported = parse_path(ROOT / "examples" / "seed-agent.cfg")
    assert imported.values == SEED_VALUES


def test_it_turns_the_seed_into_the_seed_rules():
    policy = Policy(**parse_text(SEED_FIGURE).values)
    assert policy.as_rules_policy() == RulesPolicy(
        complete_types=frozenset(SEED_TYPES),
        flush_types=frozenset({"DataReprocessing", "Merging"}),
        reassign_types=frozenset(SEED_TYPES),
        report_types=frozenset(),
        max_reassign=3,
        max_flush=2,
    )
    assert policy.polling_time == 600


def test_it_finds_the_section_at_any_depth():
    imported = parse_text(FULL_CFG)
    assert imported.path == "/Systems/Transformation/Agents/TransformationFailoverAgent"
    assert imported.values == {
        "polling_time": 600,
        "transformation_statuses": ["Active", "Completing"],
        "transformation_types": ["Merging", "DataReprocessing"],
        "complete_types": ["Merging"],
        "flush_types": ["Merging"],
        "reassign_types": ["Merging", "DataReprocessing"],
        "max_reassign": 4,
        "max_flush": 1,
        "mail_to": ["ops@example.org"],
        "mail_from": "dirac@example.org",
        # Report absent: the value of TransformationTypes, as in the agent.
        "report_types": ["Merging", "DataReprocessing"],
    }
    assert sorted(i.split(" ")[0] for i in imported.ignored) == ["MaxCycles", "htmlReport"]


def test_it_reads_a_cfg_whose_comments_draw_a_tree():
    text = FULL_CFG.replace("# A DIRAC configuration with the agent where it lives.", "# Systems └── Transformation")
    imported = parse_text(text)
    assert imported.path == "/Systems/Transformation/Agents/TransformationFailoverAgent"
    assert imported.values["max_reassign"] == 4


def test_it_reads_a_bare_file_of_options():
    imported = parse_text("# just the options\nMaxReassign = 5\nFlush = Merging ,, DataReprocessing,\n")
    assert imported.path == "(bare section)"
    assert imported.values == {"max_reassign": 5, "flush_types": ["Merging", "DataReprocessing"]}


def test_it_reads_a_bare_section():
    imported = parse_text("TransformationFailoverAgent\n{\n  MaxFlush = 0\n}\n")
    assert imported.values == {"max_flush": 0}


@pytest.mark.parametrize(
    "text, values",
    [
        ("Flush =\n", {"flush_types": []}),
        ("Flush = ,\n", {"flush_types": []}),
        ("Report =\nTransformationTypes = Merging\n", {"report_types": [], "transformation_types": ["Merging"]}),
        ("TransformationTypes = Merging, Training\n",
         {"transformation_types": ["Merging", "Training"], "report_types": ["Merging", "Training"]}),
        ("TransformationTypes =\n", {"transformation_types": [], "report_types": []}),
        ("Complete = Merging\n", {"complete_types": ["Merging"]}),
        ("Reassign = Merging\nReassign += Training\n", {"reassign_types": ["Merging", "Training"]}),
        ("MailTo = a@x.org,b@y.org\n", {"mail_to": ["a@x.org", "b@y.org"]}),
        ("MaxReassign = 0\n", {"max_reassign": 0}),
        ("PollingTime =  30 \n", {"polling_time": 30}),
        ("MailFrom =   noreply@ctao.dirac  \n", {"mail_from": "noreply@ctao.dirac"}),
        ("", None),
    ],
    ids=[
        "empty list",
        "only commas",
        "empty Report does not fall back",
        "Report falls back to TransformationTypes",
        "empty TransformationTypes",
        "Complete",
        "+= appends",
        "MailTo without spaces",
        "MaxReassign 0",
        "number with spaces",
        "MailFrom stripped",
        "empty file",
    ],
)
def test_it_casts_options_as_dirac_does(text, values):
    if values is None:
        with pytest.raises(ConfigurationError, match="no TransformationFailoverAgent section found"):
            parse_text(text)
        return
    assert parse_text(text).values == values


BAD = [
    # id, text, message
    ("missing section", "Systems\n{\n  Transformation\n  {\n    Agents\n    {\n"
     "      TransformationAgent\n      {\n        PollingTime = 1\n      }\n    }\n  }\n}\n",
     "x.cfg: no TransformationFailoverAgent section found"),
    ("two sections", "A\n{\n  TransformationFailoverAgent\n  {\n    MaxFlush = 1\n  }\n}\n"
     "B\n{\n  TransformationFailoverAgent\n  {\n    MaxFlush = 2\n  }\n}\n",
     "x.cfg: TransformationFailoverAgent appears 2 times (/A/TransformationFailoverAgent, "
     "/B/TransformationFailoverAgent); keep one"),
    ("unknown option", "TransformationFailoverAgent\n{\n  MaxReasign = 3\n}\n",
     "x.cfg: unknown option 'MaxReasign' in /TransformationFailoverAgent (known: Complete, Flush, MailFrom, "
     "MailTo, MaxFlush, MaxReassign, PollingTime, Reassign, Report, TransformationStatus, TransformationTypes)"),
    ("unknown option, case differs", "maxreassign = 3\n", "x.cfg: unknown option 'maxreassign' in (bare section)"),
    ("bad number", "MaxReassign = three\n", "x.cfg: MaxReassign = 'three' is not a whole number"),
    ("not a whole number", "MaxFlush = 2.5\n", "x.cfg: MaxFlush = '2.5' is not a whole number"),
    ("empty number", "MaxFlush =\n", "x.cfg: MaxFlush = '' is not a whole number"),
    ("negative number", "MaxReassign = -1\n", "x.cfg: MaxReassign = '-1' must be positive"),
    ("PollingTime 0", "PollingTime = 0\n", "x.cfg: PollingTime = '0' must be positive"),
    ("a subsection", "TransformationFailoverAgent\n{\n  Complete\n  {\n    Merging = 1\n  }\n}\n",
     "x.cfg: /TransformationFailoverAgent/Complete is a section; expected an option"),
    ("unbalanced braces: open", "TransformationFailoverAgent\n{\n  MaxFlush = 1\n",
     "x.cfg: not a DIRAC configuration (The cfg file seems to open more sections than it closes"),
    ("unbalanced braces: close", "TransformationFailoverAgent\n{\n  MaxFlush = 1\n}\n}\n",
     "x.cfg: not a DIRAC configuration (The cfg file seems to close more sections than it opens"),
]


@pytest.mark.parametrize("text, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_it_rejects_a_bad_file_with_a_clear_message(text, message):
    with pytest.raises(ConfigurationError) as info:
        parse_text(text, "x.cfg")
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_it_names_the_file_it_cannot_read(tmp_path):
    with pytest.raises(ConfigurationError) as info:
        parse_path(tmp_path / "nope.cfg")
    assert str(info.value) == f"cannot read {tmp_path / 'nope.cfg'}: No such file or directory"
    with pytest.raises(ConfigurationError) as info:
        parse_path(tmp_path)
    assert str(info.value) == f"cannot read {tmp_path}: Is a directory"
    binary = tmp_path / "binary.cfg"
    binary.write_bytes(b"\xff\xfe\x00PollingTime")
    with pytest.raises(ConfigurationError) as info:
        parse_path(binary)
    assert str(info.value) == f"{binary}: not a text file"


def test_it_names_the_file_and_section_it_read(tmp_path):
    path = write(tmp_path, FULL_CFG)
    imported = parse_path(path)
    assert imported.path == f"{path}:/Systems/Transformation/Agents/TransformationFailoverAgent"


# -- the command ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_stores_the_imported_policy(tmp_path, capsys):
    path = write(tmp_path, SEED_FIGURE)
    call_command("failover", "import-config", str(path))
    policy = Policy.objects.get(name="default")
    for field, value in SEED_VALUES.items():
        assert getattr(policy, field) == value, field
    # What the file does not say keeps the agent's default.
    assert policy.transformation_types == []
    assert policy.max_flush == 2
    assert policy.source == f"{path}:/TransformationFailoverAgent"
    out = capsys.readouterr().out
    assert f"Created policy 'default' from {path}:/TransformationFailoverAgent" in out
    assert "ignored: maxThreadsInPool" in out
    assert "MaxReassign: 3" in out
    assert "Report: (none)" in out


@pytest.mark.django_db
def test_it_updates_a_stored_policy_and_names_others(tmp_path, capsys):
    call_command("failover", "import-config", str(write(tmp_path, SEED_FIGURE)))
    call_command("failover", "import-config", str(write(tmp_path, "MaxReassign = 7\n", "b.cfg")))
    default = Policy.objects.get(name="default")
    assert default.max_reassign == 7
    assert default.complete_types == SEED_TYPES  # an update sets what the file says, nothing else
    assert "Updated policy 'default'" in capsys.readouterr().out
    call_command("failover", "import-config", str(write(tmp_path, FULL_CFG, "c.cfg")), "--name", "ops", "--use")
    assert Policy.objects.count() == 2
    assert Policy.objects.get(name="ops").report_types == ["Merging", "DataReprocessing"]
    assert Policy.current().name == "ops"
    assert "Policy 'ops' is the policy in use (disabled: 'default')" in capsys.readouterr().out


@pytest.mark.django_db
def test_it_changes_nothing_on_a_bad_file(tmp_path):
    call_command("failover", "import-config", str(write(tmp_path, SEED_FIGURE)))
    bad = write(tmp_path, "TransformationFailoverAgent\n{\n  MaxReassign = 9\n  Foo = 1\n}\n", "bad.cfg")
    with pytest.raises(CommandError, match="unknown option 'Foo'"):
        call_command("failover", "import-config", str(bad))
    assert Policy.objects.get().max_reassign == 3


BAD_FILES = [
    ("unknown option", "TransformationFailoverAgent\n{\n  Foo = 1\n}\n", "unknown option 'Foo'"),
    ("bad number", "MaxReassign = many\n", "MaxReassign = 'many' is not a whole number"),
    ("missing section", "Systems\n{\n  Other\n  {\n    A = 1\n  }\n}\n", "no TransformationFailoverAgent section"),
    ("syntax error", "TransformationFailoverAgent\n{\n", "not a DIRAC configuration"),
    ("unreadable", None, "No such file or directory"),
]


@pytest.mark.parametrize("text, message", [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_it_exits_1_with_one_line_on_a_bad_file(site, text, message):
    env, var = site
    path = var / "missing.cfg" if text is None else write(var, text, "bad.cfg")
    done = manage(env, "failover", "import-config", str(path))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message in lines[0]
    assert str(path) in lines[0]


def test_it_imports_from_the_command_line_and_keeps_it_on_a_bad_file(site):
    env, var = site
    done = manage(env, "failover", "import-config", str(write(var, SEED_FIGURE, "seed.cfg")))
    assert done.returncode == 0, done.stderr
    done = manage(env, "failover", "import-config", str(write(var, "MaxReassign = 9\nBad = 1\n", "worse.cfg")))
    assert done.returncode == 1
    shown = manage(env, "failover", "policy")
    assert shown.returncode == 0, shown.stderr
    assert "MaxReassign: 3" in shown.stdout
    assert "Flush: DataReprocessing, Merging" in shown.stdout


# -- the policy in use, repeated options, what the table can hold -----------------------------------


@pytest.mark.django_db
def test_a_second_policy_is_refused_unless_it_is_made_the_one_in_use(tmp_path):
    call_command("failover", "import-config", str(write(tmp_path, SEED_FIGURE)))
    other = write(tmp_path, "MaxReassign = 9\n", "other.cfg")
    with pytest.raises(CommandError, match="policy 'default' is the policy in use: importing into 'X'"):
        call_command("failover", "import-config", str(other), "--name", "X")
    assert list(Policy.objects.values_list("name", "enabled")) == [("default", True)]
    # Re-importing into the policy in use needs no flag, whatever its name.
    call_command("failover", "import-config", str(other), "--name", "X", "--use")
    assert Policy.current().name == "X" and Policy.current().max_reassign == 9
    call_command("failover", "import-config", str(write(tmp_path, "MaxFlush = 4\n", "third.cfg")))
    assert Policy.objects.get(name="X").max_flush == 4
    assert Policy.objects.get(name="default").enabled is False
    # A disabled policy is not in use either: updating it needs --use.
    with pytest.raises(CommandError, match="no cycle uses"):
        call_command("failover", "import-config", str(other), "--name", "default")


@pytest.mark.django_db
def test_policy_use_switches_the_policy_in_use_and_says_so(tmp_path, capsys):
    call_command("failover", "import-config", str(write(tmp_path, SEED_FIGURE)))
    call_command("failover", "import-config", str(write(tmp_path, "MaxReassign = 5\n", "b.cfg")),
                 "--name", "ops", "--use")
    capsys.readouterr()
    call_command("failover", "policy", "--use", "default")
    out = capsys.readouterr().out
    assert "Policy 'default' is the policy in use (disabled: 'ops')" in out
    assert "MaxReassign: 3" in out
    assert Policy.current().name == "default"
    with pytest.raises(CommandError, match="no policy named 'nope' \\(stored: 'default', 'ops'\\)"):
        call_command("failover", "policy", "--use", "nope")
    assert Policy.current().name == "default"


REPEATED = [
    ("bare", "MaxReassign = 3\nMaxFlush = 1\nMaxReassign = 5\n", 3, 1),
    ("seed figure", SEED_FIGURE.replace("├── MaxReassign = 3", "├── MaxReassign = 3\n├── MaxReassign = 4"), 11, 10),
    ("in a section",
     FULL_CFG.replace("        MaxFlush = 1\n", "        MaxFlush = 1\n        MaxFlush = 2\n"), 27, 26),
    ("list option", "TransformationFailoverAgent\n{\n  Flush = A\n\n  # again\n  Flush = B\n}\n", 6, 3),
]


@pytest.mark.parametrize("text, line, first", [r[1:] for r in REPEATED], ids=[r[0] for r in REPEATED])
def test_a_repeated_option_is_refused_with_its_line(text, line, first):
    expected = rf"^x.cfg: line {line}: \w+ is set again in .* \(first at line {first}\)"
    with pytest.raises(ConfigurationError, match=expected):
        parse_text(text, "x.cfg")


def test_appending_and_the_same_name_in_other_sections_are_not_repetitions():
    text = ("Systems\n{\n  A\n  {\n    PollingTime = 5\n  }\n  TransformationFailoverAgent\n  {\n"
            "    PollingTime = 60\n    Flush = Merging\n    Flush += MCSimulation\n  }\n}\n")
    values = parse_text(text).values
    assert values["polling_time"] == 60 and values["flush_types"] == ["Merging", "MCSimulation"]


TOO_BIG = [
    ("MaxReassign = 99999999999999999999\n", "MaxReassign = 99999999999999999999 is out of range (0 to 2147483647)"),
    ("MaxFlush = 2147483648\n", "MaxFlush = 2147483648 is out of range (0 to 2147483647)"),
    ("PollingTime = 9223372036854775808\n", "PollingTime = 9223372036854775808 is out of range"),
    ("MailFrom = " + "a" * 250 + "@example.org\n", "MailFrom is 262 characters long; at most 255 are kept"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("text, message", TOO_BIG)
def test_what_the_table_cannot_hold_is_refused_and_nothing_is_stored(tmp_path, text, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("failover", "import-config", str(write(tmp_path, text)))
    assert not Policy.objects.exists()


@pytest.mark.django_db
def test_a_name_longer_than_its_column_is_refused(tmp_path):
    with pytest.raises(CommandError, match="--name is 101 characters long; at most 100 are kept"):
        call_command("failover", "import-config", str(write(tmp_path, SEED_FIGURE)), "--name", "n" * 101)
    call_command("failover", "import-config", str(write(tmp_path, SEED_FIGURE)), "--name", "n" * 100)
    assert Policy.current().name == "n" * 100


def test_a_huge_number_exits_1_with_one_line(site):
    env, var = site
    done = manage(env, "failover", "import-config", str(write(var, "MaxReassign = 99999999999999999999\n", "big.cfg")))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"CommandError: {var / 'big.cfg'}:(bare section): MaxReassign = 99999999999999999999 is out of range "
        "(0 to 2147483647)"
    ]
