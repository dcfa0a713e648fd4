"""The jobs drill-down: filters, sorting, pages of 50, each job's files and retry chain, the WebApp link."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from failover.models import TaskFile
from failover.simulated.advance import advance
from failover.simulated.models import SimJob, SimTask
from tests.factories import job, load_scenario, run_cycle, seed_policy

pytestmark = pytest.mark.django_db(databases="__all__")

SITES = ("LCG.CNAF.it", "LCG.GRIF.fr", "LCG.DESY-ZEUTHEN.de")


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def plain(response) -> str:
    """The page's words without its tags."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def job_ids(response) -> list[int]:
    return [int(j) for j in re.findall(r'<tr id="job-(\d+)">', response.content.decode())]


def many_jobs(n: int = 120) -> dict:
    """Transformation 5000 (group size 1): task k holds /m/fk.h5 and ran job 1000 + k."""
    statuses = ("Done", "Failed", "Killed", "Running")
    jobs, tasks, files = [], [], []
    for k in range(1, n + 1):
        status = statuses[k % 4]
        jobs.append(job(1000 + k, status, site=SITES[k % 3]))
        tasks.append({"transformation": 5000, "task": k, "job": 1000 + k, "status": status})
        files.append({"transformation": 5000, "lfn": f"/m/f{k}.h5", "task": k,
                      "status": "Processed" if status == "Done" else "Assigned"})
    return {
        "productions": [{"id": 9, "name": "P", "status": "Active"}],
        "transformations": [{"id": 5000, "name": "many", "type": "DataReprocessing", "status": "Active",
                             "group_size": 1, "production": 9, "parent": -1}],
        "files": files, "tasks": tasks, "jobs": jobs,
    }


@pytest.fixture
def many():
    seed_policy()
    load_scenario(many_jobs())
    run_cycle(["sync"])
    return reverse("transformation_jobs", args=[5000])


def test_it_shows_fifty_jobs_a_page(viewer_client, many):
    first = viewer_client.get(many)
    assert first.status_code == 200
    assert job_ids(first) == list(range(1001, 1051))
    assert "120 jobs · page 1 of 3, 50 a page" in text(first)
    last = viewer_client.get(many, {"page": 3})
    assert job_ids(last) == list(range(1101, 1121))


def test_it_filters_by_status_site_and_task(viewer_client, many):
    failed = viewer_client.get(many, {"status": "Failed"})
    ids = job_ids(failed)
    assert ids and all((i - 1000) % 4 == 1 for i in ids) and len(ids) == 30
    both = viewer_client.get(many, {"status": "Failed", "site": "LCG.GRIF.fr"})
    assert job_ids(both) == [i for i in ids if (i - 1000) % 3 == 1]
    # The filter's options say how many jobs each value has, the chosen one selected.
    page = text(both)
    assert '<option value="Failed" selected>Failed (30)</option>' in page
    assert '<option value="LCG.CNAF.it">LCG.CNAF.it (40)</option>' in page
    assert job_ids(viewer_client.get(many, {"task": 7})) == [1007]
    minor = viewer_client.get(many, {"minor_status": "Received Kill signal"})
    assert len(job_ids(minor)) == 30


def test_it_links_each_filter_back_and_forth(viewer_client, many):
    page = text(viewer_client.get(many, {"status": "Failed", "site": "LCG.GRIF.fr"}))
    # The report it came from, and a link that drops one filter and keeps the other.
    assert 'href="/transformations/5000/#report"' in page
    assert 'href="?site=LCG.GRIF.fr" title="drop this filter"' in page
    assert 'href="?status=Failed" title="drop this filter"' in page
    # A cell narrows the filter to its value.
    assert 'href="?status=Failed&amp;site=LCG.GRIF.fr&amp;task=1"' in page
    # The report's rows link here with their filters.
    report = text(viewer_client.get(reverse("transformation", args=[5000])))
    assert "/transformations/5000/jobs/?status=Failed" in report


