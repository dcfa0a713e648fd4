"""The productions list: name, status, steps, progress per step, attention; sorted and searched."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from failover import attention, blockers
from failover.blockers import Blocker
from failover.models import TransformationState
from failover.simulated.models import SimProduction
from tests.factories import load_scenario, run_cycle, seed_policy

pytestmark = pytest.mark.django_db(databases="__all__")


def plain(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def order(response) -> list[int]:
    return [int(p) for p in re.findall(r'<td class="num"><a href="/productions/(\d+)/">', response.content.decode())]


def two_productions() -> dict:
    """Production 7 (steps 10, 11), half processed; production 8 (step 20), all processed."""
    files = [{"transformation": 10, "lfn": f"/a/{i}", "status": "Processed" if i < 2 else "Unused", "task": None}
             for i in range(4)]
    files += [{"transformation": 11, "lfn": "/a/m", "status": "Unused", "task": None}]
    files += [{"transformation": 20, "lfn": f"/b/{i}", "status": "Processed", "task": None} for i in range(3)]
    return {
        "productions": [{"id": 7, "name": "Prod5b_gamma", "status": "Active"},
                        {"id": 8, "name": "Prod6_proton", "status": "Completed"}],
        "transformations": [
            {"id": 10, "name": "gamma_step1", "type": "DataReprocessing", "status": "Active", "group_size": 100,
             "production": 7, "parent": -1},
            {"id": 11, "name": "gamma_merge", "type": "Merging", "status": "Active", "group_size": 100,
             "production": 7, "parent": 10},
            {"id": 20, "name": "proton_step1", "type": "DataReprocessing", "status": "Active", "group_size": 1,
             "production": 8, "parent": -1},
        ],
        "files": files, "tasks": [], "jobs": [],
    }


@pytest.fixture
def listed():
    seed_policy()
    load_scenario(two_productions())
    run_cycle(["sync"])
    TransformationState.objects.filter(transformation_id=20).update(status="Completed")
    attention.save_blockers(11, [Blocker(blockers.NO_PROGRESS, "no job changed", count=6),
                                 Blocker(blockers.FLUSH_LIMIT, "flush limit", count=1, limit=2)])
    return reverse("productions")


def test_it_shows_name_status_steps_and_progress_per_step(viewer_client, listed):
    r = viewer_client.get(listed)
    assert r.status_code == 200
    page = plain(r)
    assert "Prod5b_gamma" in page and "Prod6_proton" in page
    assert "0 of 2 done" in page and "1 of 1 done" in page
    # Per step, never the inputs of every step added together.
    assert "2 / 4" in page and "0 / 1" in page and "3 / 3" in page
    assert "3 / 5" not in page
    assert "1 × No progress" in page and "1 × Flush limit reached" in page


def test_it_sorts_by_its_columns(viewer_client, listed):
    assert order(viewer_client.get(listed)) == [8, 7]  # newest first
    assert order(viewer_client.get(listed, {"sort": "id"})) == [7, 8]
    assert order(viewer_client.get(listed, {"sort": "-attention"})) == [7, 8]
    assert order(viewer_client.get(listed, {"sort": "-progress"})) == [8, 7]
    assert order(viewer_client.get(listed, {"sort": "-steps"})) == [7, 8]
    assert order(viewer_client.get(listed, {"sort": "bogus"})) == [8, 7]
    # Proposals waiting count as attention items too.
    from failover.domain import COMPLETE, FLUSH_ACTION, REASSIGN
    from failover.models import ActionLog

    # One live proposal per transformation and kind: three kinds waiting.
    for kind in (COMPLETE, FLUSH_ACTION, REASSIGN):
        ActionLog.objects.create(transformation_id=20, kind=kind, state="proposed", reason="r")
    assert order(viewer_client.get(listed, {"sort": "-attention"})) == [8, 7]
    assert "3 × Proposal waiting" in plain(viewer_client.get(listed))


def test_it_searches_by_id_or_step_name(viewer_client, listed):
    assert order(viewer_client.get(listed, {"q": "merge"})) == [7]
    assert order(viewer_client.get(listed, {"q": "8"})) == [8]
    none = viewer_client.get(listed, {"q": "nothing-like-it"})
    assert order(none) == [] and "No production matches" in plain(none)


def test_it_falls_back_to_the_first_step_name_without_one_from_dirac(viewer_client, listed):
    SimProduction.objects.filter(id=7).delete()
    assert "gamma_step1" in plain(viewer_client.get(listed))
