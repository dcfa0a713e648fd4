"""``python -m benchmarks``: the product's cycle against CTADIRAC's agent, side by side.

    python -m benchmarks --workload small          # 100 transformations / 100,000 jobs (~6 min)
    python -m benchmarks --workload large          # 1,000 transformations / 1,000,000 jobs
    python -m benchmarks --workload all            # both, and the report benchmark
    python -m benchmarks --workload small --state steady --latency 10
    python -m benchmarks --workload small --state warm --latency 10,0 --contenders ours,agent
    python -m benchmarks --workload follows --latency 10 --contenders ours,agent   # cost follows change

For each workload and state it builds the simulated DIRAC once with ``manage.py simdirac
generate`` (cached under var/bench/states), then for each latency gives each contender a fresh
copy of that same SQLite file: ours (the product's Engine, in this venv) and the agent
(CTADIRAC's TransformationFailoverAgent, unchanged, in var/bench-agent-venv through
benchmarks/agent_shim). Each contender runs in a process of its own.

States: ``steady`` and ``catchup`` run the same number of cycles with no change in DIRAC between
them (cycle 1 of steady is the cold cycle). ``warm`` is the steady state as it is lived: cycle 0
on the generated state (ours fills what it keeps), then the same change is applied to both
contenders' DIRAC (benchmarks/change.py: about 1% of the jobs end, most Done, some Failed, their
LastUpdateTime moved as DIRAC moves it), then the measured warm cycle, then the cycle after it (it
sees the warm cycle's own writes: setTaskStatus moves the tasks' LastUpdateTime), then a cycle with
nothing changed (``--warm-cycles N``, default 4; the last cycle is the "nothing changed" one).
Results go to var/bench/results/ (JSON and markdown) and the markdown tables are printed. See
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import agent_env
from benchmarks.measure import machine, parse
from benchmarks.policy import seed_policy

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "var" / "bench"
WORKLOADS = {"small": (100, 100_000), "large": (1000, 1_000_000), "single": (1, 100_000),
             # "Cost follows change": the same 100 transformations with 20,000 and 200,000 jobs.
             "follows-20k": (100, 20_000), "follows-200k": (100, 200_000)}
# "single" is one transformation of 100,000 jobs: it shows our calls per transformation when a
# transformation is large. Ours only: the agent treats one transformation in one thread, so its
# catch-up there would be 200,000 sequential calls (over half an hour at 10 ms).
OURS_ONLY = {"single"}
# ours-fanout: the same cycle fanned out (one task per production group, run in-process): its calls
# against the one-task cycle's.
CONTENDERS = ("ours", "ours-fastsim", "ours-fanout", "agent")
STATES = ("steady", "warm", "catchup")
# warm: cycle 0 cold, the change, the warm cycle, the cycle after it (which sees the warm cycle's own
# writes: setTaskStatus moves the tasks' LastUpdateTime), a nothing-changed cycle (--warm-cycles).
WARM_CYCLES, CHANGE_BEFORE = 4, 1
# The agent's catch-up cycle costs two RPCs per task (a Transformation object's fetch, then
# setTaskStatus): about 2,000 per transformation here. On the large workload it is measured on
# the first AGENT_SUBSET transformations (whole productions) and extrapolated per transformation.
AGENT_SUBSET = 99
REPORT_JOBS = 100_000


def log(msg: str) -> None:
    print(msg, flush=True)


# -- machine ------------------------------------------------------------------------------------


def git_revision() -> str:
    """The product's commit, with "+changes" when the work tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "failover", "reports", "dashboard"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + (" +changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# -- states -------------------------------------------------------------------------------------


def _product_env(work: Path, sim_db: Path) -> dict:
    env = dict(os.environ)
    env.update(
        VAR_DIR=str(work),
        DATABASE_URL=f"sqlite:///{work / 'dashboard.sqlite3'}",
        SIMDIRAC_DATABASE_URL=f"sqlite:///{sim_db}",
        LOG_LEVEL="WARNING",
    )
    env.pop("OPENSEARCH_URL", None)
    return env


