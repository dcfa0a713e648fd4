"""Contender "agent": CTADIRAC's TransformationFailoverAgent, unchanged, on the simulated DIRAC.

    var/bench-agent-venv/bin/python -m benchmarks.agent_shim cycle --sim-db PATH --work DIR \
        --latency-ms 10 --cycles 2 --policy JSON [--only 1-99]
    var/bench-agent-venv/bin/python -m benchmarks.agent_shim report --sim-db PATH --transformation 1

Runs in the benchmark's own virtual environment (DIRAC 9.1.9 and CTADIRAC 3.1.0 from PyPI, see
benchmarks/agent_env.py), never in the product's. ``cycle`` builds the agent as DIRAC's agent
reactor would (constructor, then ``initialize``) and calls its ``execute`` once per cycle: the
selection, its thread pool of per-transformation checks (sync, complete, flush, reassign, report)
and the report mail. ``report`` times the agent's report table code alone on one transformation.
Prints one BENCH-RESULT line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks.measure import cpu_seconds, emit, peak_rss_mb, rss_now_mb

AGENT = "Transformation/TransformationFailoverAgent"


def agent_cfg(policy: dict, threads: int, html: bool) -> str:
    """The agent's CS section, from the product's policy so that both contenders apply the same.

    maxThreadsInPool 10 is the seed installation's value; htmlReport is the code default (True)
    unless told otherwise; the seed's empty ``Report =`` is replaced by the policy's report types
    (the seed as printed reports nothing, reference 4.1) so that the agent does its report work.
    """

    def lst(values) -> str:
        return ", ".join(values)

    options = {
        "TransformationStatus": lst(policy["transformation_statuses"]),
        "Report": lst(policy["report_types"]),
        "Complete": lst(policy["complete_types"]),
        "Flush": lst(policy["flush_types"]),
        "Reassign": lst(policy["reassign_types"]),
        "MaxReassign": str(policy["max_reassign"]),
        "MaxFlush": str(policy["max_flush"]),
        "maxThreadsInPool": str(threads),
        "htmlReport": "True" if html else "False",
        "MailTo": "ops@example.org",
        "MailFrom": "noreply@ctao.dirac",
        "PollingTime": str(policy.get("polling_time", 600)),
    }
    if policy.get("transformation_types"):
        options["TransformationTypes"] = lst(policy["transformation_types"])
    body = "\n".join(f"          {k} = {v}" for k, v in options.items())
    return (
        "DIRAC\n{\n  Setup = Benchmark\n}\n"
        "Systems\n{\n  Transformation\n  {\n    Agents\n    {\n      TransformationFailoverAgent\n      {\n"
        f"{body}\n      }}\n    }}\n  }}\n}}\n"
    )


def start_dirac(work: Path, cfg_text: str, log_level: str) -> None:
    """DIRAC's own initialisation on a local configuration only: no CS, no proxy."""
    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "agent.cfg"
    cfg.write_text(cfg_text)
    sys.argv = [sys.argv[0]]  # DIRAC parses the command line itself
    import DIRAC

    DIRAC.initialize(require_auth=False, extra_config_files=[str(cfg)], log_level=log_level)


def parse_ids(text: str | None) -> list[int] | None:
    if not text:
        return None
    ids: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        ids.extend(range(int(lo), int(hi or lo) + 1))
    return ids


def do_cycle(args) -> None:
    from benchmarks.agent_shim import transport
    from benchmarks.agent_shim.server import SimDiracServer

    policy = json.loads(args.policy)
    start_dirac(args.work, agent_cfg(policy, args.threads, not args.text_report), args.log_level)
    server = SimDiracServer(str(args.sim_db), only=parse_ids(args.only))
    calls = transport.install(server, latency_ms=args.latency_ms)

    from CTADIRAC.TransformationSystem.Agent.TransformationFailoverAgent import TransformationFailoverAgent

    agent = TransformationFailoverAgent(AGENT, AGENT)
    res = agent.initialize()
    if not res["OK"]:
        raise SystemExit(f"agent initialize failed: {res['Message']}")
    selected = len(server.TM__getTransformations({"Status": policy["transformation_statuses"]})["Value"])
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
        if args.profile and n == (args.change_before or 0):
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.005)
            profiler.start()
        before = calls.snapshot()
        mails_before = sum(calls.mails.snapshot().values())
        writes_before = dict(server.writes)
        busy_before = server.busy
        cpu0 = cpu_seconds()
        t0 = time.perf_counter()
        result = agent.execute()
        wall = time.perf_counter() - t0
        cpu = cpu_seconds() - cpu0
        if profiler is not None:
            profiler.stop()
            args.profile.write_text(profiler.output_html())
            args.profile.with_suffix(".txt").write_text(profiler.output_text(unicode=False, color=False))
        after = calls.snapshot()
        by_method = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
        by_method.pop("Notification.sendMail", None)
        cycles.append(
            {
                "wall": wall,
                "cpu": cpu,
                "calls": sum(by_method.values()),
                # Answering inside the simulated services (serialised); the injected latency is
                # waited by the agent's threads in parallel, so it is not a share of the wall time.
                "server_seconds": server.busy - busy_before,
                "latency_seconds": sum(by_method.values()) * args.latency_ms / 1000.0,
                "calls_by_method": by_method,
                "transformations": selected,
                "mails": sum(calls.mails.snapshot().values()) - mails_before,
                "writes": {k: server.writes[k] - writes_before[k] for k in server.writes},
                "ok": bool(result["OK"]),
                "message": result.get("Message", ""),
            }
        )
    agent.finalize()
    emit(
        {
            "contender": "agent",
            "latency_ms": args.latency_ms,
            "threads": args.threads,
            "only": args.only or "",
            "rss_before_cycles_mb": rss_before,
            "peak_rss_mb": peak_rss_mb(),
            "cycles": cycles,
            "changed": changed,
        }
    )


