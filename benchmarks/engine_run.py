"""Contender "ours": run the product's cycle engine on a copy of a benchmark state.

    python -m benchmarks.engine_run --sim-db PATH --work DIR --latency-ms 10 --cycles 2

Runs in the product's virtual environment, in a process of its own so that its peak memory is its
own. The simulated DIRAC answers from ``--sim-db`` (a copy; it is written to) and the dashboard's
own tables live in a fresh database under ``--work``. Prints one BENCH-RESULT line.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from benchmarks import djangoenv
from benchmarks.measure import cpu_seconds, emit, peak_rss_mb, rss_now_mb


def time_simulator(backend) -> dict:
    """Time spent inside the simulated DIRAC, and how much of it was injected latency.

    The rest of a cycle's wall time is the product's own work (rules, its database, aggregates).
    """
    spent = {"busy": 0.0, "waited": 0.0}
    for name in ("transformations", "file_counts", "tasks", "files", "jobs", "tasks_changed_since",
                 "jobs_changed_since", "set_task_status", "set_file_status", "set_transformation_status"):
        method = getattr(backend, name)

        def timed(*a, _method=method, **kw):
            t0 = time.perf_counter()
            try:
                return _method(*a, **kw)
            finally:
                spent["busy"] += time.perf_counter() - t0

        setattr(backend, name, timed)
    rpc = backend._rpc

    def counted_rpc(method, pages=1):
        spent["waited"] += backend.latency * pages
        return rpc(method, pages)

    backend._rpc = counted_rpc
    return spent


def fanned_out_cycle():
    """One fanned-out cycle with its group tasks run here, one after another (Celery eager); its
    calls are the start's and every group's, as the Cycle row records them."""
    from django.db import transaction

    import failover.tasks  # noqa: F401 - registers the group task
    from dashboard.celery import app
    from failover import cycles
    from failover.backends import get_backend
    from failover.models import Cycle, CycleItem

    app.conf.task_always_eager = True
    made: list = []

    def timed_backend(**kw):
        backend = get_backend(**kw)
        made.append(backend)
        return backend

    cycles.get_backend = timed_backend
    import failover.engine

    failover.engine.get_backend = timed_backend
    with transaction.atomic():
        cycle = cycles.start_cycle(trigger=Cycle.Trigger.BENCHMARK)
    cycle.refresh_from_db()
    calls: dict[str, int] = {}
    for backend in made:
        for method, n in backend.calls.snapshot().items():
            calls[method] = calls.get(method, 0) + n
    items = CycleItem.objects.filter(cycle=cycle)
    outcomes = {i.transformation_id: i.state for i in items}

    class Result:  # what main reads of an engine's CycleResult
        decisions: list = []

    result = Result()
    result.seconds = (cycle.finished - cycle.started).total_seconds() if cycle.finished else 0.0
    result.calls = calls
    result.outcomes = outcomes
    result.errors = items.filter(state=CycleItem.State.ERROR).count()
    result.message = cycle.message
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.engine_run")
    p.add_argument("--sim-db", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--cycles", type=int, default=2)
    p.add_argument("--simulator", choices=("orm", "fast"), default="orm",
                   help="orm: SimulatedDirac as shipped; fast: failover.simulated.fastpath (plain SQL bulk reads)")
    p.add_argument("--profile", type=Path, help="write a pyinstrument HTML profile of cycle 1 here")
    p.add_argument("--change-before", type=int, default=None,
                   help="apply benchmarks/change.py to the simulated DIRAC before this cycle (0-based)")
    p.add_argument("--profile-cycle", type=int, default=None,
                   help="which cycle --profile records (0-based; default the one after the change, else 0)")
    p.add_argument("--change-fraction", type=float, default=0.01)
    p.add_argument("--pause", type=float, default=0.0,
                   help="seconds to wait before cycle --pause-before (the harness: the mirror's margin, as a "
                        "PollingTime longer than the margin would)")
    p.add_argument("--pause-before", type=int, default=None, help="the cycle (0-based) --pause waits before")
    p.add_argument("--change-seed", type=int, default=7)
    p.add_argument("--concurrency", type=int, default=None, help="FAILOVER_DIRAC_CONCURRENCY (default: the setting)")
    p.add_argument("--fanout", action="store_true",
                   help="run each cycle fanned out (cycles.start_cycle), its group tasks in this process "
                        "(Celery eager): what the fan-out costs in calls, against the one-task cycle")
    args = p.parse_args(argv)

    args.work.mkdir(parents=True, exist_ok=True)
    if args.concurrency is not None:
        os.environ["FAILOVER_DIRAC_CONCURRENCY"] = str(args.concurrency)
    dash = args.work / "dashboard.sqlite3"
    for leftover in args.work.glob("dashboard.sqlite3*"):
        leftover.unlink()
    djangoenv.setup(args.sim_db.resolve(), dash.resolve(), var_dir=args.work.resolve(), latency_ms=args.latency_ms)
    djangoenv.migrate("default")

    from django.db import connections

    from failover.engine import Engine
    from failover.models import Policy
    from failover.simulated.backend import SimulatedDirac
    from failover.simulated.fastpath import FastSimulatedDirac
    from tests.factories import SEED_POLICY

    policy = Policy.objects.create(name="default", **SEED_POLICY)
    simulator_class = FastSimulatedDirac if args.simulator == "fast" else SimulatedDirac
    backend = simulator_class(latency_ms=args.latency_ms)
    simulator = time_simulator(backend)
    rss_before = rss_now_mb()
    cycles = []
    changed = None
    for n in range(args.cycles):
        if args.pause and n == args.pause_before:
            time.sleep(args.pause)
        if args.change_before is not None and n == args.change_before:
            from benchmarks import change

            changed = change.apply(args.sim_db, args.change_fraction, args.change_seed)
        profiler = None
        if args.profile and n == (args.profile_cycle if args.profile_cycle is not None else args.change_before or 0):
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.005)
            profiler.start()
        simulator.update(busy=0.0, waited=0.0)
        statements = {"n": 0}

        def counted(execute, sql, params, many, context, _statements=statements):
            _statements["n"] += 1
            return execute(sql, params, many, context)

        cpu0 = cpu_seconds()
        t0 = time.perf_counter()
        # The statements the cycle sends to the dashboard's own database from this thread (the
        # write pool's threads only call the simulated DIRAC, on its database).
        with connections["default"].execute_wrapper(counted):
            if args.fanout:
                result = fanned_out_cycle()
            else:
                result = Engine(backend, policy, trigger="benchmark", concurrency=args.concurrency).run_cycle()
        wall = time.perf_counter() - t0
        cpu = cpu_seconds() - cpu0
        if profiler is not None:
            profiler.stop()
            args.profile.write_text(profiler.output_html())
            args.profile.with_suffix(".txt").write_text(profiler.output_text(unicode=False, color=False))
        kinds: dict[str, int] = {}
        for d in result.decisions:
            kinds[d.kind] = kinds.get(d.kind, 0) + 1
        cycles.append(
            {
                "wall": wall,
                "engine_seconds": result.seconds,
                "cpu": cpu,
                "calls": sum(result.calls.values()),
                "db_statements": statements["n"],
                # Inside the simulated DIRAC: answering (its ORM queries) and the injected latency.
                "server_seconds": simulator["busy"] - simulator["waited"],
                "latency_seconds": simulator["waited"],
                "calls_by_method": result.calls,
                "transformations": len(result.outcomes),
                "errors": result.errors,
                "decisions": kinds,
                "message": result.message,
                # The process's peak so far and its memory now, after this cycle: which cycle sets the peak.
                "peak_rss_mb": peak_rss_mb(),
                "rss_after_mb": rss_now_mb(),
            }
        )
    emit(
        {
            "contender": "ours-fanout" if args.fanout else "ours" if args.simulator == "orm" else "ours-fastsim",
            "latency_ms": args.latency_ms,
            "rss_before_cycles_mb": rss_before,
            "peak_rss_mb": peak_rss_mb(),
            "cycles": cycles,
            "changed": changed,
        }
    )


if __name__ == "__main__":
    main()
