"""What insight (site hints, alerts, forecasts, the history sample) adds to a warm cycle.

    python -m benchmarks.bench_insight                              # 1,000 transformations, 100,000 jobs
    python -m benchmarks.bench_insight --transformations 1000 --jobs 1000000 --pairs 2

The state is the benchmarks' ``generate_large`` (``simdirac generate``, cached under
var/bench/states). In a process of its own, on a fresh dashboard database: one cold cycle (it acts
and writes the first history samples), then ``--pairs`` pairs of warm cycles back to back, in
turns with insight as shipped and with ``failover.history.observe``/``save`` replaced by no-ops
(nothing else changes). Inside the cycles with insight, the time spent in ``observe`` and ``save``
is measured too. Then, outside the cycle, the signature x site matrix of every transformation from
its stored aggregates (what the pages and digests compute). Prints a markdown table; see
docs/benchmarks.md, "Insight".
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import djangoenv


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_insight")
    p.add_argument("--transformations", type=int, default=1000)
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--simulator", choices=("orm", "fast"), default="fast")
    args = p.parse_args(argv)

    from benchmarks.__main__ import build_state

    state = build_state(f"insight-{args.transformations}-{args.jobs}", args.transformations, args.jobs, False)
    work = Path(tempfile.mkdtemp(prefix="bench-insight-"))
    sim = work / "sim.sqlite3"
    shutil.copyfile(state, sim)
    djangoenv.setup(sim, work / "dashboard.sqlite3", var_dir=work)
    djangoenv.migrate("default")

    from failover import history
    from failover.engine import Engine
    from failover.models import Cycle, Policy, ProgressSample, TransformationState
    from failover.simulated.backend import SimulatedDirac
    from failover.simulated.fastpath import FastSimulatedDirac
    from reports.insight import signature_matrix
    from reports.stores import get_store
    from tests.factories import SEED_POLICY

    Policy.objects.create(name="default", **SEED_POLICY)
    backend = (FastSimulatedDirac if args.simulator == "fast" else SimulatedDirac)()
    real_observe, real_save = history.observe, history.save
    spent = {"observe": 0.0, "save": 0.0}

    def timed_observe(*a, **kw):
        t0 = time.perf_counter()
        try:
            return real_observe(*a, **kw)
        finally:
            spent["observe"] += time.perf_counter() - t0

    def timed_save(*a, **kw):
        t0 = time.perf_counter()
        try:
            return real_save(*a, **kw)
        finally:
            spent["save"] += time.perf_counter() - t0

    def cycle() -> float:
        engine = Engine(backend, retries=0, backoff=0, trigger=Cycle.Trigger.BENCHMARK)
        t0 = time.perf_counter()
        result = engine.run_cycle()
        wall = time.perf_counter() - t0
        assert result.errors == 0, result.message
        return wall

    print(f"state: {args.transformations} transformations, {args.jobs} jobs ({args.simulator} simulator)")
    history.observe, history.save = timed_observe, timed_save
    cold = cycle()
    print(f"cold cycle (acts, first samples): {cold:.2f} s")
    with_insight, without, inside = [], [], []
    for n in range(args.pairs):
        for mode in (("with", "without") if n % 2 == 0 else ("without", "with")):
            if mode == "with":
                history.observe, history.save = timed_observe, timed_save
                spent.update(observe=0.0, save=0.0)
                wall = cycle()
                with_insight.append(wall)
                inside.append(spent["observe"] + spent["save"])
            else:
                history.observe = lambda *a, **kw: history.Observation()
                history.save = lambda observation: None
                without.append(cycle())
            print(f"  warm cycle {mode} insight: {wall if mode == 'with' else without[-1]:.2f} s")
    history.observe, history.save = real_observe, real_save

    store = get_store()
    ids = list(TransformationState.objects.values_list("transformation_id", flat=True))
    t0 = time.perf_counter()
    cells = 0
    for tid in ids:
        snap = store.latest(tid)
        if snap is not None:
            cells += len(signature_matrix({tid: snap.rows}).rows)
    matrices = time.perf_counter() - t0

    w, wo, ins = statistics.median(with_insight), statistics.median(without), statistics.median(inside)
    print()
    print(f"| {args.transformations:,} transformations, {args.jobs:,} jobs | median of {args.pairs} |")
    print("|---|---|")
    print(f"| warm cycle with insight | {w:.2f} s |")
    print(f"| warm cycle without insight | {wo:.2f} s |")
    print(f"| difference | {w - wo:+.2f} s ({100 * (w - wo) / wo:+.1f} %) |")
    print(f"| measured inside observe + save | {ins:.2f} s ({100 * ins / w:.1f} % of the cycle with insight) |")
    print(f"| history samples written | {ProgressSample.objects.count():,} |")
    print(f"| every transformation's signature matrix from its stored aggregates (pages, digests; not in a cycle)"
          f" | {matrices:.2f} s ({len(ids)} transformations, {cells} signature rows) |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
