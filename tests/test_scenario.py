"""The simulated DIRAC's scenario format and commands: validation, load/dump, generate, advance.

Reference: docs/scenario.md (the interface contract).
"""

from __future__ import annotations

import copy
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from failover.errors import ScenarioError
from failover.simulated.advance import advance
from failover.simulated.generate import GenerateOptions, generate, generate_large
from failover.simulated.models import SimFile, SimJob, SimProduction, SimTask, SimTransformation
from failover.simulated.scenario import Scenario, read_path, read_text, to_json, validate
from failover.simulated.store import dump, load
from tests.sites import manage

ROOT = Path(__file__).resolve().parent.parent
BOTH_DATABASES = pytest.mark.django_db(databases="__all__")

WF = "Workflow successful, end of FailoverRequest module execution."

BASE = {
    "productions": [{"id": 7, "name": "Prod5b_LaPalma_gamma-diffuse", "status": "Active"}],
    "transformations": [
        {"id": 4846, "name": "step1", "type": "DataReprocessing", "status": "Active", "group_size": 5,
         "production": 7, "parent": -1},
        {"id": 4847, "name": "merge50", "type": "Merging", "status": "Active", "group_size": 50,
         "production": 7, "parent": 4846},
        {"id": 4848, "name": "merge10000", "type": "Merging", "status": "Active", "group_size": 10000,
         "production": 7, "parent": 4847},
        {"id": 5000, "name": "loose", "type": "Replication", "status": "Stopped", "group_size": 2.5,
         "production": None, "parent": None},
    ],
    "files": [
        {"transformation": 4846, "lfn": "/ctao/r", "status": "Processed", "task": 1, "error_count": 0},
        {"transformation": 4847, "lfn": "/ctao/a", "status": "Assigned", "task": 1, "error_count": 0},
        {"transformation": 4847, "lfn": "/ctao/c", "status": "Processed", "task": 2, "error_count": 1},
        {"transformation": 4848, "lfn": "/ctao/x", "status": "Unused", "task": None, "error_count": 0},
        {"transformation": 4848, "lfn": "/ctao/y", "status": "Unused", "task": None, "error_count": 0},
        {"transformation": 5000, "lfn": "/ctao/z", "status": "Removed", "task": None, "error_count": 3},
    ],
    "tasks": [
        {"transformation": 4846, "task": 1, "job": 1000, "status": "Done"},
        {"transformation": 4847, "task": 1, "job": 1001, "status": "Submitted"},
        {"transformation": 4847, "task": 2, "job": 1002, "status": "Done"},
        {"transformation": 4848, "task": 1, "job": 0, "status": "Created"},
    ],
    "jobs": [
        {"id": 1000, "status": "Done", "minor_status": "Execution Complete", "application_status": WF,
         "site": "LCG.CNAF.it"},
        {"id": 1001, "status": "Failed", "minor_status": "Maximum of reschedulings reached",
         "application_status": "Failed Input Data Resolution", "site": "LCG.GRIF.fr"},
        {"id": 1002, "status": "Done", "minor_status": "Execution Complete", "application_status": WF,
         "site": "LCG.IN2P3-CC.fr"},
    ],
}

# The contract's own example of a message.
BROKEN = copy.deepcopy(BASE)
BROKEN["files"][3]["task"] = 17
BROKEN_MESSAGE = "files[3].task: task 17 of transformation 4848 does not exist"


def base() -> dict:
    return copy.deepcopy(BASE)


def edit(section, index, **changes):
    def mutate(d):
        d[section][index].update(changes)

    return mutate


def drop(section, index, key):
    def mutate(d):
        del d[section][index][key]

    return mutate


def add(section, item):
    def mutate(d):
        d[section].append(item)

    return mutate


# -- validation -----------------------------------------------------------------------------------

