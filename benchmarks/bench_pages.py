"""``python -m benchmarks.bench_pages``: how fast the dashboard's pages answer at scale.

Two states of the simulated DIRAC, each filled by the real pipeline (``simdirac generate`` then
``failover cycle``, which writes the TransformationState rows, the stored aggregates and the
action log the pages read):

- ``overview``: 10,000 transformations (100,000 jobs) after six cycles, for the overview, its
  filters, sorts, pages and the attention list;
- ``big``: one transformation of 100,000 jobs, several cycles, for its page (the stored report,
  charts, retry history, action log) and the drill-downs that read DIRAC live.

For each state the web server runs as in production (gunicorn, several worker processes with
threads, on 127.0.0.1, DEBUG off, static files collected; ``--server runserver`` for Django's
one-process development server); this process signs in as an operator and times sequential GET requests
(after a few warm-up requests), then prints and writes median, p95 and max per URL to
docs/benchmarks-pages.md. States are cached under var/bench/pages/ (``--rebuild`` to redo).

    python -m benchmarks.bench_pages                      # both states, 50 requests per URL
    python -m benchmarks.bench_pages --requests 20 --only overview
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.cookiejar
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from benchmarks.measure import machine as measure_machine

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "bench" / "pages"
DOC = ROOT / "docs" / "benchmarks-pages.md"
LOAD_MARK = "<!-- bench_load -->"
PYTHON = sys.executable
USER, PASSWORD = "bench", "bench-password-1"


@dataclass(frozen=True)
class Target:
    path: str
    what: str
    # Pages that read DIRAC live cost much more: fewer requests keep the run bounded.
    heavy: bool = False


STATES = {
    "overview": {
        "build": [
            ["simdirac", "generate", "--transformations", "10000", "--jobs", "100000", "--load"],
            ["failover", "import-config", "examples/seed-agent.cfg"],
            # Six cycles with DIRAC standing still: the "no progress over 6 cycles" check is live
            # and flags every unfinished transformation (the attention filter's worst case).
            *[["failover", "cycle"]] * 6,
        ],
        "targets": [
            Target("/", "overview, page 1 (sorted by id)"),
            Target("/overview/table/", "overview fragment polled every 5 s"),
            Target("/?page=150", "overview, page 150"),
            Target("/?sort=-failed", "overview sorted by failed share"),
            Target("/?sort=-files", "overview sorted by progress (computed in SQL)"),
            Target("/?type=Merging&status=Active&q=Step2", "overview filtered and searched"),
            Target("/?attention=on", "overview, needs attention only"),
            Target("/?sort=-attention", "overview sorted by attention"),
            Target("/api/transformations/?page_size=50", "API: transformations, 50 per page"),
            Target("/attention/", "attention list (50 transformations per page)", heavy=True),
            Target("/productions/", "productions list"),
            Target("/audit/", "audit log"),
        ],
    },
    "big": {
        "build": [
            ["simdirac", "generate", "--transformations", "1", "--jobs", "100000", "--load"],
            ["failover", "import-config", "examples/seed-agent.cfg"],
            ["failover", "cycle"],
            ["simdirac", "advance"],
            ["failover", "cycle"],
            ["simdirac", "advance"],
            ["failover", "cycle"],
        ],
        "targets": [
            Target("/transformations/1/", "transformation page, 100,000 jobs (stored report, charts, retries, log)"),
            Target("/transformations/1/?cycle=1", "the same, report as of cycle 1 (permalink)"),
            Target("/api/transformations/1/report/", "API: the report JSON (stored)"),
            Target("/api/transformations/1/report.csv", "report CSV download"),
            Target("/productions/1/", "production page"),
            Target("/transformations/1/jobs/?status=Failed", "jobs behind a report row (reads DIRAC live)", heavy=True),
            Target("/transformations/1/files/", "reassigned files with jobs and sites (reads DIRAC live)", heavy=True),
            Target("/actions/reassign/?t=1", "action preview: engine dry run on 100,000 jobs", heavy=True),
        ],
    },
}


# The pages the issue sets a bound on with 16 concurrent clients (p95, ms), per state.
CONCURRENT = {
    "overview": [("/", "overview, page 1", 200), ("/productions/", "productions list", None)],
    "big": [("/transformations/1/", "transformation page, 100,000 jobs", 50)],
}


# What any signed-in request costs here, page or not: the sign-in page, which Django's login view
# answers with a redirect for a signed-in user (sessions, auth, middleware, gunicorn; no page).
FLOOR = ("/accounts/login/", "floor: a signed-in GET of the sign-in page (a redirect, no page)")

# The concurrent client whose p95 is held against the bound: wrk, a C load generator, costs the
# server's 2 CPUs little; the Python threads of the earlier client cost about as much as the server.
BOUND_CLIENT = "wrk"

SERVED: list[str] = []
LOADS: list[str] = []


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def log(msg: str) -> None:
    print(msg, flush=True)


def env_for(state_dir: Path) -> dict:
    env = dict(os.environ)
    env.update(VAR_DIR=str(state_dir), DEBUG="false", LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
    for name in ("DATABASE_URL", "SIMDIRAC_DATABASE_URL", "OPENSEARCH_URL", "SIMDIRAC_LATENCY_MS", "SIMDIRAC_FAULTS"):
        env.pop(name, None)
    return env


def manage(state_dir: Path, *args: str, extra_env: dict | None = None) -> float:
    started = time.monotonic()
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env={**env_for(state_dir), **(extra_env or {})},
                   check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def build(name: str, rebuild: bool) -> tuple[Path, dict]:
    return build_steps(name, STATES[name]["build"], rebuild)


def build_steps(name: str, commands: list[list[str]], rebuild: bool = False) -> tuple[Path, dict]:
    state_dir = WORK / name
    stamp = state_dir / "built"
    if stamp.exists() and not rebuild:
        log(f"[{name}] reusing {state_dir} (--rebuild to redo)")
        return state_dir, {"cached": True, "steps": stamp.read_text()}
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)
    steps = []
    manage(state_dir, "migrate", "--noinput")
    manage(state_dir, "migrate", "--database", "simdirac", "--noinput")
    for args in commands:
        seconds = manage(state_dir, *args)
        steps.append(f"`manage.py {' '.join(args)}` {seconds:.1f} s")
        log(f"[{name}] {steps[-1]}")
    manage(state_dir, "users", "add", USER, "--role", "operator", extra_env={"FAILOVER_PASSWORD": PASSWORD})
    stamp.write_text("; ".join(steps))
    return state_dir, {"cached": False, "steps": stamp.read_text()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The dashboard served as in production: gunicorn (``gunicorn.conf``-free, every option on its
    command line) with several worker processes and threads, DEBUG off, static files collected
    (hashed and compressed, served by whitenoise). ``server="runserver"``: Django's development
    server, one process, for comparison."""

    def __init__(self, state_dir: Path, server: str = "gunicorn", workers: int = 0, threads: int = 4):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        # Hashed, compressed static files, as production serves them (the pages link the hashed names).
        manage(state_dir, "collectstatic", "--noinput")
        self.workers = (workers or 2 * (os.cpu_count() or 1) + 1) if server == "gunicorn" else 1
        self.threads = threads
        if server == "gunicorn":
            command = [PYTHON, "-m", "gunicorn", "dashboard.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
                       "--workers", str(self.workers), "--threads", str(threads), "--worker-class", "gthread",
                       "--log-level", "warning", "--no-control-socket"]
            self.what = (f"gunicorn, {self.workers} worker processes x {threads} threads (gthread)")
        else:
            command = [PYTHON, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"]
            self.what = "`manage.py runserver --noreload` (one process)"
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env_for(state_dir),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.base + "/accounts/login/", timeout=10)
                return
            except (urllib.error.URLError, OSError):  # refused, reset, or a worker still starting
                time.sleep(0.2)
        self.stop()
        raise SystemExit("the web server did not start within 60 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Client:
    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def login(self) -> None:
        html = self.opener.open(self.base + "/accounts/login/").read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
        data = urllib.parse.urlencode({"username": USER, "password": PASSWORD, "csrfmiddlewaretoken": token})
        page = self.opener.open(urllib.request.Request(self.base + "/accounts/login/", data=data.encode(),
                                                       headers={"Referer": self.base + "/"}))
        if "Sign out" not in page.read().decode():
            raise SystemExit("could not sign in to the benchmark server")

    def json(self, path: str) -> dict:
        import json

        with self.opener.open(self.base + path, timeout=300) as r:
            return json.loads(r.read())

    def get(self, path: str) -> tuple[float, int, int]:
        started = time.perf_counter()
        with self.opener.open(self.base + path, timeout=300) as r:
            body = r.read()
            status = r.status
        return time.perf_counter() - started, status, len(body)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def measure(name: str, state_dir: Path, requests: int, heavy_requests: int, warmup: int,
            clients: int = 0, concurrent: dict | None = None, server_args: dict | None = None,
            sequential: bool = True) -> tuple[dict, list[dict], list[dict]]:
    server = Server(state_dir, **(server_args or {}))
    SERVED.append(server.what)
    try:
        client = Client(server.base)
        client.login()
        facts = {
            "transformations": client.json("/api/transformations/?page_size=1")["count"],
            "needing attention": client.json("/api/attention/?page_size=1")["count"],
            "actions logged": client.json("/api/actions/?page_size=1")["count"],
        }
        log(f"[{name}] {facts}")
        rows = []
        for target in STATES[name]["targets"] if sequential else ():
            n = heavy_requests if target.heavy else requests
            # Warm means every worker process has served the page once (its templates compiled, its
            # database connection open), and the shared cache holds what the page keeps there.
            for _ in range(warmup if target.heavy else warmup * getattr(server, "workers", 1)):
                client.get(target.path)
            times, size = [], 0
            for _ in range(n):
                seconds, status, size = client.get(target.path)
                if status != 200:
                    raise SystemExit(f"{target.path}: HTTP {status}")
                times.append(seconds * 1000)
            row = {"path": target.path, "what": target.what, "n": n, "median": statistics.median(times),
                   "p95": percentile(times, 95), "max": max(times), "bytes": size}
            rows.append(row)
            log(f"[{name}] {target.path:45} n={n:3} median {row['median']:8.1f} ms  p95 {row['p95']:8.1f} ms")
        together = measure_concurrent(name, server, clients, warmup, **(concurrent or {})) if clients else []
        return facts, rows, together
    finally:
        server.stop()


# -- CPU accounting: who used the 2 CPUs during a concurrent run ---------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` and its children (gunicorn's workers)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(entry) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far (every process, every user)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:9]]
    return (sum(values) - values[3] - values[4]) / TICK


# wrk's Lua hooks: each request with the next of the signed-in sessions' cookies; at the end, the
# latency percentiles (microseconds) of every request wrk timed, and the errors.
WRK_SCRIPT = """
local cookies = {}
for c in string.gmatch(os.getenv("BENCH_COOKIES") or "", "[^|]+") do cookies[#cookies + 1] = c end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", wrk.path, {["Cookie"] = cookies[(i % #cookies) + 1]})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d errors=%d status_errors=%d "
    .. "p50=%d p95=%d p99=%d max=%d\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50),
    latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def run_wrk(base: str, path: str, clients: int, seconds: float, cookies: list[str]) -> dict:
    """wrk with ``clients`` connections (each sends its next request when the last one's answer is
    in, as a person's browser would), on 2 threads, for ``seconds``; its figures in ms."""
    script = WORK / "wrk-p95.lua"
    script.write_text(WRK_SCRIPT)
    out = subprocess.run(
        ["wrk", "-t", str(min(2, clients)), "-c", str(clients), "-d", f"{seconds:g}s", "--timeout", "30s",
         "-s", str(script), base + path],
        env={**os.environ, "BENCH_COOKIES": "|".join(cookies)}, check=True, capture_output=True, text=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    got = dict(part.split("=") for part in line.split()[1:])
    if int(got["errors"]) or int(got["status_errors"]):
        raise SystemExit(f"{path}: wrk saw {got['errors']} socket errors and {got['status_errors']} HTTP errors")
    n, wall = int(got["requests"]), int(got["duration_us"]) / 1e6
    return {"n": n, "wall": wall, "median": int(got["p50"]) / 1000, "p95": int(got["p95"]) / 1000,
            "max": int(got["max"]) / 1000}


def run_threads(pool: list[Client], path: str, requests: int, warmup: int) -> dict:
    """The earlier client: one Python thread per signed-in client in this process (on the same CPUs
    as the server), each sending ``requests`` GETs back to back, a new connection each."""
    import threading

    times: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(pool) + 1)

    def work(c: Client) -> None:
        for _ in range(warmup):
            c.get(path)
        start.wait()
        mine = []
        for _ in range(requests):
            seconds, status, _ = c.get(path)
            if status != 200:
                errors.append(f"HTTP {status}")
            mine.append(seconds * 1000)
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=work, args=(c,)) for c in pool]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    if errors:
        raise SystemExit(f"{path}: {errors[0]} under {len(pool)} clients")
    return {"n": len(times), "wall": wall, "median": statistics.median(times), "p95": percentile(times, 95),
            "max": max(times)}


