"""Fault injection of the simulated DIRAC (failover/simulated/faults.py): rates are random across
processes unless a seed is given, and reproducible with one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from failover.errors import ConfigurationError
from failover.simulated.faults import FaultInjector, FaultPlan

ROOT = Path(__file__).resolve().parent.parent

DRAW = (
    "import sys; from failover.simulated.faults import FaultInjector, FaultPlan; "
    "f = FaultInjector(FaultPlan.parse(sys.argv[1])); "
    "print(''.join('x' if f.next_fault('tasks') else '.' for _ in range(400)))"
)


def draws_in_processes(spec: str, n: int) -> list[str]:
    out = []
    for _ in range(n):
        done = subprocess.run([sys.executable, "-c", DRAW, spec], cwd=ROOT, capture_output=True, text=True,
                              timeout=60, check=True)
        out.append(done.stdout.strip())
    return out


def test_without_a_seed_each_process_draws_its_own_faults():
    runs = draws_in_processes("error%0.1", 4)
    assert len(set(runs)) == 4, runs
    # A 10% rate over 4 x 400 calls: every process sees some faults, about 160 in all
    # (the bounds are about 7 standard deviations wide, so this never fails by chance).
    assert all("x" in r for r in runs)
    assert 70 < sum(r.count("x") for r in runs) < 250


def test_with_a_seed_every_process_draws_the_same_faults():
    runs = draws_in_processes("seed=7,error%0.1", 3)
    assert len(set(runs)) == 1 and "x" in runs[0]
    assert runs != draws_in_processes("seed=8,error%0.1", 1) * 3


def test_without_a_seed_two_adapters_in_one_process_differ_too():
    plan = FaultPlan.parse("timeout%0.5")
    a, b = FaultInjector(plan), FaultInjector(plan)
    assert a.seed != b.seed
    assert [a.next_fault("x") for _ in range(64)] != [b.next_fault("x") for _ in range(64)]


def test_a_given_seed_is_kept_and_counted_faults_stay_exact():
    plan = FaultPlan.parse("seed=3,files:lost@2,error@5")
    assert plan.seed == 3 and FaultInjector(plan).seed == 3
    f = FaultInjector(plan)
    assert [f.next_fault(m) for m in ["files", "tasks", "files", "tasks", "jobs"]] == [
        None, None, "lost", None, "error"]


@pytest.mark.parametrize("spec", ["seed=x", "seed=1.5", "error%2", "error@0", "oops@1"])
def test_a_bad_fault_is_refused(spec):
    with pytest.raises(ConfigurationError):
        FaultPlan.parse(spec)