INVALID = [
    # the document
    ("not a mapping", None, "scenario: must be a mapping with productions, transformations, files, tasks, jobs"),
    ("unknown section", lambda d: d.update(steps=[]),
     "steps: unknown section (expected catalog, files, jobs, productions, requests, tasks, transformations)"),
    ("section not a list", lambda d: d.update(jobs={"id": 1}), "jobs: must be a list"),
    ("item not a mapping", lambda d: d["tasks"].insert(0, 5), "tasks[0]: must be a mapping"),
    # productions
    ("production id 0", edit("productions", 0, id=0), "productions[0].id: must be a positive integer, not 0"),
    ("production id a string", edit("productions", 0, id="7"),
     "productions[0].id: must be a positive integer, not '7'"),
    ("production id a boolean", edit("productions", 0, id=True),
     "productions[0].id: must be a positive integer, not True"),
    ("production id missing", drop("productions", 0, "id"),
     "productions[0].id: must be a positive integer, not None"),
    ("production id twice", add("productions", {"id": 7, "name": "again"}),
     "productions[1].id: production 7 appears twice"),
    ("production status empty", edit("productions", 0, status=""),
     "productions[0].status: must be a non-empty string, not ''"),
    # transformations
    ("transformation id negative", edit("transformations", 0, id=-3),
     "transformations[0].id: must be a positive integer, not -3"),
    ("transformation id a float", edit("transformations", 0, id=1.5),
     "transformations[0].id: must be a positive integer, not 1.5"),
    ("transformation id too large", edit("transformations", 3, id=2**31),
     "transformations[3].id: must be at most 2147483647, not 2147483648"),
    ("transformation id twice", edit("transformations", 1, id=4846),
     "transformations[1].id: transformation 4846 appears twice"),
    ("type empty", edit("transformations", 0, type=""),
     "transformations[0].type: must be a non-empty string, not ''"),
    ("type missing", drop("transformations", 2, "type"),
     "transformations[2].type: must be a non-empty string, not None"),
    ("status blank", edit("transformations", 1, status="   "),
     "transformations[1].status: must be a non-empty string, not '   '"),
    ("status a number", edit("transformations", 1, status=5),
     "transformations[1].status: must be a non-empty string, not 5"),
    ("name not a string", edit("transformations", 0, name=5), "transformations[0].name: must be a string, not 5"),
    ("group_size 0", edit("transformations", 1, group_size=0),
     "transformations[1].group_size: must be a positive number, not 0"),
    ("group_size negative", edit("transformations", 1, group_size=-50.0),
     "transformations[1].group_size: must be a positive number, not -50.0"),
    ("group_size a string", edit("transformations", 1, group_size="50"),
     "transformations[1].group_size: must be a positive number, not '50'"),
    ("group_size a boolean", edit("transformations", 1, group_size=True),
     "transformations[1].group_size: must be a positive number, not True"),
    ("group_size null", edit("transformations", 1, group_size=None),
     "transformations[1].group_size: must be a positive number, not None"),
    ("group_size NaN", edit("transformations", 1, group_size=float("nan")),
     "transformations[1].group_size: must be a positive number, not nan"),
    ("group_size infinite", edit("transformations", 1, group_size=float("inf")),
     "transformations[1].group_size: must be a positive number, not inf"),
    ("production unknown", edit("transformations", 0, production=99),
     "transformations[0].production: production 99 does not exist"),
    ("production a string", edit("transformations", 0, production="7"),
     "transformations[0].production: production '7' does not exist"),
    ("parent 0", edit("transformations", 1, parent=0),
     "transformations[1].parent: must be -1, a transformation id or null, not 0"),
    ("parent -2", edit("transformations", 1, parent=-2),
     "transformations[1].parent: must be -1, a transformation id or null, not -2"),
    ("parent unknown", edit("transformations", 1, parent=9999),
     "transformations[1].parent: transformation 9999 does not exist"),
    ("parent cycle", edit("transformations", 0, parent=4848),
     "transformations[0].parent: parent links form a cycle: 4846 -> 4848 -> 4847 -> 4846"),
    ("own parent", edit("transformations", 3, parent=5000),
     "transformations[3].parent: parent links form a cycle: 5000 -> 5000"),
    # jobs
    ("job id 0", edit("jobs", 0, id=0), "jobs[0].id: must be a positive integer, not 0"),
    ("job id twice", edit("jobs", 1, id=1000), "jobs[1].id: job 1000 appears twice"),
    # Larger than the database's integer columns: would fail in the database with a traceback.
    ("job id too large", edit("jobs", 1, id=2**63), f"jobs[1].id: must be at most 2147483647, not {2**63}"),
    ("job status empty", edit("jobs", 2, status=""), "jobs[2].status: must be a non-empty string, not ''"),
    ("job status missing", drop("jobs", 2, "status"), "jobs[2].status: must be a non-empty string, not None"),
    ("job site not a string", edit("jobs", 0, site=5), "jobs[0].site: must be a string, not 5"),
    # tasks
    ("task of an unknown transformation", edit("tasks", 0, transformation=9),
     "tasks[0].transformation: transformation 9 does not exist"),
    ("task transformation 0", edit("tasks", 0, transformation=0),
     "tasks[0].transformation: must be a positive integer, not 0"),
    ("task id 0", edit("tasks", 0, task=0), "tasks[0].task: must be a positive integer, not 0"),
    ("task id missing", drop("tasks", 3, "task"), "tasks[3].task: must be a positive integer, not None"),
    ("task twice", edit("tasks", 2, task=1), "tasks[2].task: task 1 of transformation 4847 appears twice"),
    ("task job unknown", edit("tasks", 1, job=4242), "tasks[1].job: job 4242 does not exist"),
    ("task job negative", edit("tasks", 1, job=-1), "tasks[1].job: must be 0 or a job id, not -1"),
    ("task job a string", edit("tasks", 1, job="1001"), "tasks[1].job: must be 0 or a job id, not '1001'"),
    ("two tasks share a job", edit("tasks", 2, job=1001),
     "tasks[2].job: job 1001 already belongs to task 1 of transformation 4847"),
    ("task status empty", edit("tasks", 0, status=""), "tasks[0].status: must be a non-empty string, not ''"),
    ("task status null", edit("tasks", 0, status=None), "tasks[0].status: must be a non-empty string, not None"),
    # files
    ("the contract's example", edit("files", 3, task=17), BROKEN_MESSAGE),
    ("file task of another transformation", edit("files", 3, task=2),
     "files[3].task: task 2 of transformation 4848 does not exist"),
    ("file of an unknown transformation", edit("files", 0, transformation=9),
     "files[0].transformation: transformation 9 does not exist"),
    ("file lfn empty", edit("files", 0, lfn=""), "files[0].lfn: must be a non-empty string, not ''"),
    ("file lfn missing", drop("files", 4, "lfn"), "files[4].lfn: must be a non-empty string, not None"),
    ("file lfn twice", edit("files", 2, lfn="/ctao/a"), "files[2].lfn: /ctao/a appears twice in transformation 4847"),
    ("file status empty", edit("files", 0, status=""), "files[0].status: must be a non-empty string, not ''"),
    ("file error_count negative", edit("files", 0, error_count=-1),
     "files[0].error_count: must be a non-negative integer, not -1"),
    ("file error_count too large", edit("files", 0, error_count=2**31),
     "files[0].error_count: must be at most 2147483647, not 2147483648"),
]


