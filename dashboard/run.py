"""``make run``: the whole product on one machine with the embedded defaults.

Migrates, creates an operator account on the first run (printing its name and password, or
taking FAILOVER_USER / FAILOVER_PASSWORD), imports the seed's agent configuration with a short
demo PollingTime, loads a seed-like production into the simulated DIRAC, then starts the web
server, a Celery worker and beat, and keeps the simulated DIRAC moving. It supervises them: one
that exits is started again after a pause that doubles with each quick exit (1 s up to 30 s),
and says so on the console; the others go on. Ctrl-C stops them all, by the process ids it
started.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    import django

    django.setup()


def _say(text: str) -> None:
    print(f"[make run] {text}", flush=True)


def prepare(demo_polling: int) -> tuple[str, str | None]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    call_command("migrate", database="simdirac", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)

    User = get_user_model()
    name = os.environ.get("FAILOVER_USER", "operator")
    password = os.environ.get("FAILOVER_PASSWORD")
    saved = Path(settings.VAR_DIR) / "operator-password.txt"
    user = User.objects.filter(username=name).first()
    if user is None:
        password = password or secrets.token_urlsafe(12)
        user = User.objects.create_user(name, password=password)
        saved.write_text(f"{name} {password}\n")
        saved.chmod(0o600)
        created = True
    else:
        if password:
            user.set_password(password)
            user.save()
        elif saved.exists():
            password = saved.read_text().split()[1]
        created = False
    for group in ("viewer", "operator"):
        g = Group.objects.filter(name=group).first()
        if g:
            user.groups.add(g)
    _say(f"{'created' if created else 'existing'} operator account: {name} / {password or '(unchanged)'}")

    for line in ensure_policies(demo_polling):
        _say(line)

    from failover.simulated.models import SimTransformation

    if not SimTransformation.objects.exists():
        from failover.simulated.demo import load_demo

        files = int(os.environ.get("DEMO_FILES", "1000"))
        load_demo(files)
        _say(f"loaded the demo into the simulated DIRAC: two seed-like productions ({files} input files each) "
             "and five small ones that need attention")
    return name, password


PROPOSE_POLICY = "demo-propose"


def ensure_policies(demo_polling: int) -> list[str]:
    """The seed's agent configuration as the policy in use (act mode, a demo PollingTime), and
    the same options in propose mode as a second policy, disabled: ``manage.py failover policy
    --use demo-propose`` switches to it (the cycle then proposes, an operator approves)."""
    from failover.config_import import parse_path
    from failover.models import Policy

    said = []
    if not Policy.objects.exists():
        imported = parse_path(ROOT / "examples" / "seed-agent.cfg")
        values = {**imported.values, "polling_time": demo_polling}
        Policy.objects.create(name="default", source=imported.path, **values)
        Policy.objects.create(name=PROPOSE_POLICY, source=imported.path, enabled=False,
                              mode=Policy.Mode.PROPOSE, **values)
        said.append(f"policy imported from examples/seed-agent.cfg with a demo PollingTime of {demo_polling} s; "
                    f"`manage.py failover policy --use {PROPOSE_POLICY}` switches to propose mode")
    return said


@dataclass
class Child:
    name: str
    command: list[str]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    #: Quick exits in a row: the next pause is backoff * 2 ** quick_exits.
    quick_exits: int = 0
    restarts: int = 0
    restart_at: float | None = None
    #: Every process id started for this child (each is also its process group's id).
    pids: list[int] = field(default_factory=list)


def exit_status(code: int) -> str:
    """How a process ended, in words: "exited with status 3", "was killed by SIGKILL"."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class Supervisor:
    """Starts its children, starts again one that exits (with a doubling pause), stops them all.

    Each child runs in a session of its own, so Ctrl-C in the terminal reaches only us, and we stop
    each child by its id: SIGTERM to the main process (a Celery worker then finishes the task in
    hand and stops its pool), then SIGKILL to the process group of any that is still there.
    """

    def __init__(self, commands: dict[str, list[str]], *, cwd: Path | str = ROOT, say: Callable[[str], None] = None,
                 backoff: float = 1.0, max_backoff: float = 30.0, stable_after: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        self.children = {name: Child(name, list(cmd)) for name, cmd in commands.items()}
        self.cwd = cwd
        self.say = say or _say
        self.backoff, self.max_backoff, self.stable_after = backoff, max_backoff, stable_after
        self.clock = clock

    def _spawn(self, child: Child) -> None:
        child.proc = subprocess.Popen(child.command, cwd=self.cwd, start_new_session=True)
        child.started_at = self.clock()
        child.restart_at = None
        child.pids.append(child.proc.pid)

    def start(self) -> None:
        for child in self.children.values():
            self._spawn(child)

    def poll(self) -> None:
        """Notice children that exited and start those whose pause is over; call it often."""
        now = self.clock()
        for child in self.children.values():
            if child.proc is not None and child.restart_at is None and child.proc.poll() is not None:
                ran = now - child.started_at
                child.quick_exits = 0 if ran >= self.stable_after else child.quick_exits + 1
                pause = min(self.max_backoff, self.backoff * 2 ** max(child.quick_exits - 1, 0))
                child.restart_at = now + pause
                self.say(f"{child.name} (pid {child.proc.pid}) {exit_status(child.proc.returncode)} "
                         f"after {ran:.0f} s; starting it again in {pause:g} s")
            if child.restart_at is not None and now >= child.restart_at:
                self._spawn(child)
                child.restarts += 1
                self.say(f"{child.name} started again (pid {child.proc.pid}, restart {child.restarts})")

    def stop(self, timeout: float = 20.0) -> None:
        running = [c.proc for c in self.children.values() if c.proc is not None and c.proc.poll() is None]
        for proc in running:
            # The main process only: a Celery worker then finishes the task in hand (warm
            # shutdown) and stops its pool itself.
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left in a group we started (a worker that would not stop, the pool of a
        # worker that was killed) goes now.
        for child in self.children.values():
            for pid in child.pids:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            if child.proc is not None:
                child.proc.wait()


def main() -> int:
    demo_polling = int(os.environ.get("DEMO_POLLING_TIME", "15"))
    advance_every = float(os.environ.get("DEMO_ADVANCE_SECONDS", "5"))
    bind = os.environ.get("RUN_BIND", "127.0.0.1:8000")
    # At most this many jobs move per step, so the demo productions take several minutes.
    jobs_per_step = int(os.environ.get("DEMO_JOBS_PER_STEP", "40"))
    # A new production arrives this often, this many times (about 24 minutes of arrivals).
    arrival_every = float(os.environ.get("DEMO_ARRIVAL_SECONDS", "60"))
    arrivals = int(os.environ.get("DEMO_ARRIVALS", "24"))
    arrival_files = int(os.environ.get("DEMO_ARRIVAL_FILES", "300"))
    os.environ.setdefault("FAILOVER_TICK_SECONDS", "2")
    _setup_django()
    prepare(demo_polling)

    python = sys.executable
    celery = str(Path(python).with_name("celery"))
    commands = {
        "web": [python, "manage.py", "runserver", bind, "--noreload"],
        "worker": [celery, "-A", "dashboard", "worker", "-c", "2", "-l", "warning", "-n", "demo@%h"],
        "beat": [celery, "-A", "dashboard", "beat", "-l", "warning"],
    }
    supervisor = Supervisor(commands)
    supervisor.start()
    _say(f"web server on http://{bind}/ , worker and beat started; Ctrl-C stops everything")

    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    from django.db import close_old_connections

    from failover.simulated.advance import advance
    from failover.simulated.demo import arrive

    next_advance = time.monotonic() + advance_every
    next_arrival = time.monotonic() + arrival_every
    try:
        while not stopping:
            time.sleep(0.2)
            supervisor.poll()
            if time.monotonic() >= next_advance and not stopping:
                try:
                    close_old_connections()
                    _say(f"simulated DIRAC: {advance(max_jobs=jobs_per_step)}")
                except Exception as exc:  # a busy database must not stop the demo
                    _say(f"simulated DIRAC did not move this time: {exc.__class__.__name__}: {exc}")
                next_advance = time.monotonic() + advance_every
            if time.monotonic() >= next_arrival and not stopping:
                try:
                    close_old_connections()
                    pid = arrive(arrival_files, arrivals)
                    if pid is not None:
                        _say(f"simulated DIRAC: production {pid} arrived")
                except Exception as exc:  # a busy database must not stop the demo
                    _say(f"simulated DIRAC: no production arrived this time: {exc.__class__.__name__}: {exc}")
                next_arrival = time.monotonic() + arrival_every
    finally:
        supervisor.stop()
        _say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