def measure_concurrent(name: str, server: Server, clients: int, warmup: int, *, requests: int = 20,
                       seconds: float = 10.0, kinds: tuple[str, ...] = ("wrk", "threads")) -> list[dict]:
    """Each URL of CONCURRENT[name] by ``clients`` signed-in clients at once, warm (the server's
    caches and each client's session set up before timing): with wrk (``seconds`` long, after a
    warm-up of 3 s) and with the earlier client of Python threads (``requests`` each, after
    ``warmup`` each). Also the CPU the server, the client and the rest of the machine used."""
    pool = []
    for _ in range(clients):
        c = Client(server.base)
        c.login()
        pool.append(c)
    cookies = ["; ".join(f"{k.name}={k.value}" for k in c.jar) for c in pool]
    rows = []
    for path, what, bound in [*CONCURRENT[name], (*FLOOR, None)] if "wrk" in kinds else CONCURRENT[name]:
        for c in pool:  # every session signed in and answered (wrk counts a redirect as an answer)
            if "Sign out" not in c.opener.open(server.base + path).read().decode():
                raise SystemExit(f"{path}: a benchmark client is not signed in")
        for kind in kinds if path != FLOOR[0] else ("wrk",):
            if kind == "wrk":
                run_wrk(server.base, path, clients, 3, cookies)
            own, server_cpu, busy = os.times(), cpu_of(server.proc.pid), machine_busy()
            got = (run_wrk(server.base, path, clients, seconds, cookies) if kind == "wrk"
                   else run_threads(pool, path, requests, warmup))
            after = os.times()
            # wrk is a child of this process (children's times); the threads are this process's own.
            client_cpu = ((after.children_user + after.children_system - own.children_user - own.children_system)
                          if kind == "wrk" else (after.user + after.system - own.user - own.system))
            server_cpu = cpu_of(server.proc.pid) - server_cpu
            busy = machine_busy() - busy
            n = got["n"]
            row = {"path": path, "what": what, "clients": clients, "client": kind, "bound": bound, **got,
                   "rate": n / got["wall"], "server_ms": 1000 * server_cpu / n, "client_ms": 1000 * client_cpu / n,
                   "other_ms": 1000 * max(0.0, busy - server_cpu - client_cpu) / n,
                   "idle_share": max(0.0, 1 - busy / (got["wall"] * (os.cpu_count() or 1)))}
            rows.append(row)
            log(f"[{name}] {clients} clients ({kind}) {path:25} median {row['median']:7.1f} ms  "
                f"p95 {row['p95']:7.1f} ms  {row['rate']:.0f} req/s  CPU per request: server "
                f"{row['server_ms']:.1f} ms, client {row['client_ms']:.1f} ms, other {row['other_ms']:.1f} ms")
    return rows


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return f"`{out}`" + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> str:
    m = measure_machine()
    return f"{m['platform']}, {m['nproc']} CPUs {m['cpu']}, Python {m['python']}"