@pytest.mark.parametrize("mutate, message", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_it_names_the_place_of_each_error(mutate, message):
    if mutate is None:  # a list instead of a mapping
        data = [base()]
    else:
        data = base()
        mutate(data)
    with pytest.raises(ScenarioError) as info:
        validate(data)
    assert str(info.value) == message
    # The same through the text reader, in JSON and in YAML.
    for text in (json.dumps(data), yaml.safe_dump(data)):
        with pytest.raises(ScenarioError) as info:
            read_text(text)
        assert str(info.value) == message


def test_it_accepts_the_base_scenario_as_it_is():
    s = validate(base())
    assert s.as_dict() == BASE


def test_it_allows_what_the_contract_allows():
    d = base()
    # The same LFN in two transformations, the same task number in two transformations.
    d["files"].append({"transformation": 4848, "lfn": "/ctao/a", "status": "Assigned", "task": 1})
    # Unknown statuses and types are kept, not rejected (DIRAC's vocabularies are open).
    d["transformations"][3].update(type="SomethingNew", status="Frobnicating")
    d["tasks"][0]["status"] = "Odd"
    d["jobs"][0]["status"] = "Strange"
    d["files"][0]["status"] = "Weird"
    s = validate(d)
    assert s.transformations[3]["type"] == "SomethingNew"
    assert s.transformations[3]["status"] == "Frobnicating"
    assert s.tasks[0]["status"] == "Odd"
    assert s.jobs[0]["status"] == "Strange"
    assert s.files[0]["status"] == "Weird"
    assert [(f["transformation"], f["lfn"]) for f in s.files if f["lfn"] == "/ctao/a"] == [
        (4847, "/ctao/a"),
        (4848, "/ctao/a"),
    ]


def test_it_fills_in_optional_fields():
    s = validate(
        {
            "productions": [{"id": 3}],
            "transformations": [{"id": 2, "type": "Merging", "status": "Active"}],
            "files": [{"transformation": 2, "lfn": "/f"}],
            "tasks": [{"transformation": 2, "task": 1}],
            "jobs": [{"id": 9, "status": "Running"}],
        }
    )
    assert s.as_dict() == {
        "productions": [{"id": 3, "name": "Production3", "status": "Active"}],
        "transformations": [{"id": 2, "name": "Transformation2", "type": "Merging", "status": "Active",
                             "group_size": 1, "production": None, "parent": None}],
        "files": [{"transformation": 2, "lfn": "/f", "status": "Unused", "task": None, "error_count": 0}],
        "tasks": [{"transformation": 2, "task": 1, "job": 0, "status": "Created"}],
        "jobs": [{"id": 9, "status": "Running", "minor_status": "Unknown", "application_status": "Unknown",
                  "site": "ANY"}],
    }


EMPTY_DOCUMENTS = ["", "   \n", "{}", "null", "~\n", "--- \n", "productions: []\n",
                   '{"productions": [], "transformations": [], "files": [], "tasks": [], "jobs": []}',
                   "# only a comment\n"]


@pytest.mark.parametrize("text", EMPTY_DOCUMENTS)
def test_it_refuses_an_empty_scenario_unless_asked(text):
    with pytest.raises(ScenarioError, match=r"^x.yaml: (empty|describes an empty DIRAC).*; nothing loaded "
                                            r"\(to empty the simulated DIRAC on purpose, use simdirac load --empty\)"):
        read_text(text, "x.yaml")
    assert read_text(text, allow_empty=True).as_dict() == Scenario().as_dict()


def nested(depth: int, kind: str) -> str:
    if kind == "json list":
        return '{"jobs": ' + "[" * depth + "]" * depth + "}"
    if kind == "json mapping":
        return '{"jobs": [{"id": 1, "status": ' + '{"a": ' * depth + "1" + "}" * depth + "}]}"
    if kind == "yaml flow":
        return "jobs: " + "[" * depth + "]" * depth + "\n"
    return "".join("  " * i + "- \n" for i in range(depth)).replace("- \n", "-\n") + "  " * depth + "x\n"


@pytest.mark.parametrize("kind", ["json list", "json mapping", "yaml flow", "yaml block"])
def test_deep_nesting_is_a_clear_error(kind):
    with pytest.raises(ScenarioError, match=r"^deep\.json: "):
        read_text(nested(100_000 if kind != "yaml block" else 5_000, kind), "deep.json")


def test_a_number_longer_than_python_converts_is_a_clear_error():
    with pytest.raises(ScenarioError, match=r"^n.json: "):
        read_text('{"jobs": [{"id": ' + "1" * 5000 + ', "status": "Done"}]}', "n.json")


@pytest.mark.parametrize("data", [b"\xff\xfe{}", "jobs: [{id: 1, status: D\u00f6ne}]".encode("latin-1"),
                                  b'{"jobs": []}\x80'])
def test_bytes_that_are_not_utf8_are_a_clear_error(tmp_path, data):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(data)
    expected = rf"^{re.escape(str(path))}: not UTF-8 text \(byte 0x[0-9a-f]{{2}} at offset \d+\)"
    with pytest.raises(ScenarioError, match=expected):
        read_path(path)


def test_it_sorts_what_it_validates():
    d = base()
    for key in d:
        d[key].reverse()
    s = validate(d)
    assert [t["id"] for t in s.transformations] == [4846, 4847, 4848, 5000]
    assert [(f["transformation"], f["lfn"]) for f in s.files] == [
        (4846, "/ctao/r"), (4847, "/ctao/a"), (4847, "/ctao/c"), (4848, "/ctao/x"), (4848, "/ctao/y"),
        (5000, "/ctao/z"),
    ]  # fmt: skip
    assert [(t["transformation"], t["task"]) for t in s.tasks] == [(4846, 1), (4847, 1), (4847, 2), (4848, 1)]
    assert [j["id"] for j in s.jobs] == [1000, 1001, 1002]


def test_it_reads_json_and_yaml_alike():
    from_json = read_text(json.dumps(BASE, indent=2))
    from_yaml = read_text(yaml.safe_dump(BASE, sort_keys=False))
    assert from_json == from_yaml
    assert from_json.as_dict() == BASE


@pytest.mark.parametrize(
    "text",
    [
        # Valid JSON that YAML 1.1 misreads: tab indentation, and numbers with an exponent.
        json.dumps(BASE, indent="\t"),
        json.dumps(BASE).replace('"group_size": 10000', '"group_size": 1e4'),
        json.dumps(BASE).replace('"group_size": 50', '"group_size": 5E+1'),
    ],
    ids=["tabs", "exponent", "exponent with sign"],
)
def test_it_reads_any_valid_json(text):
    s = read_text(text)
    assert [t["group_size"] for t in s.transformations] == [5, 50, 10000, 2.5]


@pytest.mark.parametrize(
    "text, message",
    [
        ("transformations:\n  - id: 1\n  type: [\n", "x.yaml: not valid JSON or YAML at line 3, column 3"),
        ('{"transformations": [}', "x.yaml: not valid JSON or YAML at line 1, column 22"),
        ("key: value\n  bad: indent\n", "x.yaml: not valid JSON or YAML at line 2, column 6"),
    ],
)
def test_it_says_where_the_text_is_malformed(text, message):
    with pytest.raises(ScenarioError) as info:
        read_text(text, "x.yaml")
    assert str(info.value) == message


def test_it_names_a_file_it_cannot_read(tmp_path):
    with pytest.raises(ScenarioError) as info:
        read_path(tmp_path / "nope.yaml")
    assert str(info.value) == f"cannot read {tmp_path / 'nope.yaml'}: No such file or directory"


def test_it_reads_a_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(BASE), encoding="utf-8")
    assert read_path(path).as_dict() == BASE
    path.write_text(json.dumps(BROKEN), encoding="utf-8")
    with pytest.raises(ScenarioError, match=BROKEN_MESSAGE.replace("[", r"\[").replace("]", r"\]")):
        read_path(path)