def test_it_sorts_by_any_column(viewer_client, many):
    assert job_ids(viewer_client.get(many, {"sort": "-job"}))[:3] == [1120, 1119, 1118]
    by_site = job_ids(viewer_client.get(many, {"sort": "site", "page": 1}))
    assert by_site[:3] == [1003, 1006, 1009]  # LCG.CNAF.it first, by job id within it
    by_status = text(viewer_client.get(many, {"sort": "-status"}))
    assert 'aria-sort="descending"' in by_status
    # An unknown sort key falls back to the job id.
    assert job_ids(viewer_client.get(many, {"sort": "nonsense"}))[:2] == [1001, 1002]


def test_it_says_what_is_wrong_with_a_bad_task(viewer_client, many):
    r = viewer_client.get(many, {"task": "abc"})
    assert r.status_code == 200
    assert "Task:" in text(r) and len(job_ids(r)) == 50


def test_it_shows_the_retry_chain_from_what_the_engine_recorded(viewer_client, many):
    # The cycle resets the Failed and Killed tasks' files; DIRAC then makes new tasks and jobs.
    run_cycle()
    assert TaskFile.objects.filter(transformation_id=5000, task=1, lfn="/m/f1.h5", job=1001,
                                   site="LCG.GRIF.fr", status="Failed").exists()
    advance(max_jobs=1)
    new_task = SimTask.objects.filter(transformation=5000, task__gt=120).order_by("task").first()
    assert new_task is not None and new_task.job
    old = plain(viewer_client.get(many, {"task": 1}))
    # The failed job still shows its input file, now in the new task, and its later retry.
    assert "/m/f1.h5" in old and f"now in task {new_task.task}" in old
    assert f"after: task {new_task.task}, job {new_task.job}" in old
    new = plain(viewer_client.get(many, {"task": new_task.task}))
    assert "before: task 1, job 1001 Failed at LCG.GRIF.fr" in new
    # A Done job's files were never retried.
    assert "first and only try" in plain(viewer_client.get(many, {"task": 4}))


def test_it_links_jobs_to_the_webapp_only_when_configured(viewer_client, many, settings):
    settings.DIRAC_WEBAPP_URL = ""
    assert "JobMonitor" not in text(viewer_client.get(many, {"task": 1}))
    settings.DIRAC_WEBAPP_URL = "https://dirac.example.org/DIRAC"
    page = viewer_client.get(many, {"task": 1}).content.decode()
    assert ('href="https://dirac.example.org/DIRAC/?view=tabs&amp;theme=Crisp&amp;url_state=1|'
            '*DIRAC.JobMonitor.classes.JobMonitor:,#JobID=1001"') in page


def test_it_reads_the_webapp_setting_strictly(monkeypatch):
    from dashboard.env import env_url

    monkeypatch.setenv("DIRAC_WEBAPP_URL", "https://dirac.example.org/DIRAC/")
    assert env_url("DIRAC_WEBAPP_URL") == "https://dirac.example.org/DIRAC"
    monkeypatch.setenv("DIRAC_WEBAPP_URL", "")
    assert env_url("DIRAC_WEBAPP_URL") == ""
    monkeypatch.setenv("DIRAC_WEBAPP_URL", "dirac.example.org")
    with pytest.raises(ImproperlyConfigured, match="DIRAC_WEBAPP_URL='dirac.example.org' is not an http"):
        env_url("DIRAC_WEBAPP_URL")


def test_the_migration_backfills_task_files_from_earlier_reassigns(many):
    import importlib

    from django.apps import apps

    run_cycle()
    recorded = set(TaskFile.objects.values_list("task", "lfn", "job"))
    assert recorded
    TaskFile.objects.all().delete()
    importlib.import_module("failover.migrations.0010_task_files").backfill(apps, None)
    assert set(TaskFile.objects.values_list("task", "lfn", "job")) == recorded


def test_a_job_without_task_files_in_dirac_says_none_recorded(viewer_client, many):
    SimJob.objects.filter(id=1002).update(status="Failed")
    from failover.simulated.models import SimFile

    SimFile.objects.filter(transformation=5000, task=2).delete()
    assert "none recorded" in text(viewer_client.get(many, {"task": 2}))