def build_state(name: str, transformations: int, jobs: int, catch_up: bool) -> Path:
    """The simulated DIRAC of one workload, built once with ``simdirac generate`` and cached."""
    states = BENCH / "states"
    states.mkdir(parents=True, exist_ok=True)
    path = states / f"{name}.sqlite3"
    # Rebuilt when the generator or the simulator's tables change.
    key = hashlib.sha256()
    for f in ("failover/simulated/generate.py", "failover/simulated/models.py", "failover/simulated/store.py"):
        key.update((ROOT / f).read_bytes())
    key.update(f"{transformations} {jobs} {catch_up}".encode())
    stamp = path.with_suffix(".stamp")
    if path.exists() and stamp.exists() and stamp.read_text().strip() == key.hexdigest():
        return path
    log(f"  building {name}: simdirac generate --transformations {transformations} --jobs {jobs}"
        f"{' --catch-up' if catch_up else ''} --load")
    work = states / f"{name}.build"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    tmp = work / "sim.sqlite3"
    env = _product_env(work, tmp)
    manage = [sys.executable, str(ROOT / "manage.py")]
    t0 = time.perf_counter()
    subprocess.run([*manage, "migrate", "--database", "simdirac", "-v", "0"], env=env, cwd=ROOT, check=True)
    cmd = [*manage, "simdirac", "generate", "--transformations", str(transformations), "--jobs", str(jobs),
           "--load"]
    if catch_up:
        cmd.append("--catch-up")
    subprocess.run(cmd, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    with sqlite3.connect(tmp) as db:  # one self-contained file to copy
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA journal_mode=DELETE")
    tmp.replace(path)
    shutil.rmtree(work, ignore_errors=True)
    stamp.write_text(key.hexdigest() + "\n")
    log(f"  built in {time.perf_counter() - t0:.0f} s ({path.stat().st_size / 1e6:.0f} MB)")
    return path


# The mirror's delta reads go back FAILOVER_MIRROR_MARGIN_SECONDS (default 120) before the last
# read's start; see settle_state.
MIRROR_MARGIN_SECONDS = 120


def margin_seconds() -> int:
    return int(os.environ.get("FAILOVER_MIRROR_MARGIN_SECONDS", MIRROR_MARGIN_SECONDS))


def settle_state(path: Path) -> None:
    """Wait until a state just generated is older than the mirror's margin.

    ``simdirac generate`` stamps every task's and job's LastUpdateTime with the time it wrote them.
    A cycle run within the margin of that time finds every row "changed since" its cut, so its
    delta read re-reads the whole installation (on 2026-12-02 at 02:16 the small run's fourth
    cycle made 33 calls for this reason: 10 pages of tasks, 21 of jobs). No installation has every
    row changed in the last two minutes; the benchmark waits the rest of the margin instead."""
    margin = margin_seconds()
    stamp = path.with_suffix(".stamp")
    age = time.time() - (stamp if stamp.exists() else path).stat().st_mtime
    if age < margin + 5:
        wait = margin + 5 - age
        log(f"  {path.name} was generated {age:.0f} s ago: waiting {wait:.0f} s, until its rows' LastUpdateTime "
            f"is older than the mirror's margin ({margin} s)")
        time.sleep(wait)


def summary_of(path: Path, only: str = "") -> dict:
    from benchmarks.agent_shim.__main__ import parse_ids
    from benchmarks.agent_shim.server import state_summary

    with sqlite3.connect(path) as db:
        return state_summary(db, parse_ids(only))


# -- contenders ---------------------------------------------------------------------------------


def run_contender(contender: str, state: Path, run_dir: Path, latency: float, cycles: int, *,
                  only: str = "", compare: str = "", profile: bool = False, threads: int = 10,
                  change_before: int | None = None, change_fraction: float = 0.01,
                  concurrency: int | None = None, pause: tuple[int, float] | None = None) -> dict:
    run_dir.mkdir(parents=True, exist_ok=True)
    sim = run_dir / "sim.sqlite3"
    shutil.copyfile(state, sim)
    out = run_dir / "output.log"
    if contender in ("ours", "ours-fastsim", "ours-fanout"):
        cmd = [sys.executable, "-m", "benchmarks.engine_run", "--sim-db", str(sim), "--work", str(run_dir),
               "--latency-ms", str(latency), "--cycles", str(cycles),
               "--simulator", "orm" if contender == "ours" else "fast"]
        if contender == "ours-fanout":
            cmd.append("--fanout")
        if concurrency is not None:
            cmd += ["--concurrency", str(concurrency)]
        prefix: list[str] = []
    else:
        cmd = [str(agent_env.python()), "-m", "benchmarks.agent_shim", "cycle", "--sim-db", str(sim),
               "--work", str(run_dir), "--latency-ms", str(latency), "--cycles", str(cycles),
               "--threads", str(threads), "--policy", json.dumps(seed_policy())]
        if only:
            cmd += ["--only", only]
        prefix = []
    if change_before is not None:
        cmd += ["--change-before", str(change_before), "--change-fraction", str(change_fraction)]
    if pause:
        cmd += ["--pause-before", str(pause[0]), "--pause", str(pause[1])]
    if profile:
        # py-spy samples the whole process from outside (works for both interpreters).
        prefix = [str(agent_env.venv_dir() / "bin" / "py-spy"), "record", "--nonblocking", "-r", "100", "-f", "raw",
                  "-o", str(run_dir / "profile.raw"), "--"]
    with out.open("w") as fh:
        proc = subprocess.run([*prefix, *cmd], cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    text = out.read_text(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{contender} failed (exit {proc.returncode}); see {out}\n{text[-2000:]}")
    result = parse(text)
    result["state_after"] = summary_of(sim, compare)
    sim.unlink()
    return result


def run_report(run_dir: Path, jobs: int) -> dict:
    # The same state as the "single" catch-up workload: one transformation, every task behind.
    state = build_state("single-catchup", 1, jobs, True)
    out: dict = {}
    for contender in ("ours", "agent"):
        d = run_dir / f"report-{contender}"
        d.mkdir(parents=True, exist_ok=True)
        if contender == "ours":
            cmd = [sys.executable, "-m", "benchmarks.report_run", "--sim-db", str(state), "--work", str(d)]
        else:
            cmd = [str(agent_env.python()), "-m", "benchmarks.agent_shim", "report", "--sim-db", str(state),
                   "--work", str(d), "--policy", json.dumps(seed_policy())]
        with (d / "output.log").open("w") as fh:
            proc = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
        text = (d / "output.log").read_text(errors="replace")
        if proc.returncode != 0:
            raise RuntimeError(f"report ({contender}) failed; see {d / 'output.log'}\n{text[-2000:]}")
        out[contender] = parse(text)
    return out


# -- tables -------------------------------------------------------------------------------------


def _fmt(x: float, digits: int = 2) -> str:
    return f"{x:,.{digits}f}"


def cycle_rows(results: list[dict]) -> list[str]:
    head = ("| workload | state | latency | contender | cycle 1 s | cycle 1 calls | calls / transf. | "
            "cycle 2 s | cycle 2 calls | calls / transf. | peak RSS MB (before cycle 1) | "
            "agent's time ÷ this (cycle 1, 2) |")
    lines = [head, "|" + "|".join(["---"] * 12) + "|"]
    for r in results:
        if r["state"] == "warm":
            continue  # lived_rows
        total = r["transformations"]
        agent = r.get("agent")
        a_scale = r["transformations"] / (agent["cycles"][0]["transformations"] or 1) if agent else 1
        for contender in CONTENDERS:
            c = r.get(contender)
            if c is None:
                continue
            measured = c["cycles"][0]["transformations"] or 1
            scale = total / measured
            mark = "≈" if scale != 1 else ""
            cells = [r["workload"], r["state"], f"{r['latency_ms']:g} ms", contender]
            for cyc in c["cycles"][:2]:
                calls = cyc["calls"]
                cells += [mark + _fmt(cyc["wall"] * scale), mark + f"{round(calls * scale):,}",
                          _fmt(calls / measured, 1)]
            while len(cells) < 10:
                cells += ["", "", ""]
            rss = f"{c['peak_rss_mb']:,.0f} ({c['rss_before_cycles_mb']:,.0f})"
            cells.append(rss + (" subset" if scale != 1 else ""))
            if contender != "agent" and agent:
                amark = "≈" if a_scale != 1 else ""
                ratios = [a["wall"] * a_scale / o["wall"] for a, o in zip(agent["cycles"], c["cycles"], strict=False)]
                cells.append(", ".join(f"{amark}{x:.1f}x" for x in ratios[:2]))
            else:
                cells.append("")
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def is_write(method: str) -> bool:
    """A DIRAC write, by the name either contender counts it under (set_task_status, TM.setTaskStatus)."""
    return method.rsplit(".", 1)[-1].lower().startswith("set")


def split_calls(cycle: dict) -> tuple[int, int]:
    """(reads, writes) of one cycle."""
    by = cycle.get("calls_by_method") or {}
    writes = sum(n for m, n in by.items() if is_write(m))
    return cycle["calls"] - writes, writes


def cycle_names(n: int, paused: bool = False) -> list[str]:
    """What each of a warm run's ``n`` cycles is: cold, warm, the cycle after the warm cycle's own
    writes, ..., and the last one, nothing changed (with at least three cycles). ``paused``
    (``--margin-pause``): a pause of the mirror's margin came before the last cycle but one, so the
    last cycle's window holds no earlier write; the one before it, when it is not the cycle after
    the warm one, still has the warm cycle's writes in its window (as back to back)."""
    names = []
    for i in range(n):
        if i == 0:
            names.append("cold (cycle 0)")
        elif i == CHANGE_BEFORE:
            names.append(f"warm (cycle {i}, after the change)")
        elif i == n - 1:
            names.append(f"nothing changed (cycle {i}, margin waited)" if paused
                         else f"nothing changed (cycle {i})")
        elif paused and i == n - 2 and i > CHANGE_BEFORE + 1:
            names.append(f"nothing changed (cycle {i}, back to back)")
        elif i == CHANGE_BEFORE + 1:
            names.append(f"cycle {i} (sees the warm cycle's writes)")
        else:
            names.append(f"cycle {i}")
    return names


def still(contender: dict) -> dict:
    """A warm run's nothing-changed cycle: its last (with at least three cycles)."""
    return contender["cycles"][-1]


def back_to_back(r: dict, contender: str) -> int | None:
    """With ``--margin-pause``, the index of the nothing-changed cycle whose window still holds the
    warm cycle's writes (the last but one), when the run has one; else None."""
    n = len(r[contender]["cycles"])
    return n - 2 if r.get("margin_pause") and n - 2 > CHANGE_BEFORE + 1 else None


OURS = tuple(c for c in CONTENDERS if c != "agent")


def lived_rows(results: list[dict]) -> list[str]:
    """The warm state's cycles per contender, side by side, with the agent's time ÷ ours per cycle."""
    lines: list[str] = []
    for r in results:
        if r["state"] != "warm":
            continue
        present = [c for c in CONTENDERS if c in r and len(r[c]["cycles"]) >= 3]
        if not present:
            continue
        n = min(len(r[c]["cycles"]) for c in present)
        names = cycle_names(n, bool(r.get("margin_pause")))
        if lines:
            lines.append("")
        lines += [f"| {r['workload']}, {r['latency_ms']:g} ms | " + " | ".join(names) + " | peak RSS MB |",
                  "|" + "|".join(["---"] * (n + 2)) + "|"]
        agent = r.get("agent") if "agent" in present else None
        for contender in present:
            c = r[contender]
            cells = [f"{cyc['wall']:,.2f} s, {cyc['calls']:,} calls" for cyc in c["cycles"][:n]]
            lines.append(f"| {contender} | " + " | ".join(cells) + f" | {c['peak_rss_mb']:,.0f} |")
        for contender in present:
            if contender == "agent" or agent is None:
                continue
            c = r[contender]
            ratios = [f"{a['wall'] / o['wall']:.1f}x" if o["wall"] else "" for a, o in
                      zip(agent["cycles"][:n], c["cycles"][:n], strict=True)]
            mem = agent["peak_rss_mb"] / c["peak_rss_mb"] if c["peak_rss_mb"] else 0
            lines.append(f"| agent ÷ {contender} | " + " | ".join(f"**{x}**" for x in ratios) + f" | {mem:.2f}x |")
        lines.append("")
        for contender in present:
            c = r[contender]
            t = c["cycles"][0]["transformations"] or 1
            parts = []
            for name, cyc in zip(names, c["cycles"][:n], strict=True):
                reads, writes = split_calls(cyc)
                parts.append(f"{name.split(' (')[0]} {cyc['calls'] / t:.2f} ({reads / t:.2f} reads + "
                             f"{writes / t:.2f} writes)")
            lines.append(f"- {contender}, calls per transformation: " + "; ".join(parts) + ".")
    changed = [r for r in results if r["state"] == "warm"]
    for r in changed:
        moved = next((r[c].get("changed") for c in CONTENDERS if c in r and r[c].get("changed")), None)
        if moved:
            lines.append(f"\nChange before the warm cycle ({r['workload']}, {r['latency_ms']:g} ms): {moved['jobs']:,} "
                         f"of {moved['of_jobs']:,} jobs ended ({moved['done']:,} Done, {moved['failed']:,} Failed; "
                         f"{moved['files_processed']:,} files Processed, {moved['files_unused']:,} Unused).")
            break
    return lines


def follows(doc: dict) -> list[str]:
    """Cost follows change: the nothing-changed (last) cycle on 100 transformations with 20,000
    and 200,000 jobs."""
    out = []
    by = {(r["workload"], r["latency_ms"]): r for r in doc["cycles"] if r["state"] == "warm"}
    for (workload, latency), big in sorted(by.items()):
        if workload != "follows-200k" or ("follows-20k", latency) not in by:
            continue
        small = by[("follows-20k", latency)]
        for contender in CONTENDERS:
            if contender not in small or contender not in big:
                continue
            a, b = still(small[contender]), still(big[contender])
            out.append(f"| {latency:g} ms | {contender} | {len(big[contender]['cycles']) - 1} | {a['calls']:,} | "
                       f"{b['calls']:,} | {b['calls'] / max(1, a['calls']):.2f}x | {a['wall']:.2f} | {b['wall']:.2f} | "
                       f"{b['wall'] / a['wall']:.2f}x |")
    if out:
        out = ["Cost follows change: the nothing-changed (last) cycle, 100 transformations, 20,000 then 200,000 jobs:",
               "", "| latency | contender | cycle | calls 20k | calls 200k | calls ratio | s 20k | s 200k | "
               "time ratio |",
               "|---|---|---|---|---|---|---|---|---|", *out]
    return out


def targets14(doc: dict) -> str:
    """Issue 14's targets, from this run, side by side with the agent (nothing changed: the last cycle)."""
    out = ["Targets (issue 14), from this run:"]
    for r in doc["cycles"]:
        for ours in OURS:
            if r["state"] != "warm" or ours not in r or len(r[ours]["cycles"]) < 3:
                continue
            o = r[ours]["cycles"]
            n = o[0]["transformations"] or 1
            where = f"{r['workload']}, {r['latency_ms']:g} ms, {ours}"
            if "agent" in r and len(r["agent"]["cycles"]) >= 3 and not r["workload"].startswith("follows"):
                a = r["agent"]["cycles"]
                checks = [(CHANGE_BEFORE, "warm steady cycle", 20)]
                if back_to_back(r, ours) is not None:
                    i = back_to_back(r, ours)
                    checks.append((i, f"nothing-changed cycle (cycle {i}, back to back)", 50))
                last = len(o) - 1
                checks.append((last, f"nothing-changed cycle (cycle {last}"
                               + (", margin waited)" if r.get("margin_pause") else ")"), 50))
                for i, name, goal in checks:
                    ratio = a[i]["wall"] / o[i]["wall"]
                    out.append(f"- {name} ≥{goal}x faster than the agent ({where}): ours {o[i]['wall']:.2f} s, "
                               f"{o[i]['calls']:,} calls; agent {a[i]['wall']:.2f} s, {a[i]['calls']:,} calls: "
                               f"{ratio:.1f}x {'met' if ratio >= goal else 'MISSED'}")
                mine, theirs = r[ours]["peak_rss_mb"], r["agent"]["peak_rss_mb"]
                out.append(f"- peak memory ≤ the agent's ({where}): ours {mine:.0f} MB, agent {theirs:.0f} MB "
                           f"{'met' if mine <= theirs else 'MISSED'}")
            reads, writes = split_calls(o[CHANGE_BEFORE])
            per = o[CHANGE_BEFORE]["calls"] / n
            out.append(f"- ≤1 DIRAC call per transformation, warm ({where}): {per:.2f} ({reads / n:.2f} reads + "
                       f"{writes / n:.2f} writes) {'met' if per <= 1 else 'MISSED'}")
    for r in doc["cycles"]:
        for ours in OURS:
            if r["state"] == "catchup" and ours in r:
                c = r[ours]["cycles"][0]
                per = c["calls"] / (c["transformations"] or 1)
                out.append(f"- ≤5 DIRAC calls per transformation, catch-up ({r['workload']}, {r['latency_ms']:g} ms, "
                           f"{ours}): {per:.2f} {'met' if per <= 5 else 'MISSED'}")
    by = {(r["workload"], r["latency_ms"]): r for r in doc["cycles"] if r["state"] == "warm"}
    for (workload, latency), big in sorted(by.items()):
        small = by.get(("follows-20k", latency))
        if workload != "follows-200k" or not small:
            continue
        for ours in OURS:
            if ours not in big or ours not in small:
                continue
            pairs = [("nothing changed" + (", margin waited" if big.get("margin_pause") else ""),
                      still(small[ours]), still(big[ours]))]
            i, j = back_to_back(small, ours), back_to_back(big, ours)
            if i is not None and j is not None:
                pairs.append(("nothing changed, back to back", small[ours]["cycles"][i], big[ours]["cycles"][j]))
            for label, a, b in pairs:
                calls, time_ = b["calls"] / max(1, a["calls"]), b["wall"] / a["wall"]
                out.append(f"- cost follows change ({latency:g} ms, {ours}, {label}): calls {a['calls']:,} → "
                           f"{b['calls']:,}, {calls:.2f}x (≤1.2x {'met' if calls <= 1.2 else 'MISSED'}), time "
                           f"{a['wall']:.2f} → {b['wall']:.2f} s, {time_:.2f}x "
                           f"(≤1.5x {'met' if time_ <= 1.5 else 'MISSED'})")
    return "\n".join(out)


def targets(doc: dict) -> str:
    """Issue 8's targets, as ratios from this run."""
    out = ["Targets (issue 8), from this run:"]
    for r in doc["cycles"]:
        if r["workload"] != "large" or r["latency_ms"] != 10 or "agent" not in r:
            continue
        scale = r["transformations"] / (r["agent"]["cycles"][0]["transformations"] or 1)
        for ours in ("ours", "ours-fastsim"):
            if ours not in r:
                continue
            for n, (a, o) in enumerate(zip(r["agent"]["cycles"], r[ours]["cycles"], strict=False), 1):
                ratio = a["wall"] * scale / o["wall"]
                out.append(f"- ≥20x faster per cycle at 10 ms, 1,000 transformations, {r['state']} cycle {n} "
                           f"({ours}): {ratio:.1f}x {'met' if ratio >= 20 else 'MISSED'}"
                           + (" (agent extrapolated)" if scale != 1 else ""))
    worst = max(
        ((c["calls"] / max(1, c["transformations"]), r["workload"], r["state"], n)
         for r in doc["cycles"] if "ours" in r for n, c in enumerate(r["ours"]["cycles"], 1)),
        default=None,
    )
    if worst:
        out.append(f"- ≤5 DIRAC calls per transformation per cycle: worst {worst[0]:.1f} "
                   f"({worst[1]}/{worst[2]} cycle {worst[3]}) {'met' if worst[0] <= 5 else 'MISSED'}")
    rep = doc.get("report")
    if rep:
        a, o = rep["agent"]["seconds"], rep["ours"]["seconds"]
        from_jobs = a["html"] / o["html_from_jobs"]
        stored = a["html"] / o["html"]
        out.append(f"- report ≥50x faster (HTML): {stored:.0f}x from the stored aggregates "
                   f"{'met' if stored >= 50 else 'MISSED'}; {from_jobs:.1f}x when ours also counts the 100,000 jobs "
                   f"{'met' if from_jobs >= 50 else 'MISSED'}")
    return "\n".join(out)


def markdown(doc: dict) -> str:
    m = doc["machine"]
    lines = [
        f"Run {doc['started']} to {doc['finished']} (UTC) on {m['nproc']} CPUs, {m['cpu']}, {m['memory_gb']} GB; "
        f"Python {m['python']}; product at {doc.get('revision', '?')}; load average at start {doc['load_start']}, "
        f"at end {doc['load_end']}.",
        f"Command: `{doc['command']}`",
        "",
    ]
    if any(r["state"] == "warm" for r in doc["cycles"]):
        lines += ["The steady state as it is lived (cycle 0 cold, then the change, the warm cycle, the cycle that "
                  "sees the warm cycle's own writes, ..., the last cycle with nothing changed; each cell: wall "
                  "time, DIRAC calls):", ""]
        lines += lived_rows(doc["cycles"])
        lines += ["", *follows(doc), "", targets14(doc), ""]
    if doc["cycles"]:
        if any(r["state"] != "warm" for r in doc["cycles"]):
            lines += cycle_rows(doc["cycles"])
        notes = [r for r in doc["cycles"] if r.get("agent") and r["agent"].get("only")]
        if notes:
            lines.append("")
            for r in notes:
                a = r["agent"]
                n = a["cycles"][0]["transformations"]
                lines.append(
                    f"≈ {r['workload']}/{r['state']}/{r['latency_ms']:g} ms: agent measured on transformations "
                    f"{a['only']} ({n} of {r['transformations']}) and scaled by {r['transformations'] / n:.2f} per "
                    f"transformation; its peak RSS is the subset's."
                )
        lines += ["", "Where the measured cycle's wall time goes (cycle 1; the warm and the last cycle in the warm "
                  "state; seconds; "
                  "latency is the sum of the injected waits, which the agent's threads overlap and ours overlaps "
                  "for its writes, FAILOVER_DIRAC_CONCURRENCY; simulated DIRAC is the time spent answering in the "
                  "simulator, serialised):", "",
                  "| workload | state / cycle | latency | contender | wall | CPU of the process | simulated DIRAC | "
                  "latency waited (sum) | 1-min load during the run |", "|" + "|".join(["---"] * 9) + "|"]
        for r in doc["cycles"]:
            for contender in CONTENDERS:
                c = r.get(contender)
                if c is None:
                    continue
                # The warm state's warm and nothing-changed (last) cycles; else cycle 1.
                if r["state"] == "warm" and len(c["cycles"]) > CHANGE_BEFORE + 1:
                    picked = [("warm", c["cycles"][CHANGE_BEFORE]), ("nothing changed", c["cycles"][-1])]
                else:
                    picked = [(r["state"], c["cycles"][0])]
                for what, cyc in picked:
                    who = contender + (f" ({cyc['transformations']} transformations, unscaled)"
                                       if cyc["transformations"] != r["transformations"] else "")
                    lines.append(f"| {r['workload']} | {what} | {r['latency_ms']:g} ms | {who} | "
                                 f"{cyc['wall']:.2f} | {cyc['cpu']:.2f} | {cyc.get('server_seconds', 0):.2f} | "
                                 f"{cyc.get('latency_seconds', 0):.2f} | {c.get('load', '?')} |")
        if any(r["state"] != "warm" for r in doc["cycles"]):
            lines += ["", targets(doc)]
        lines.append("")
        lines.append("Same work done? DIRAC's state after the cycles (files by status, error counts, tasks behind "
                     "their job, transformation statuses; on the agent's subset where it ran on one):")
        for r in doc["cycles"]:
            present = [c for c in CONTENDERS if c in r]
            if len(present) < 2:
                continue
            first = r[present[0]]["state_after"]
            same = all(r[c]["state_after"] == first for c in present[1:])
            where = f"- {r['workload']}/{r['state']}/{r['latency_ms']:g} ms ({', '.join(present)}): "
            lines.append(where + ("identical" if same else "DIFFERENT: " + "; ".join(
                f"{c} {r[c]['state_after']}" for c in present)))
    if doc.get("report"):
        rep = doc["report"]
        o, a = rep["ours"]["seconds"], rep["agent"]["seconds"]
        lines += [
            "",
            f"Report of one transformation with {rep['ours']['jobs']:,} jobs ({rep['ours']['aggregate_rows']} rows), "
            "best of repeats:",
            "",
            "| path | agent s | ours s | agent ÷ ours |",
            "|---|---|---|---|",
            f"| data (count jobs) | {a['data']:.4f} | {o['data']:.4f} | {a['data'] / o['data']:.1f}x |",
            f"| HTML from jobs | {a['html']:.4f} | {o['html_from_jobs']:.4f} | "
            f"{a['html'] / o['html_from_jobs']:.1f}x |",
            f"| text from jobs | {a['text']:.4f} | {o['text_from_jobs']:.4f} | "
            f"{a['text'] / o['text_from_jobs']:.1f}x |",
            f"| HTML from the cycle's stored aggregates (dashboard) | {a['html']:.4f} | {o['html']:.6f} | "
            f"{a['html'] / o['html']:.0f}x |",
            f"| text from the cycle's stored aggregates | {a['text']:.4f} | {o['text']:.6f} | "
            f"{a['text'] / o['text']:.0f}x |",
        ]
    return "\n".join(lines) + "\n"


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", default="small",
                   help="comma-separated: small: 100 transformations / 100,000 jobs; large: 1,000 / 1,000,000; "
                        "single: 1 / 100,000, ours only; follows: 100 transformations with 20,000 and with "
                        "200,000 jobs, warm (cost follows change); all: small, large, single and the report "
                        "benchmark; none: only the report (default small)")
    p.add_argument("--state", default="warm,catchup",
                   help="comma-separated: steady: ~1%% of tasks behind their job, cycles with no change between; "
                        "warm: cycle 0 on that state, then about 1%% of jobs end (benchmarks/change.py), the warm "
                        "cycle and more, --warm-cycles in all (the last: nothing changed; its cycle 0 is the "
                        "cold row); catchup: every task behind; both: steady,catchup (default warm,catchup)")
    p.add_argument("--change", type=float, default=0.01, help="warm: the share of all jobs that end (default 0.01)")
    p.add_argument("--concurrency", type=int, default=None,
                   help="ours: FAILOVER_DIRAC_CONCURRENCY (default: the setting's default)")
    p.add_argument("--latency", default="0,2,10", help="milliseconds per DIRAC call, comma-separated")
    p.add_argument("--contenders", default="ours,ours-fastsim,agent",
                   help="ours: the engine on SimulatedDirac (ORM reads); ours-fastsim: the same engine on "
                        "failover.simulated.fastpath (what get_backend() ships); ours-fanout: the fastsim cycle "
                        "fanned out, its group tasks run in-process; agent: CTADIRAC's agent "
                        "(default: ours,ours-fastsim,agent)")
    p.add_argument("--cycles", type=int, default=2, help="cycles per run, with no change in DIRAC between")
    p.add_argument("--warm-cycles", type=int, default=WARM_CYCLES,
                   help="warm state: cycles per run (at least 3): cold, warm (after the change), the cycle "
                        "after it (which sees the warm cycle's own writes), ..., the last one with nothing "
                        f"changed (default {WARM_CYCLES})")
    p.add_argument("--agent-subset", type=int, default=AGENT_SUBSET,
                   help="large catch-up: measure the agent on this many transformations and extrapolate "
                        "(0: all of them)")
    p.add_argument("--agent-threads", type=int, default=10, help="the agent's maxThreadsInPool (seed: 10)")
    p.add_argument("--report", choices=("auto", "yes", "no"), default="auto",
                   help="the 100,000-job report benchmark (auto: with --workload all or none)")
    p.add_argument("--profile", action="store_true", help="record py-spy profiles (slower; see docs)")
    p.add_argument("--margin-pause", action="store_true",
                   help="warm state: wait the mirror's margin (FAILOVER_MIRROR_MARGIN_SECONDS + 5 s) before the "
                        "last cycle but one, for both contenders, so that the last cycle's window holds no "
                        "earlier cycle's writes (as with a PollingTime longer than the margin and a cycle: "
                        "CTADIRAC runs 600 s); with --warm-cycles 5 the cycle after the pause is the "
                        "nothing-changed one whose window still holds the warm cycle's writes (back to back)")
    args = p.parse_args(argv)

    latencies = [float(x) for x in args.latency.split(",") if x.strip()]
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    aliases = {"all": ["small", "large", "single"], "none": [], "follows": ["follows-20k", "follows-200k"]}
    workloads = [w for name in args.workload.split(",") if name.strip()
                 for w in aliases.get(name.strip(), [name.strip()])]
    states = [x for name in args.state.split(",") if name.strip()
              for x in {"both": ["steady", "catchup"]}.get(name.strip(), [name.strip()])]
    bad = [w for w in workloads if w not in WORKLOADS] + [x for x in states if x not in STATES]
    if bad:
        p.error(f"unknown workload or state: {', '.join(bad)}")
    if args.warm_cycles < CHANGE_BEFORE + 2:
        p.error(f"--warm-cycles must be at least {CHANGE_BEFORE + 2} (cold, warm, nothing changed)")
    started = dt.datetime.now(dt.UTC)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    run_root = BENCH / "runs" / stamp
    doc: dict = {
        "started": started.strftime("%Y-%m-%d %H:%M"),
        "command": "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "revision": git_revision(),
        "load_start": loadavg(),
        "policy": seed_policy(),
        "cycles": [],
    }
    log(f"Benchmarks {stamp}: load average {doc['load_start']} on {doc['machine']['nproc']} CPUs")
    if "agent" in contenders or args.report != "no":
        agent_env.ensure(log)

    for workload in workloads:
        transformations, jobs = WORKLOADS[workload]
        for state_name in (["warm"] if workload.startswith("follows") else states):
            warm = state_name == "warm"
            # warm starts from the steady state's file.
            state = build_state(f"{workload}-{'steady' if warm else state_name}", transformations, jobs,
                                state_name == "catchup")
            settle_state(state)
            for latency in latencies:
                entry = {"workload": workload, "state": state_name, "latency_ms": latency,
                         "transformations": transformations, "jobs": jobs}
                pause = None
                if warm and args.margin_pause:
                    # Before the last cycle but one: the last cycle's cut (that cycle's start less
                    # the margin) then falls after every earlier write.
                    pause = (max(args.warm_cycles - 2, CHANGE_BEFORE + 1), margin_seconds() + 5)
                    entry["margin_pause"] = {"before_cycle": pause[0], "seconds": pause[1]}
                # Where the agent runs on a subset, both end states are compared on that subset.
                subset = ""
                if (workload == "large" and state_name == "catchup" and "agent" in contenders
                        and args.agent_subset and args.agent_subset < transformations):
                    subset = f"1-{args.agent_subset}"
                for contender in contenders:
                    if contender == "agent" and workload in OURS_ONLY:
                        continue
                    only = subset if contender == "agent" else ""
                    log(f"  {workload}/{state_name}/{latency:g} ms: {contender}"
                        + (f" on transformations {only}" if only else "") + " ...")
                    t0 = time.perf_counter()
                    load_before = loadavg()
                    run_dir = run_root / f"{workload}-{state_name}-{latency:g}ms-{contender}"
                    res = run_contender(contender, state, run_dir, latency, args.warm_cycles if warm else args.cycles,
                                        only=only, compare=subset, profile=args.profile, threads=args.agent_threads,
                                        change_before=CHANGE_BEFORE if warm else None, change_fraction=args.change,
                                        concurrency=args.concurrency, pause=pause)
                    res["load"] = f"{load_before.split()[0]} to {loadavg().split()[0]}"
                    entry[contender] = res
                    walls = ", ".join(f"{c['wall']:.2f} s / {c['calls']} calls" for c in res["cycles"])
                    log(f"    {walls}; peak RSS {res['peak_rss_mb']:.0f} MB ({time.perf_counter() - t0:.0f} s)")
                doc["cycles"].append(entry)

    if args.report == "yes" or (args.report == "auto" and set(args.workload.split(",")) & {"all", "none"}):
        log(f"  report of one transformation with {REPORT_JOBS:,} jobs ...")
        doc["report"] = run_report(run_root, REPORT_JOBS)

    doc["finished"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    doc["load_end"] = loadavg()
    results = BENCH / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{stamp}.json").write_text(json.dumps(doc, indent=1, sort_keys=True))
    md = markdown(doc)
    (results / f"{stamp}.md").write_text(md)
    (results / "latest.md").write_text(md)
    log("")
    log(md)
    log(f"Written: {results / (stamp + '.md')} and .json")


if __name__ == "__main__":
    main()