# -- load and dump ------------------------------------------------------------------------------


@BOTH_DATABASES
def test_it_round_trips_load_and_dump():
    load(validate(base()))
    dumped = dump()
    assert dumped.as_dict() == BASE
    # group sizes keep their kind: 50 stays 50, 2.5 stays 2.5.
    assert [t["group_size"] for t in dumped.transformations] == [5, 50, 10000, 2.5]
    assert isinstance(dumped.transformations[0]["group_size"], int)
    text = to_json(dumped)
    load(read_text(text))
    assert to_json(dump()) == text


@BOTH_DATABASES
def test_it_derives_the_job_group():
    load(validate(base()))
    groups = dict(SimJob.objects.values_list("id", "job_group"))
    assert groups == {1000: "00004846", 1001: "00004847", 1002: "00004847"}


@BOTH_DATABASES
def test_it_replaces_the_whole_state_and_nothing_of_the_dashboard():
    from failover.models import Policy, ReassignCounter

    Policy.objects.create(name="mine", max_reassign=5)
    ReassignCounter.objects.create(transformation_id=4847, lfn="/ctao/a", count=2)
    load(validate(base()))
    small = {"transformations": [{"id": 1, "type": "Merging", "status": "Active"}]}
    load(validate(small))
    assert dump().as_dict() == validate(small).as_dict()
    assert SimFile.objects.count() == SimTask.objects.count() == SimJob.objects.count() == 0
    assert SimProduction.objects.count() == 0
    assert Policy.objects.get(name="mine").max_reassign == 5
    assert ReassignCounter.objects.get().count == 2