def markdown(results: dict, args: argparse.Namespace) -> str:
    lines = [
        "# Page benchmarks",
        "",
        "How fast the dashboard answers with 10,000 transformations and with one transformation of",
        "100,000 jobs. Produced by:",
        "",
        "```",
        f"python -m benchmarks.bench_pages --requests {args.requests} --heavy-requests {args.heavy_requests}"
        + (f" --clients {args.clients} --concurrent-requests {args.concurrent_requests}"
           f" --concurrent-seconds {args.concurrent_seconds:g}" if args.clients else "")
        + (f" --workers {args.workers}" if args.workers else "") + (f" --threads {args.threads}"
                                                                     if args.threads != 4 else ""),
        "```",
        "",
        f"Run {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}, commit {commit()}. SQLite",
        f"databases (the default), {SERVED[0] if SERVED else args.server} with DEBUG off on 127.0.0.1, the",
        "default caches: the pages' parts in a folder under VAR_DIR shared by the processes (`CACHE_URL`), whole",
        "pages in each process's memory (`PAGE_CACHE_URL=locmem://`). The benchmark process signs in as an",
        f"operator and sends sequential GET requests after {args.warmup} warm-up requests per URL and worker",
        "process (pages that read DIRAC live: per URL). Times are wall-clock per request, as the client sees",
        "them; every client runs on the same 2 CPUs as the server, which other people's work shared too.",
        f"Load average (1, 5, 15 min) before / after each state: {'; '.join(LOADS)}.",
        "",
    ]
    for name, (info, (facts, rows, concurrent)) in results.items():
        title = {"overview": "10,000 transformations", "big": "one transformation of 100,000 jobs"}[name]
        facts_text = ", ".join(f"{v:,} {k.replace('transformations', 'transformation') if v == 1 else k}"
                               for k, v in facts.items())
        reused = " (built earlier, reused)" if info["cached"] else ""
        lines += [f"## {title}", "", f"State built with: {info['steps']}{reused}.",
                  f"It holds {facts_text}.", "",
                  "| URL | what | requests | median ms | p95 ms | max ms | size |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for r in rows:
            lines.append(f"| `{r['path']}` | {r['what']} | {r['n']} | {r['median']:.1f} | {r['p95']:.1f} | "
                         f"{r['max']:.1f} | {r['bytes'] / 1024:.0f} KiB |")
        lines.append("")
        if concurrent:
            n = concurrent[0]["clients"]
            lines += [f"With {n} clients at once, each sending its next request when the last one's answer is "
                      f"in, with {n} signed-in sessions. wrk: {n} keep-alive connections on 2 threads for "
                      f"{args.concurrent_seconds:g} s after 3 s of warm-up, the requests taking the sessions in "
                      f"turn, every request timed; threads: the earlier client, {n} Python threads in the "
                      f"benchmark process, one session each, {args.concurrent_requests} requests each on a new "
                      f"connection after {args.warmup} of warm-up. "
                      "CPU per request: the server's processes (from /proc), the client's, and the rest of the "
                      "machine's busy time (other people's work) in the same seconds.", "",
                      "| URL | what | client | requests | median ms | p95 ms | max ms | requests/s "
                      "| CPU ms/request: server / client / other | bound on p95 |",
                      "|---|---|---|---:|---:|---:|---:|---:|---|---|"]
            for r in concurrent:
                bound = "" if r["bound"] is None else (
                    f"{r['bound']} ms: {'met' if r['p95'] <= r['bound'] else '**not met**'}"
                    + (" (the bound's client)" if r["client"] == BOUND_CLIENT else ""))
                lines.append(f"| `{r['path']}` | {r['what']} | {r['client']} | {r['n']} | {r['median']:.1f} | "
                             f"{r['p95']:.1f} | {r['max']:.1f} | {r['rate']:.0f} | {r['server_ms']:.1f} / "
                             f"{r['client_ms']:.1f} / {r['other_ms']:.1f} | {bound} |")
            lines.append("")
            for r in concurrent:
                if r["bound"] is not None and r["client"] == BOUND_CLIENT:
                    cpus = os.cpu_count() or 1
                    lines += [f"On `{r['path']}` ({r['client']}): {r['rate']:.0f} requests/s with "
                              f"{r['server_ms']:.1f} ms of server CPU per request; {r['clients']} clients back to "
                              f"back wait for each other, so a p95 of {r['bound']} ms needs about "
                              f"{r['clients'] * 1000 / r['bound']:.0f} requests/s, at most "
                              f"{1000 * cpus * r['bound'] / (r['clients'] * 1000):.2f} ms of the {cpus} CPUs "
                              "per request for server, client and everything else together.", ""]
    lines += [
        "## What moved the transformation page under 50 ms",
        "",
        "2026-12-02, quiet machine, wrk with 16 clients, gunicorn 5 x 4: three changes took the signed-in",
        "request's fixed cost down, the floor that every page pays whatever it shows. Before them the",
        "transformation page of 100,000 jobs had a p95 of 57.9 ms (546 requests/s, 3.6 ms of server CPU per",
        "request) over a floor of 51.0 ms. Keeping database connections between requests",
        "(`DATABASE_CONN_MAX_AGE`, 60 s) alone: 50.1 ms (782 requests/s), floor 33.8 ms. With the sessions",
        "read through the shared cache (`cached_db`) and each user's role kept in it (forgotten by any change",
        "of groups or accounts) as well: 24.1, 32.7 and 40.4 ms over three runs (1,150 to 1,352 requests/s,",
        "1.4 to 1.7 ms of server CPU per request); the run of 2026-12-03 showed the same. The",
        "states of this run were built at 07:13-07:21 UTC while the CI ran on the same 2 CPUs.",
        "",
        "## Before the whole-page cache and client",
        "",
        "2026-12-02 02:19 UTC, same machine, load average about 5 to 6, gunicorn 5 x 4 and only the cached",
        "parts (no whole pages), 16 Python client threads in the benchmark process: the transformation page",
        "of 100,000 jobs had a p95 of 181.6 ms (148 requests/s), the overview of 10,000 transformations",
        "581.8 ms (54 requests/s), the productions list 797.4 ms (39 requests/s); one client alone: 12.0, 25.4",
        "and 39.4 ms median. Before that (01:25 UTC, load average about 10), `manage.py runserver` and no",
        "cache: the transformation page's p95 was 2,735 ms with 16 clients, most of it the retries table",
        "parsing every reassign action's details (100,000 task ids) on each request.",
        "",
        "The states were built again for the run of 2026-12-02 (06:27-06:43 UTC, both at once, load average 4",
        "to 9): the 10,000-transformation state's six cycles took 363, 352, 20, 17, 30 and 92 s, against 177,",
        "94, 297, 246, 272 and 135 s for the earlier state: the first two are slower under this load, the",
        "four with DIRAC standing still 1.5 to 15 times faster. The 100,000-job state's three cycles took 19,",
        "18 and 17 s (earlier: 7, 8 and 12 s) and its `simdirac advance` steps 943 and 134 s (earlier: 583",
        "and 149 s).",
        "",
        "## gunicorn's layout on 2 CPUs",
        "",
        "2026-12-02 06:45-06:56 UTC, this branch (whole pages kept), wrk with 16 clients for 10 s, load average",
        "4.4 to 9.3 (other people's work: the figures move by a factor of two between runs of one layout).",
        "Command: `python -m benchmarks.bench_pages --only big --concurrent-only --client wrk --no-doc",
        "--workers W --threads T` (and `--only overview`).",
        "",
        "| workers x threads | `/transformations/1/` p95 ms (req/s) | `/` p95 ms (req/s) "
        "| `/productions/` p95 ms (req/s) |",
        "|---|---:|---:|---:|",
        "| 5 x 4 (2 x CPUs + 1, the measured run's) | 416.5 (153) | 287.1 (119) | 237.0 (136) |",
        "| 2 x 4 | 278.4 (137) | 390.2 (86) | 313.4 (87) |",
        "| 3 x 4 | 283.7 (140) | 306.9 (83) | 233.9 (137) |",
        "| 2 x 8 | 273.4 (127) | 193.0 (125) | 200.9 (131) |",
        "| 4 x 2 | | 270.8 (118) | 547.9 (103) |",
        "",
        "Server CPU per request stayed 6.8 to 9.1 ms in every layout: the layout does not change what a",
        "request costs, and the differences above are within the noise of the machine's other load. gunicorn's",
        "sync workers (4, no keep-alive) did worse on the transformation page (p95 235 ms, 106 requests/s, 8.0",
        "ms of server CPU per request) than gthread 2 x 4 in the same minutes (131 ms, 151 requests/s, 6.5 ms).",
        "Fewer processes keep fewer copies of each page (the whole-page cache is per process), so 2 or 3",
        "workers x 4 threads are a fair choice on 2 CPUs; the measured run keeps 5 x 4 to compare with the",
        "earlier run.",
        "",
        "## Reading the numbers",
        "",
        "- Whole pages (`dashboard/pagecache.py`, `whole_page`): the overview, its polled table, a",
        "  transformation's page and the productions list are kept as their user last got them, in each",
        "  web server process's memory, keyed by user (id, name, role, staff flag), path with query string",
        "  and the *data version*: one query of scalar subqueries (the newest 50 cycles' ids, ends and",
        "  running count; the action log's lowest and highest id and its pending and proposed counts, the",
        "  only entries that still change; the policies' and recovery policies' count, last edit and which",
        "  is on; the last policy change, acknowledgement and recovery finding; the OpenSearch outbox).",
        "  A cycle, an action, a proposal or its decision, an acknowledgement or a policy change moves it,",
        "  so the next request computes the page again (tests/test_views_wholepage.py shows each). Nothing",
        "  is kept while a cycle runs, for a page with a flash message waiting, one showing a lock (it ends",
        "  with its lease, not with a write) or a store outage; the productions list asks DIRAC for the",
        "  productions' names again after a minute. Ages, the time of the polled table and the CSRF token",
        "  (a fresh masking of the session's secret, as Django does on every response) are markers in the",
        "  kept copy, filled on each response. A kept page costs the session, the user and role, the",
        "  version (0.3 ms of CPU with 9,388 actions logged) and the fill.",
        "- Under the whole pages, the parts stay cached as before (`CACHE_URL`, shared by the processes):",
        "  the transformation page's stored report, charts, retries, attention items and action log, and",
        "  the overview's rows, so a page computed again after a change is cheaper than a cold one.",
        "- The concurrent tables' CPU columns say where the time goes: 16 clients back to back wait for",
        "  each other, so a request's time is about 16 x (CPU per request of server, client and everyone",
        "  else) / 2 CPUs. The floor row is a signed-in request answered without a page (Django's sign-in",
        "  view redirects): what the session, authentication, the middleware and gunicorn cost whatever",
        "  the page; a kept page costs about one to two ms of server CPU more. \"other\" is the rest of the",
        "  machine's busy time in the same seconds: other people's builds and tests on the same 2 CPUs.",
        "- wrk is the bound's client: a C load generator whose 16 keep-alive connections cost the CPUs",
        "  about 0.2 ms per request. The earlier client, 16 Python threads in the benchmark process opening",
        "  a new connection per request, is kept for comparison.",
        "- The overview filters, sorts and paginates in SQL on `TransformationState` (one row per",
        "  transformation): a page costs a `COUNT` and a `LIMIT 50 OFFSET n` plus a few small queries",
        "  for the attention flags of the 50 rows shown, whatever the number of transformations.",
        "- The attention filter, the attention sort and the attention page are measured in their worst",
        "  case: six cycles with DIRAC standing still flag most transformations \"no progress\".",
        "- The transformation page reads the stored aggregates (a few hundred rows whatever the",
        "  number of jobs), so 100,000 jobs cost no more than 100 there; the drill-downs marked",
        "  \"reads DIRAC live\" read every task, job and file of the transformation and are the slow",
        "  ones by design: they are separate pages, opened on demand.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_pages", description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=50, help="timed requests per URL (default 50)")
    p.add_argument("--heavy-requests", type=int, default=10, help="for pages that read DIRAC live (default 10)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--only", choices=tuple(STATES), help="one state only")
    p.add_argument("--clients", type=int, default=16,
                   help="clients at once for the pages with a bound (default 16; 0: sequential only)")
    p.add_argument("--concurrent-requests", type=int, default=20,
                   help="requests per concurrent client of Python threads (default 20)")
    p.add_argument("--concurrent-seconds", type=float, default=10.0, help="how long wrk's clients run (default 10)")
    p.add_argument("--client", choices=("both", "wrk", "threads"), default="both",
                   help="the concurrent clients: wrk (C, the bound's), the earlier Python threads, or both (default)")
    p.add_argument("--concurrent-only", action="store_true",
                   help="only the concurrent runs (no sequential table; with --no-doc, to compare server layouts)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the cached states")
    p.add_argument("--server", choices=("gunicorn", "runserver"), default="gunicorn",
                   help="the web server (default gunicorn, as in production; runserver: one process)")
    p.add_argument("--workers", type=int, default=0, help="gunicorn worker processes (default 2 x CPUs + 1)")
    p.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    p.add_argument("--no-doc", action="store_true", help=f"do not write {DOC.relative_to(ROOT)}")
    args = p.parse_args(argv)
    if min(args.requests, args.heavy_requests) < 1 or args.requests > 10_000:
        p.error("requests must be between 1 and 10000")
    if args.clients and args.client != "threads" and not shutil.which("wrk"):
        p.error("wrk is not installed: scripts/system-deps.sh bench (Debian's wrk), or --client threads")
    results = {}
    for name in ([args.only] if args.only else list(STATES)):
        state_dir, info = build(name, args.rebuild)
        before = load_average()
        kinds = ("wrk", "threads") if args.client == "both" else (args.client,)
        results[name] = (info, measure(name, state_dir, args.requests, args.heavy_requests, args.warmup,
                                       args.clients,
                                       {"requests": args.concurrent_requests, "seconds": args.concurrent_seconds,
                                        "kinds": kinds},
                                       {"server": args.server, "workers": args.workers, "threads": args.threads},
                                       sequential=not args.concurrent_only))
        LOADS.append(f"{name}: {before} / {load_average()}")
    text = markdown(results, args)
    if not args.no_doc:
        # The browser load benchmark's section (benchmarks/bench_load.py) is kept as it is.
        old = DOC.read_text() if DOC.exists() else ""
        DOC.write_text(text + (old[old.index(LOAD_MARK):] if LOAD_MARK in old else ""))
        log(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
