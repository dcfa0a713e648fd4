"""``make run``'s supervisor (dashboard/run.py) with real child processes."""

from __future__ import annotations

import os
import signal
import sys
import time

from dashboard.run import Supervisor, exit_status

PY = sys.executable


def wait_until(predicate, timeout: float = 60.0, what: str = "condition", poll=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if poll:
            poll()
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by us) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_child_that_exits_is_started_again_with_a_doubling_pause_and_the_others_stay_up(tmp_path):
    said: list[tuple[float, str]] = []
    supervisor = Supervisor(
        {"worker": [PY, "-c", "import sys; sys.exit(3)"], "web": [PY, "-c", "import time; time.sleep(600)"]},
        cwd=tmp_path, say=lambda text: said.append((time.monotonic(), text)),
        backoff=0.2, max_backoff=0.8, stable_after=60,
    )
    supervisor.start()
    try:
        web_pid = supervisor.children["web"].proc.pid
        worker = supervisor.children["worker"]
        wait_until(lambda: worker.restarts >= 4, poll=supervisor.poll, what="four restarts")
        exits = [(at, text) for at, text in said if text.startswith("worker (pid")]
        starts = [(at, text) for at, text in said if text.startswith("worker started again")]
        assert [text.rsplit(" in ", 1)[1] for _, text in exits[:4]] == ["0.2 s", "0.4 s", "0.8 s", "0.8 s"]
        assert all("exited with status 3" in text for _, text in exits)
        assert [text.rsplit("restart ", 1)[1] for _, text in starts[:4]] == ["1)", "2)", "3)", "4)"]
        # Each start came no sooner than its pause after the exit was noticed.
        for (exited, _), (started, _), pause in zip(exits, starts, [0.2, 0.4, 0.8, 0.8]):
            assert started - exited >= pause
        assert len(set(worker.pids)) == 5
        assert supervisor.children["web"].proc.pid == web_pid and supervisor.children["web"].restarts == 0
        assert alive(web_pid)
    finally:
        supervisor.stop(timeout=10)
    assert not alive(web_pid)


def test_a_long_run_resets_the_pause(tmp_path):
    now = [0.0]
    said = []
    supervisor = Supervisor({"beat": [PY, "-c", "import sys; sys.exit(0)"]}, cwd=tmp_path, say=said.append,
                            backoff=1.0, max_backoff=30.0, stable_after=60.0, clock=lambda: now[0])
    supervisor.start()
    beat = supervisor.children["beat"]
    try:
        for _ in range(3):  # three quick exits: 1, 2, 4 s
            beat.proc.wait(timeout=60)
            supervisor.poll()
            now[0] += 10
            supervisor.poll()
        assert [t.rsplit(" in ", 1)[1] for t in said if "exited" in t] == ["1 s", "2 s", "4 s"]
        beat.proc.wait(timeout=60)
        now[0] += 120  # it ran two minutes before exiting
        supervisor.poll()
        assert said[-1].endswith("after 120 s; starting it again in 1 s")
    finally:
        supervisor.stop(timeout=10)


STUBBORN = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.fork() == 0:  # a pool process in the same process group
    open(sys.argv[1] + ".child", "w").write(str(os.getpid()))
    time.sleep(600)
    os._exit(0)
open(sys.argv[1], "w").write("ready")
time.sleep(600)
"""


def test_stop_ends_every_process_it_started_even_one_that_ignores_sigterm(tmp_path):
    ready = tmp_path / "ready"
    supervisor = Supervisor({"worker": [PY, "-c", STUBBORN, str(ready)],
                             "web": [PY, "-c", "import time; time.sleep(600)"]},
                            cwd=tmp_path, say=lambda text: None)
    supervisor.start()
    wait_until(lambda: ready.exists() and (tmp_path / "ready.child").exists()
               and (tmp_path / "ready.child").read_text(), what="the stubborn worker and its child")
    child_pid = int((tmp_path / "ready.child").read_text())
    pids = [c.proc.pid for c in supervisor.children.values()]
    supervisor.stop(timeout=2)
    assert not any(alive(pid) for pid in pids)
    wait_until(lambda: not alive(child_pid), timeout=30, what="the worker's child to go")


def test_exit_status_names_the_signal():
    assert exit_status(-signal.SIGKILL) == "was killed by SIGKILL"
    assert exit_status(1) == "exited with status 1"