@BOTH_DATABASES
def test_it_dumps_in_id_order_whatever_the_insertion_order():
    for tid in (100, 9, 10):
        SimTransformation.objects.create(id=tid, name=f"t{tid}", type="Merging", status="Active", group_size=1)
    for tid, lfn in ((100, "/a"), (10, "/b"), (9, "/z"), (10, "/a"), (9, "/c")):
        SimFile.objects.create(transformation=tid, lfn=lfn)
    for tid, task in ((100, 1), (10, 2), (9, 11), (10, 1), (9, 2)):
        SimTask.objects.create(transformation=tid, task=task)
    for jid in (30, 4, 200, 1):
        SimJob.objects.create(id=jid)
    for pid in (3, 1, 2):
        SimProduction.objects.create(id=pid, name=f"p{pid}")
    s = dump()
    assert [p["id"] for p in s.productions] == [1, 2, 3]
    assert [t["id"] for t in s.transformations] == [9, 10, 100]
    assert [(f["transformation"], f["lfn"]) for f in s.files] == [
        (9, "/c"), (9, "/z"), (10, "/a"), (10, "/b"), (100, "/a"),
    ]  # fmt: skip
    assert [(t["transformation"], t["task"]) for t in s.tasks] == [(9, 2), (9, 11), (10, 1), (10, 2), (100, 1)]
    assert [j["id"] for j in s.jobs] == [1, 4, 30, 200]
    # What dump writes is a valid scenario.
    assert validate(json.loads(to_json(s))).as_dict() == s.as_dict()


@BOTH_DATABASES
def test_it_loads_and_dumps_through_the_commands(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(BASE), encoding="utf-8")
    out = io.StringIO()
    call_command("simdirac", "load", str(path), stdout=out)
    assert out.getvalue().strip() == "Loaded 4 transformations, 6 files, 4 tasks, 3 jobs"
    out = io.StringIO()
    call_command("simdirac", "dump", stdout=out)
    assert json.loads(out.getvalue()) == BASE
    path.write_text(json.dumps(BROKEN), encoding="utf-8")
    with pytest.raises(CommandError) as info:
        call_command("simdirac", "load", str(path))
    assert str(info.value) == BROKEN_MESSAGE
    assert dump().as_dict() == BASE


# -- the commands as users run them ----------------------------------------------------------------


def assert_one_clear_line(done, message):
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message in lines[0]


