"""``make run``: the whole product on one machine with the embedded defaults.

Migrates, creates an operator account on the first run (printing its name and password, or
taking FAILOVER_USER / FAILOVER_PASSWORD), imports the seed's agent configuration with a short
demo PollingTime, loads a seed-like production into the simulated DIRAC, then starts the web
server, a Celery worker and beat, and keeps the simulated DIRAC moving. Ctrl-C stops them all.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
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

    from failover.config_import import parse_path
    from failover.models import Policy

    if not Policy.objects.exists():
        imported = parse_path(ROOT / "examples" / "seed-agent.cfg")
        Policy.objects.create(name="default", source=imported.path, **{**imported.values, "polling_time": demo_polling})
        _say(f"policy imported from examples/seed-agent.cfg with a demo PollingTime of {demo_polling} s")

    from failover.simulated.generate import GenerateOptions, generate
    from failover.simulated.models import SimTransformation
    from failover.simulated.store import load

    if not SimTransformation.objects.exists():
        files = int(os.environ.get("DEMO_FILES", "2000"))
        load(generate(GenerateOptions(productions=2, files=files)))
        _say(f"loaded two seed-like demo productions ({files} input files each) into the simulated DIRAC")
    return name, password


def main() -> int:
    demo_polling = int(os.environ.get("DEMO_POLLING_TIME", "15"))
    advance_every = float(os.environ.get("DEMO_ADVANCE_SECONDS", "5"))
    bind = os.environ.get("RUN_BIND", "127.0.0.1:8000")
    # At most this many jobs move per step, so the demo productions take several minutes.
    jobs_per_step = int(os.environ.get("DEMO_JOBS_PER_STEP", "40"))
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
    procs = {name: subprocess.Popen(cmd, cwd=ROOT, start_new_session=True) for name, cmd in commands.items()}
    _say(f"web server on http://{bind}/ , worker and beat started; Ctrl-C stops everything")

    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    from django.db import close_old_connections

    from failover.simulated.advance import advance

    next_advance = time.monotonic() + advance_every
    try:
        while not stopping:
            time.sleep(0.2)
            for name, proc in procs.items():
                if proc.poll() is not None:
                    _say(f"{name} exited with status {proc.returncode}; stopping")
                    stopping = True
            if time.monotonic() >= next_advance and not stopping:
                close_old_connections()
                _say(f"simulated DIRAC: {advance(max_jobs=jobs_per_step)}")
                next_advance = time.monotonic() + advance_every
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                # The main process only: a Celery worker then finishes the task in hand (warm
                # shutdown) and stops its pool itself.
                proc.send_signal(signal.SIGTERM)
        for name, proc in procs.items():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        _say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