def do_report(args) -> None:
    """The agent's report: its counting (data) and its rich table exported as HTML and text."""
    import sqlite3

    start_dirac(args.work, agent_cfg(json.loads(args.policy), 1, True), args.log_level)
    from CTADIRAC.TransformationSystem.Agent.TransformationFailoverAgent import TransformationFailoverAgent

    agent = TransformationFailoverAgent(AGENT, AGENT)
    db = sqlite3.connect(str(args.sim_db))
    # Exactly what getJobsParameters hands the agent: {jobID: {Status, MinorStatus, ApplicationStatus, Site}}.
    jobs = {
        jid: {"Status": s, "MinorStatus": m, "ApplicationStatus": a, "Site": site}
        for jid, s, m, a, site in db.execute(
            "SELECT j.id, j.status, j.minor_status, j.application_status, j.site FROM simdirac_simjob j "
            "JOIN simdirac_simtask t ON t.job = j.id WHERE t.transformation = ? ORDER BY t.task",
            (args.transformation,),
        )
    }
    timings: dict[str, list[float]] = {"data": [], "html": [], "text": []}
    sizes: dict[str, int] = {}
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        res = agent.parse_transformation_jobs_attributes(args.transformation, jobs, create_report=False)
        timings["data"].append(time.perf_counter() - t0)
        assert res["OK"], res
        for kind, html in (("html", True), ("text", False)):
            agent.html = html
            t0 = time.perf_counter()
            res = agent.parse_transformation_jobs_attributes(args.transformation, jobs)
            timings[kind].append(time.perf_counter() - t0)
            sizes[kind] = len(res["Value"])
    emit({"contender": "agent", "jobs": len(jobs), "seconds": {k: min(v) for k, v in timings.items()},
          "sizes": sizes, "peak_rss_mb": peak_rss_mb()})


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.agent_shim")
    sub = p.add_subparsers(dest="action", required=True)
    c = sub.add_parser("cycle", help="run the agent's execute() for some cycles")
    c.add_argument("--sim-db", type=Path, required=True, help="a copy of the benchmark state (it is written to)")
    c.add_argument("--work", type=Path, required=True)
    c.add_argument("--latency-ms", type=float, default=0.0)
    c.add_argument("--cycles", type=int, default=2)
    c.add_argument("--threads", type=int, default=10, help="maxThreadsInPool (seed CS: 10)")
    c.add_argument("--policy", required=True, help="the product's policy as JSON (tests/factories.py SEED_POLICY)")
    c.add_argument("--only", help="select only these transformation ids, e.g. 1-99 (a documented subset)")
    c.add_argument("--text-report", action="store_true", help="htmlReport = False")
    c.add_argument("--log-level", default="ERROR")
    c.add_argument("--profile", type=Path, help="write a pyinstrument profile of cycle 1 here")
    c.add_argument("--change-before", type=int, default=None,
                   help="apply benchmarks/change.py to the simulated DIRAC before this cycle (0-based)")
    c.add_argument("--change-fraction", type=float, default=0.01)
    c.add_argument("--pause", type=float, default=0.0,
                   help="seconds to wait before cycle --pause-before (the harness: the mirror's margin, as a "
                        "PollingTime longer than the margin would)")
    c.add_argument("--pause-before", type=int, default=None, help="the cycle (0-based) --pause waits before")
    c.add_argument("--change-seed", type=int, default=7)
    r = sub.add_parser("report", help="time the agent's report table code on one transformation")
    r.add_argument("--sim-db", type=Path, required=True)
    r.add_argument("--work", type=Path, required=True)
    r.add_argument("--transformation", type=int, default=1)
    r.add_argument("--repeat", type=int, default=3)
    r.add_argument("--policy", required=True)
    r.add_argument("--log-level", default="ERROR")
    args = p.parse_args()
    {"cycle": do_cycle, "report": do_report}[args.action](args)


if __name__ == "__main__":
    main()