def test_it_rejects_a_broken_scenario_as_a_whole(site):
    env, var = site
    good = var / "good.yaml"
    good.write_text(yaml.safe_dump(BASE), encoding="utf-8")
    done = manage(env, "simdirac", "load", str(good))
    assert done.returncode == 0, done.stderr
    before = manage(env, "simdirac", "dump")
    assert before.returncode == 0, before.stderr
    assert json.loads(before.stdout) == BASE

    broken = var / "broken.json"
    broken.write_text(json.dumps(BROKEN), encoding="utf-8")
    assert_one_clear_line(manage(env, "simdirac", "load", str(broken)), BROKEN_MESSAGE)
    assert_one_clear_line(manage(env, "simdirac", "load", "-", input=json.dumps(BROKEN)), BROKEN_MESSAGE)
    assert_one_clear_line(
        manage(env, "simdirac", "load", "-", input="transformations:\n  - id: 1\n  type: [\n"),
        "standard input: not valid JSON or YAML at line 3, column 3",
    )
    assert_one_clear_line(manage(env, "simdirac", "load", str(var / "nope.yaml")), "cannot read")
    huge = copy.deepcopy(BASE)
    huge["jobs"].append({"id": 2**63, "status": "Done"})
    assert_one_clear_line(manage(env, "simdirac", "load", "-", input=json.dumps(huge)), "jobs[3].id: must be at most")

    # Bytes that are not UTF-8, and nesting deep enough to exhaust Python's stack.
    latin1 = var / "latin1.yaml"
    latin1.write_bytes("jobs: [{id: 1, status: D\u00f6ne}]\n".encode("latin-1"))
    assert_one_clear_line(manage(env, "simdirac", "load", str(latin1)), "latin1.yaml: not UTF-8 text")
    done = subprocess.run([sys.executable, "manage.py", "simdirac", "load", "-"], cwd=ROOT, env=env,
                          input=b"\xff\xfe{}", capture_output=True, timeout=60)
    assert_one_clear_line(subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(),
                                                      done.stderr.decode()), "standard input: not UTF-8 text")
    for kind in ("json list", "yaml flow"):
        assert_one_clear_line(manage(env, "simdirac", "load", "-", input=nested(100_000, kind)),
                              "standard input: nested too deeply")
    deep = var / "deep.yaml"
    deep.write_text(nested(100_000, "json mapping"), encoding="utf-8")
    assert_one_clear_line(manage(env, "simdirac", "load", str(deep)), "deep.yaml: nested too deeply")

    after = manage(env, "simdirac", "dump")
    assert after.stdout == before.stdout


def test_an_empty_scenario_is_refused_and_the_state_is_unchanged(site, tmp_path):
    env, var = site
    good = var / "good.yaml"
    good.write_text(yaml.safe_dump(BASE), encoding="utf-8")
    assert manage(env, "simdirac", "load", str(good)).returncode == 0
    before = manage(env, "simdirac", "dump").stdout
    empty = var / "empty.yaml"
    for text in ("", "\n\n", "{}", "null\n", "transformations: []\n"):
        empty.write_text(text, encoding="utf-8")
        assert_one_clear_line(manage(env, "simdirac", "load", str(empty)), "nothing loaded")
        assert_one_clear_line(manage(env, "simdirac", "load", "-", input=text), "standard input: ")
    assert_one_clear_line(manage(env, "simdirac", "load"), "give a scenario")
    assert_one_clear_line(manage(env, "simdirac", "load", str(good), "--empty"), "not both")
    assert manage(env, "simdirac", "dump").stdout == before
    assert json.loads(before) == BASE
    # The deliberate reset is its own flag, and says what it did.
    done = manage(env, "simdirac", "load", "--empty")
    assert done.returncode == 0, done.stderr
    assert "the simulated DIRAC is now empty" in done.stdout
    assert json.loads(manage(env, "simdirac", "dump").stdout) == Scenario().as_dict()


# -- generate -------------------------------------------------------------------------------------


def test_it_generates_a_production_like_the_seed():
    s = generate()
    assert s.productions == [{"id": 7, "name": "Prod5b_LaPalma_gamma-diffuse_7", "status": "Active"}]
    ts = s.transformations
    assert [(t["type"], t["group_size"], t["production"]) for t in ts] == [
        ("DataReprocessing", 5, 7),
        ("Merging", 50, 7),
        ("Merging", 10000, 7),
    ]
    assert [t["parent"] for t in ts] == [-1, ts[0]["id"], ts[1]["id"]]
    assert {t["status"] for t in ts} == {"Active"}
    assert sum(1 for f in s.files if f["transformation"] == ts[0]["id"]) == 400
    # Jobs in every kind of state, task statuses behind their jobs.
    statuses = {j["status"] for j in s.jobs}
    assert {"Done", "Failed"} <= statuses
    assert statuses & {"Waiting", "Running"}
    assert {t["status"] for t in s.tasks} <= {"Submitted", "Created"}
    # What it writes is valid and reads back the same.
    assert read_text(to_json(s)) == s


