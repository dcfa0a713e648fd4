"""Small scenario builders for engine and web tests."""

from __future__ import annotations

import copy

from django.contrib.auth.models import Group

from failover.domain import KINDS
from failover.engine import Engine
from failover.models import Policy
from failover.simulated.backend import SimulatedDirac
from failover.simulated.scenario import validate
from failover.simulated.store import load

SEED_POLICY = dict(
    transformation_statuses=["Active"],
    complete_types=["DataReprocessing", "Merging", "Training", "ApplyModel"],
    flush_types=["DataReprocessing", "Merging"],
    reassign_types=["DataReprocessing", "Merging", "Training", "ApplyModel"],
    report_types=["DataReprocessing", "Merging"],
    max_reassign=3,
    max_flush=2,
    polling_time=600,
)


def seed_policy(**overrides) -> Policy:
    return Policy.objects.create(name="default", **{**SEED_POLICY, **overrides})


def job(jid: int, status: str, site: str = "LCG.GRIF.fr", minor: str = "", app: str = "Unknown") -> dict:
    minor = minor or {
        "Done": "Execution Complete",
        "Failed": "Maximum of reschedulings reached",
        "Killed": "Received Kill signal",
    }.get(status, "Application")
    return {"id": jid, "status": status, "minor_status": minor, "application_status": app, "site": site}


def chain_scenario() -> dict:
    """Production 7: 4846 (processing) -> 4847 (merge 50) -> 4848 (merge 10000).

    4846 has every file Processed (it will complete); 4847 has two Failed/Killed tasks holding
    Assigned files, one Done task, and a few Unused files (fewer than its group size, so it is
    flushed once its parent completes); 4848 waits for 4847.
    """
    files = [{"transformation": 4846, "lfn": f"/p/in{i}.h5", "status": "Processed", "task": 1} for i in range(3)]
    files += [
        {"transformation": 4847, "lfn": "/p/a1.h5", "status": "Assigned", "task": 1},
        {"transformation": 4847, "lfn": "/p/a2.h5", "status": "Assigned", "task": 1},
        {"transformation": 4847, "lfn": "/p/k1.h5", "status": "Assigned", "task": 2},
        {"transformation": 4847, "lfn": "/p/d1.h5", "status": "Processed", "task": 3},
        {"transformation": 4847, "lfn": "/p/u1.h5", "status": "Unused", "task": None},
        {"transformation": 4848, "lfn": "/p/m1.h5", "status": "Unused", "task": None},
    ]
    return {
        "productions": [{"id": 7, "name": "Prod5b", "status": "Active"}],
        "transformations": [
            {"id": 4846, "name": "step1", "type": "DataReprocessing", "status": "Active", "group_size": 3,
             "production": 7, "parent": -1},
            {"id": 4847, "name": "step2", "type": "Merging", "status": "Active", "group_size": 50,
             "production": 7, "parent": 4846},
            {"id": 4848, "name": "step3", "type": "Merging", "status": "Active", "group_size": 10000,
             "production": 7, "parent": 4847},
        ],
        "files": files,
        "tasks": [
            {"transformation": 4846, "task": 1, "job": 100, "status": "Done"},
            {"transformation": 4847, "task": 1, "job": 101, "status": "Submitted"},
            {"transformation": 4847, "task": 2, "job": 102, "status": "Running"},
            {"transformation": 4847, "task": 3, "job": 103, "status": "Running"},
        ],
        "jobs": [job(100, "Done"), job(101, "Failed"), job(102, "Killed"), job(103, "Done")],
    }


def load_scenario(data: dict) -> None:
    load(validate(copy.deepcopy(data)))


def make_user(django_user_model, name: str, role: str | None):
    """An account with one role (a group), or none."""
    user = django_user_model.objects.create_user(username=name, password=None)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def run_cycle(kinds=KINDS, **kwargs):
    """One engine cycle on the simulated DIRAC, with no retries."""
    return Engine(SimulatedDirac(), retries=0, backoff=0, **kwargs).run_cycle(None, kinds)


# -- a black-hole site: one site failing 60 % of a transformation's jobs, the others 5 % ------------

BLACKHOLE_TID = 5001
BLACKHOLE = "LCG.BLACKHOLE.xx"
GOOD_SITES = ("LCG.IN2P3-CC.fr", "LCG.GRIF.fr", "LCG.CNAF.it")


def blackhole_fails(site: str, k: int, bad_share: float) -> bool:
    """Deterministic outcomes: the k-th job at a site fails at the site's rate, spread evenly."""
    rate = bad_share if site == BLACKHOLE else 0.05
    return int((k + 1) * rate) > int(k * rate)


def blackhole_scenario(per_site: int, final: int, recovered_from: int | None = None) -> dict:
    """One transformation, ``per_site`` tasks at each of four sites; the first ``final`` jobs of each
    site are finished (BLACKHOLE fails 60 % of them, the others 5 %), the rest Running. Jobs of BLACKHOLE from
    ``recovered_from`` on succeed (the site recovered)."""
    files, tasks, jobs = [], [], []
    task = 0
    for site in (BLACKHOLE, *GOOD_SITES):
        for k in range(per_site):
            task += 1
            job_id = 100_000 + k * 10 + (BLACKHOLE, *GOOD_SITES).index(site)  # interleaved: job ids in submission order
            if k >= final:
                status, minor, app, fstatus = "Running", "Application", "Executing Step1_ctapipe_process", "Assigned"
            elif blackhole_fails(site, k, 0.6) and not (
                site == BLACKHOLE and recovered_from is not None and k >= recovered_from
            ):
                status, minor, app, fstatus = ("Failed", "Application Finished With Errors",
                                               f"Operation not permitted ( {k % 3 + 1} : cta-prod-setup-software "
                                               f"Exited With Status {k % 3 + 1})", "Assigned")
            else:
                status, minor, app, fstatus = "Done", "Execution Complete", "Workflow successful", "Processed"
            jobs.append({"id": job_id, "status": status, "minor_status": minor, "application_status": app,
                         "site": site})
            tasks.append({"transformation": BLACKHOLE_TID, "task": task, "job": job_id, "status": status})
            files.append({"transformation": BLACKHOLE_TID, "lfn": f"/ctao/in/{task:06d}.h5", "status": fstatus,
                          "task": task})
    return {
        "productions": [{"id": 50, "name": "blackhole production", "status": "Active"}],
        "transformations": [{"id": BLACKHOLE_TID, "name": "blackhole", "type": "DataReprocessing", "status": "Active",
                             "group_size": 1, "production": 50, "parent": -1}],
        "files": files, "tasks": tasks, "jobs": jobs,
    }
