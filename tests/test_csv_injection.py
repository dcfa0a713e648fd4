"""Every CSV the product writes neutralises cells a spreadsheet would run as formulas."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from failover import rules
from failover.models import ActionLog
from reports import csvsafe
from tests.factories import chain_scenario, job, load_scenario, run_cycle, seed_policy

pytestmark = pytest.mark.django_db(databases="__all__")

FORMULAS = ['=HYPERLINK("https://evil.example/x","Re-login")', "=cmd|' /C calc'!A0", "@SUM(1)", "-2+3", "+1",
            "\tTAB", "\rCR"]


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def assert_no_formula(rows: list[list[str]], numeric_columns=()):
    for row in rows[1:]:
        for i, cell in enumerate(row):
            if i in numeric_columns:
                continue
            assert not cell.startswith(csvsafe.FORMULA_STARTS), (cell, row)


@pytest.fixture
def hostile_grid():
    """4847's jobs carry formula-like MinorStatus, ApplicationStatus and Site values."""
    seed_policy()
    data = chain_scenario()
    data["jobs"] = [job(100, "Done"),
                    job(101, "Failed", site="=cmd|' /C calc'!A0", minor=FORMULAS[0], app="@SUM(1)"),
                    job(102, "Killed", site="-2+3", minor="+1", app="\tTAB"),
                    job(103, "Done", site="LCG.GRIF.fr", minor="\rCR", app="-5")]
    load_scenario(data)
    run_cycle([rules.SYNC])


def test_the_report_command_csv_neutralises_grid_text(hostile_grid):
    out = io.StringIO()
    call_command("report", "4847", "--format", "csv", stdout=out)
    rows = rows_of(out.getvalue())
    assert rows[0] == ["transformation", "status", "minor_status", "application_status", "site", "count"]
    assert_no_formula(rows)
    cells = {c for row in rows[1:] for c in row}
    # Readable: the value as it came, behind one quote.
    for value in ['=HYPERLINK("https://evil.example/x","Re-login")', "=cmd|' /C calc'!A0", "@SUM(1)", "-2+3", "+1",
                  "\tTAB", "-5"]:
        assert "'" + value in cells, value
    assert "'\nCR" in cells  # a bare carriage return would split the row in every reader (see csvsafe)
    assert {"LCG.GRIF.fr", "Done", "Failed", "Killed", "4847"} <= cells  # ordinary cells as they were
    assert all(row[5].isdigit() for row in rows[1:])  # counts stay numbers


def test_the_report_download_csv_neutralises_grid_text(hostile_grid, viewer_client):
    r = viewer_client.get("/api/transformations/4847/report.csv", {"source": "live"})
    assert r.status_code == 200
    rows = rows_of(r.content.decode())
    assert_no_formula(rows)
    assert any("'=cmd|' /C calc'!A0" in row for row in rows)
    stored = viewer_client.get("/api/transformations/4847/report.csv")
    assert stored.status_code == 200
    assert_no_formula(rows_of(stored.content.decode()))


def test_the_audit_csv_neutralises_actors_reasons_and_errors(chain_synced, viewer_client):
    now = timezone.now()
    for n, bad in enumerate(FORMULAS):
        ActionLog.objects.create(transformation_id=4847, kind=ActionLog.Kind.FLUSH, state=ActionLog.State.FAILED,
                                 actor=bad, reason=bad, outcome=bad, error=bad, created=now + timedelta(seconds=n))
    r = viewer_client.get("/audit.csv")
    assert r.status_code == 200
    rows = rows_of(b"".join(r.streaming_content).decode())
    assert_no_formula(rows)
    actor = rows[0].index("actor")
    actors = [row[actor] for row in rows[1:]]
    for bad in FORMULAS:
        assert "'" + bad in actors
    assert "system" in actors  # an ordinary actor as it was


def test_the_audit_csv_neutralises_policy_changes_too(chain_synced, viewer_client):
    from dashboard.models import PolicyChange

    for bad in FORMULAS:
        PolicyChange.objects.create(actor=bad, policy_name=bad, before={"mail_from": "a@example.org"},
                                    after={"mail_from": bad})
    r = viewer_client.get("/audit.csv")
    rows = rows_of(b"".join(r.streaming_content).decode())
    assert_no_formula(rows)
    entry, actor, policy = (rows[0].index(c) for c in ("entry", "actor", "policy"))
    changed = [row for row in rows[1:] if row[entry] == "policy_change"]
    assert sorted(row[actor] for row in changed) == sorted("'" + bad for bad in FORMULAS)
    assert sorted(row[policy] for row in changed) == sorted("'" + bad for bad in FORMULAS)


@pytest.mark.parametrize("value, expected", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@A1", "'@A1"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"),
    ("a=1", "a=1"), ("", ""), ("Done", "Done"), (" =1", " =1"),
    # Numbers the product computes stay numbers: a negative count is -2, not text.
    (-2, -2), (3, 3), (-0.5, -0.5), (None, None),
])
def test_safe_cell(value, expected):
    assert csvsafe.safe_cell(value) == expected


def test_a_negative_number_column_stays_numeric_in_the_file():
    out = io.StringIO()
    csvsafe.writer(out, lineterminator="\n").writerow(["-2", -2, "=x"])
    assert out.getvalue() == "'-2,-2,'=x\n"