def test_it_generates_the_same_scenario_for_the_same_seed():
    assert generate(GenerateOptions(seed=5)) == generate(GenerateOptions(seed=5))
    assert generate(GenerateOptions(seed=5)) != generate(GenerateOptions(seed=6))


def test_it_generates_several_productions():
    s = generate(GenerateOptions(productions=2, files=60))
    assert [p["id"] for p in s.productions] == [7, 8]
    by_production = {}
    for t in s.transformations:
        by_production.setdefault(t["production"], []).append(t)
    for ts in by_production.values():
        assert [t["parent"] for t in ts] == [-1, ts[0]["id"], ts[1]["id"]]


def test_it_generates_large_scenarios():
    s = generate_large(6, 60, seed=3)
    assert len(s.transformations) == 6
    assert len(s.jobs) == len(s.tasks) == len(s.files) == 60
    assert [t["parent"] for t in s.transformations] == [-1, 1, 2, -1, 4, 5]
    assert generate_large(6, 60, seed=3) == s


def test_it_generates_through_the_command():
    def run(*args):
        out = io.StringIO()
        call_command("simdirac", "generate", *args, stdout=out)
        return out.getvalue()

    first = run("--seed", "5", "--files", "50")
    assert run("--seed", "5", "--files", "50") == first
    assert run("--seed", "6", "--files", "50") != first
    assert read_text(first) == generate(GenerateOptions(seed=5, files=50))
    with pytest.raises(CommandError, match="--files must be positive"):
        run("--files", "0")
    with pytest.raises(CommandError, match="--transformations and --jobs go together"):
        run("--transformations", "3")


# -- advance --------------------------------------------------------------------------------------


def one_transformation(status="Active", group_size=2, files=5, **extra):
    return {
        "transformations": [{"id": 4847, "type": "Merging", "status": status, "group_size": group_size}],
        "files": [{"transformation": 4847, "lfn": f"/f{i}", "status": "Unused"} for i in range(files)],
        **extra,
    }


@BOTH_DATABASES
def test_it_groups_unused_files_into_tasks_of_group_size():
    load(validate(one_transformation()))
    result = advance(seed=1)
    assert (result.step, result.tasks_created, result.jobs_submitted) == (1, 2, 2)
    s = dump()
    assert [(f["lfn"], f["status"], f["task"]) for f in s.files] == [
        ("/f0", "Assigned", 1), ("/f1", "Assigned", 1), ("/f2", "Assigned", 2), ("/f3", "Assigned", 2),
        ("/f4", "Unused", None),
    ]  # fmt: skip
    assert [(t["task"], t["job"], t["status"]) for t in s.tasks] == [(1, 1, "Submitted"), (2, 2, "Submitted")]
    assert s.transformations[0]["status"] == "Active"
    # A second step makes no task of the lone file left.
    assert advance(seed=1).tasks_created == 0


@BOTH_DATABASES
@pytest.mark.parametrize("files, groups", [(5, [2, 2, 1]), (4, [2, 2]), (1, [1]), (0, [])])
def test_it_flushes_the_partial_group_then_goes_back_to_active(files, groups):
    load(validate(one_transformation(status="Flush", files=files)))
    result = advance(seed=1)
    assert result.tasks_created == len(groups)
    s = dump()
    sizes = [sum(1 for f in s.files if f["task"] == t["task"]) for t in s.tasks]
    assert sizes == groups
    assert all(f["status"] == "Assigned" for f in s.files)
    assert s.transformations[0]["status"] == "Active"


@BOTH_DATABASES
@pytest.mark.parametrize("status", ["New", "Stopped", "Completed", "Archived"])
def test_it_makes_no_tasks_outside_task_creating_statuses(status):
    load(validate(one_transformation(status=status)))
    assert advance(seed=1).tasks_created == 0
    assert dump().transformations[0]["status"] == status


