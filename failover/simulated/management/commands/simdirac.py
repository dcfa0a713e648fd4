"""``manage.py simdirac load|dump|generate|advance|calls``: the simulated DIRAC's commands."""

from __future__ import annotations

import sys

from failover.errors import ConfigurationError
from failover.management.base import FriendlyCommand
from failover.simulated import scenario as scenario_io
from failover.simulated.advance import advance
from failover.simulated.generate import GenerateOptions, generate, generate_large
from failover.simulated.router import SIM_DB
from failover.simulated.store import dump, load


class Command(FriendlyCommand):
    help = "Load, dump, generate or advance the simulated DIRAC (scenario format: docs/scenario.md)."

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        p = sub.add_parser("load", help="replace the whole simulated state with a scenario (- for stdin)")
        p.add_argument("path", nargs="?", help="a JSON or YAML scenario, - for standard input")
        p.add_argument("--empty", action="store_true",
                       help="empty the simulated DIRAC on purpose (instead of a path); an empty file is refused")
        sub.add_parser("dump", help="write the current state as JSON to standard output")
        g = sub.add_parser("generate", help="write a synthetic scenario")
        g.add_argument("--productions", type=int, default=1, help="productions like the seed's (default 1)")
        g.add_argument("--steps", type=int, default=3, help="steps per production (default 3)")
        g.add_argument("--files", type=int, default=400, help="input files of each first step (default 400)")
        g.add_argument("--failure-rate", type=float, default=0.12)
        g.add_argument("--transformations", type=int, help="large mode: this many transformations ...")
        g.add_argument("--jobs", type=int, help="... sharing this many jobs (one file, task and job each)")
        g.add_argument("--catch-up", action="store_true",
                       help="large mode: every task behind its job (default: steady, about 1%% behind)")
        g.add_argument("--seed", type=int, default=1)
        g.add_argument("--load", dest="load_it", action="store_true", help="load it instead of printing it")
        g.add_argument("-o", "--output", help="write to this file instead of standard output")
        a = sub.add_parser("advance", help="play DIRAC's own agents forward")
        a.add_argument("--steps", type=int, default=1)
        a.add_argument("--seed", type=int, default=1)

    def handle(self, *args, action: str, **options) -> None:
        if action != "generate" or options.get("load_it"):
            require_migrated()
        getattr(self, f"do_{action}")(**options)

    def do_load(self, path: str | None, empty: bool, **_) -> None:
        if empty == (path is not None):
            raise ConfigurationError("give a scenario (a path, or - for standard input) or --empty, not both")
        if empty:
            scenario = scenario_io.Scenario()
        elif path == "-":
            scenario = scenario_io.read_bytes(sys.stdin.buffer.read(), "standard input")
        else:
            scenario = scenario_io.read_path(path)
        load(scenario)
        self.stdout.write(
            f"Loaded {len(scenario.transformations)} transformations, {len(scenario.files)} files, "
            f"{len(scenario.tasks)} tasks, {len(scenario.jobs)} jobs"
            + (" (the simulated DIRAC is now empty)" if empty else "")
        )

    def do_dump(self, **_) -> None:
        self.stdout.write(scenario_io.to_json(dump()))

    def do_generate(self, transformations, jobs, catch_up, seed, load_it: bool, output, **o) -> None:
        if (transformations is None) != (jobs is None):
            raise ConfigurationError("--transformations and --jobs go together")
        if transformations is not None:
            if transformations < 1 or jobs < 1:
                raise ConfigurationError("--transformations and --jobs must be positive")
            result = generate_large(transformations, jobs, seed=seed, failure_rate=o["failure_rate"],
                                    catch_up=catch_up)
        else:
            for name in ("productions", "steps", "files"):
                if o[name] < 1:
                    raise ConfigurationError(f"--{name} must be positive")
            result = generate(GenerateOptions(productions=o["productions"], steps=o["steps"], files=o["files"],
                                              failure_rate=o["failure_rate"], seed=seed))
        if load_it:
            load(result)
            self.stdout.write(f"Generated and loaded {len(result.transformations)} transformations, "
                              f"{len(result.jobs)} jobs")
        elif output:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(scenario_io.to_json(result))
            self.stdout.write(f"Wrote {output}")
        else:
            self.stdout.write(scenario_io.to_json(result))

    def do_advance(self, steps: int, seed: int, **_) -> None:
        for _ in range(steps):
            self.stdout.write(str(advance(seed=seed)))


def require_migrated() -> None:
    """One line saying what to run, instead of a "no such table" traceback."""
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connections[SIM_DB])
        missing = executor.migration_plan(executor.loader.graph.leaf_nodes("simdirac"))
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].strip()
        raise ConfigurationError(f"the simulated DIRAC's database ({SIM_DB}) does not answer: {first}") from None
    if missing:
        raise ConfigurationError(
            f"the simulated DIRAC's database ({SIM_DB}) is not set up: the database is not migrated; "
            "run python manage.py migrate")