@BOTH_DATABASES
def test_it_numbers_new_tasks_after_the_existing_ones_and_submits_created_tasks():
    d = one_transformation(
        files=2,
        tasks=[{"transformation": 4847, "task": 3, "job": 900, "status": "Done"},
               {"transformation": 4847, "task": 4, "job": 0, "status": "Created"}],
        jobs=[{"id": 900, "status": "Done"}],
    )
    load(validate(d))
    result = advance(seed=1)
    assert (result.tasks_created, result.jobs_submitted) == (1, 2)
    s = dump()
    assert [(t["task"], t["job"], t["status"]) for t in s.tasks] == [
        (3, 900, "Done"), (4, 901, "Submitted"), (5, 902, "Submitted"),
    ]  # fmt: skip
    new_jobs = SimJob.objects.filter(id__in=[901, 902])
    assert {j.job_group for j in new_jobs} == {"00004847"}
    # Submitted in this step, then moved one state along by the same step.
    assert {j.status for j in new_jobs} == {"Waiting"}
    assert SimJob.objects.get(id=900).status == "Done"


@BOTH_DATABASES
def test_it_moves_jobs_along_until_they_end():
    load(validate(one_transformation(files=2)))
    seen = []
    for _ in range(4):
        advance(seed=2)
        seen.append(SimJob.objects.get(id=1).status)
    assert seen[:2] == ["Waiting", "Running"]
    assert seen[2] in {"Done", "Failed", "Killed"}
    assert seen[3] == seen[2]


@BOTH_DATABASES
def test_it_processes_the_files_of_done_jobs_and_feeds_the_child():
    n = 20
    d = {
        "transformations": [
            {"id": 10, "type": "Merging", "status": "Active", "group_size": 1000, "parent": -1},
            {"id": 11, "type": "Merging", "status": "Active", "group_size": 1000, "parent": 10},
            {"id": 12, "type": "Merging", "status": "Completed", "group_size": 1000, "parent": 10},
        ],
        "files": [{"transformation": 10, "lfn": f"/in/{k:03d}", "status": "Assigned", "task": k}
                  for k in range(1, n + 1)],
        "tasks": [{"transformation": 10, "task": k, "job": 100 + k, "status": "Submitted"} for k in range(1, n + 1)],
        "jobs": [{"id": 100 + k, "status": "Running", "site": "LCG.LANCASTER.uk"} for k in range(1, n + 1)],
    }
    load(validate(d))
    result = advance(seed=1)
    assert result.jobs_moved == n
    s = dump()
    job_status = {j["id"]: (j["status"], j["minor_status"]) for j in s.jobs}
    file_of = {f["lfn"]: f for f in s.files if f["transformation"] == 10}
    child = {f["lfn"]: f for f in s.files if f["transformation"] == 11}
    done = 0
    for k in range(1, n + 1):
        status, minor = job_status[100 + k]
        f = file_of[f"/in/{k:03d}"]
        out = f"/ctao/MC/PROD5b/LaPalma/gamma-diffuse/00000010/out_{k:07d}.merged.DL2.h5"
        if status == "Done":
            done += 1
            assert f["status"] == "Processed"
            assert child[out]["status"] == "Unused"
            assert child[out]["task"] is None
        else:
            assert status in {"Failed", "Killed"}
            assert out not in child
            if minor == "Application Finished With Errors":
                assert (f["status"], f["error_count"]) == ("Unused", 1)
            else:
                assert (f["status"], f["error_count"]) == ("Assigned", 0)
    assert done > 0
    assert result.files_added == done == len(child)
    # A final child gets nothing.
    assert not [f for f in s.files if f["transformation"] == 12]
    # Job statuses are NOT copied into tasks: that is the failover cycle's work.
    assert {t["status"] for t in s.tasks} == {"Submitted"}


@BOTH_DATABASES
def test_it_never_copies_job_statuses_into_tasks():
    load(validate(one_transformation(files=40)))
    for _ in range(5):
        advance(seed=3)
    s = dump()
    assert len(s.tasks) >= 20
    assert {t["status"] for t in s.tasks} == {"Submitted"}
    assert sum(j["status"] in {"Done", "Failed", "Killed"} for j in s.jobs) >= 20


@BOTH_DATABASES
def test_it_advances_deterministically_for_a_seed():
    scenario = validate(one_transformation(files=40))

    def play(seed):
        load(scenario)
        for _ in range(3):
            advance(seed=seed)
        return dump()

    first = play(7)
    assert play(7) == first
    assert len(first.tasks) == 20
    assert {j["status"] for j in first.jobs} <= {"Done", "Failed", "Killed"}


@BOTH_DATABASES
def test_it_advances_through_the_command():
    load(validate(one_transformation()))
    out = io.StringIO()
    call_command("simdirac", "advance", "--steps", "2", "--seed", "3", stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("step 1: 2 tasks created, 2 jobs submitted, 2 jobs moved")
    assert lines[1].startswith("step 2: 0 tasks created, 0 jobs submitted, 2 jobs moved")
