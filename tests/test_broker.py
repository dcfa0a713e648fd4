"""The embedded broker's transport (dashboard/broker.py), through kombu as Celery uses it."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from kombu import Connection

from dashboard import broker

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fresh_bindings():
    # The transport keeps declared bindings per process (as kombu's does); each test has its own
    # control folder, so each starts without them.
    broker.Transport.global_state.clear()
    yield
    broker.Transport.global_state.clear()


def options(folder: Path, **extra) -> dict:
    return {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "control_folder": str(folder / "control"),
        "corrupt_grace": 0.0,
        "restore_interval": 0.0,
        **extra,
    }


def connect(folder: Path, **extra) -> Connection:
    (folder / "control").mkdir(parents=True, exist_ok=True)
    return Connection(
        "filesystem://", transport="dashboard.broker:Transport", transport_options=options(folder, **extra)
    )


def files(folder: Path, sub: str) -> list[str]:
    return sorted(os.listdir(folder / sub))


def wait_until(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_it_uses_our_transport_for_the_default_broker_url():
    from dashboard.celery import app

    with app.connection_for_write() as conn:
        assert conn.transport_cls == "dashboard.broker:Transport"
        assert isinstance(conn.transport, broker.Transport)


def test_it_writes_a_message_whole_or_not_at_all(tmp_path, monkeypatch):
    seen_at_rename = []
    real_rename = os.rename

    def watching_rename(src, dst):
        # At the moment of the rename the message is complete under its temporary name, and the
        # queue does not show it yet.
        if str(dst).startswith(str(tmp_path / "queue")):
            seen_at_rename.append((Path(src).parent.name, json.loads(Path(src).read_bytes()), files(tmp_path, "queue")))
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", watching_rename)
    with connect(tmp_path) as conn:
        conn.SimpleQueue("jobs").put({"n": 1})
    (folder, payload, queue_before), = seen_at_rename
    assert folder == "tmp" and queue_before == []
    assert isinstance(payload["properties"]["delivery_tag"], str)
    assert files(tmp_path, "tmp") == []
    (name,) = files(tmp_path, "queue")
    assert name.endswith(".jobs.msg") and name[:13].isdigit()
    with connect(tmp_path) as conn:
        message = conn.SimpleQueue("jobs").get(timeout=5)
        assert message.payload == {"n": 1}
        message.ack()


def test_a_failed_write_leaves_nothing_in_the_queue(tmp_path, monkeypatch):
    def full_disk(fd, data):
        raise OSError(28, "No space left on device")

    with connect(tmp_path) as conn:
        queue = conn.SimpleQueue("jobs")
        monkeypatch.setattr(os, "write", full_disk)
        with pytest.raises(Exception, match="No space left"):
            queue.put({"n": 1}, retry=False)
        monkeypatch.undo()
        assert files(tmp_path, "queue") == [] and files(tmp_path, "tmp") == []


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "empty"),
        (b'{"body": "eyJu', "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b"[1, 2]", "no properties"),
        (b'{"properties": {}}', "no delivery tag"),
        (b'{"body": "x", "properties": {"delivery_tag": "x"}}', "no delivery info"),
        (b'{"body": "x", "properties": {"delivery_tag": "x", "body_encoding": "rot13", '
         b'"delivery_info": {"exchange": "jobs", "routing_key": "jobs"}}}', "not a kombu message"),
    ],
)
def test_a_bad_message_file_is_set_aside_and_the_next_one_delivered(tmp_path, caplog, content, problem):
    with connect(tmp_path) as conn:
        queue = conn.SimpleQueue("jobs")
        bad = tmp_path / "queue" / "0000000000001_00000000-0000-0000-0000-000000000000.jobs.msg"
        bad.write_bytes(content)
        queue.put({"n": 1})
        with caplog.at_level(logging.WARNING, logger="dashboard.broker"):
            message = queue.get(timeout=5)
        assert message.payload == {"n": 1}
        message.ack()
    assert files(tmp_path, "corrupt") == [bad.name]
    assert (tmp_path / "corrupt" / bad.name).read_bytes() == content
    assert files(tmp_path, "queue") == [] and files(tmp_path, "processing") == []
    assert any(problem in r.getMessage() and bad.name in r.getMessage() for r in caplog.records), caplog.text


def test_a_young_bad_file_is_retried_not_set_aside(tmp_path):
    # A writer that does not write atomically may be between creating the file and writing it.
    with connect(tmp_path, corrupt_grace=60.0) as conn:
        queue = conn.SimpleQueue("jobs")
        young = tmp_path / "queue" / "0000000000001_00000000-0000-0000-0000-000000000000.jobs.msg"
        young.write_bytes(b"")
        queue.put({"n": 1})
        message = queue.get(timeout=5)
        assert message.payload == {"n": 1}
        message.ack()
        assert files(tmp_path, "queue") == [young.name] and files(tmp_path, "corrupt") == []
        # The writer finishes: the message is delivered as any other.
        queue.put({"n": 2})
        (written,) = set(files(tmp_path, "queue")) - {young.name}
        content = (tmp_path / "queue" / written).read_bytes()
        os.unlink(tmp_path / "queue" / written)
        young.write_bytes(content)
        message = queue.get(timeout=5)
        assert message.payload == {"n": 2}
        message.ack()
    assert files(tmp_path, "queue") == [] and files(tmp_path, "corrupt") == []


def test_a_taken_message_is_kept_until_acknowledged(tmp_path):
    with connect(tmp_path) as conn:
        queue = conn.SimpleQueue("jobs")
        queue.put({"n": 1})
        message = queue.get(timeout=5)
        assert files(tmp_path, "queue") == []
        assert len(files(tmp_path, "processing")) == 1
        message.ack()
        assert files(tmp_path, "processing") == []


def test_a_rejected_message_goes_back_to_the_queue_once(tmp_path):
    with connect(tmp_path) as conn:
        queue = conn.SimpleQueue("jobs")
        queue.put({"n": 1})
        queue.get(timeout=5).requeue()
        assert files(tmp_path, "processing") == [] and len(files(tmp_path, "queue")) == 1
        again = queue.get(timeout=5)
        assert again.payload == {"n": 1}
        again.ack()
        assert files(tmp_path, "queue") == [] and files(tmp_path, "processing") == []


def test_unacknowledged_messages_go_back_when_the_connection_closes(tmp_path):
    with connect(tmp_path) as conn:
        queue = conn.SimpleQueue("jobs")
        for n in range(2):
            queue.put({"n": n})
        queue.get(timeout=5)
        queue.close()
    assert files(tmp_path, "processing") == []
    with connect(tmp_path) as conn:
        queue = conn.SimpleQueue("jobs")
        got = []
        for _ in range(2):
            message = queue.get(timeout=5)
            got.append(message.payload["n"])
            message.ack()
    assert sorted(got) == [0, 1]
    assert files(tmp_path, "queue") == [] and files(tmp_path, "processing") == []


TAKER = textwrap.dedent(
    """
    import os, sys, time
    from kombu import Connection
    opts = {opts!r}
    with Connection("filesystem://", transport="dashboard.broker:Transport", transport_options=opts) as conn:
        message = conn.SimpleQueue("jobs").get(timeout=30)
        if {fork!r}:
            if os.fork() == 0:  # a pool process forked while the message is held
                time.sleep(120)
                os._exit(0)
        print("taken", message.payload["n"], flush=True)
        time.sleep(120)
    """
)


def start_taker(tmp_path: Path, fork: bool = False) -> subprocess.Popen:
    code = TAKER.format(opts=options(tmp_path), fork=fork)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    assert proc.stdout.readline().split() == ["taken", "7"]
    return proc


@pytest.mark.parametrize("fork", [False, True], ids=["worker", "worker with a forked pool process"])
def test_a_killed_consumers_message_comes_back_and_a_live_ones_does_not(tmp_path, fork):
    with connect(tmp_path) as conn:
        conn.SimpleQueue("jobs").put({"n": 7})
    taker = start_taker(tmp_path, fork=fork)
    try:
        with connect(tmp_path) as conn:
            queue = conn.SimpleQueue("jobs")
            # Its consumer is alive: the message stays taken however often we look.
            for _ in range(3):
                with pytest.raises(queue.Empty):
                    queue.get(timeout=0.3)
            assert len(files(tmp_path, "processing")) == 1
            # SIGKILL of the consumer alone (a forked child, if any, lives on).
            os.kill(taker.pid, signal.SIGKILL)
            taker.wait(timeout=30)
            message = wait_until(lambda: _get_or_none(queue), what="the message to come back")
            assert message.payload == {"n": 7}
            assert message.delivery_info["routing_key"] == "jobs"
            message.ack()
            assert files(tmp_path, "queue") == [] and files(tmp_path, "processing") == []
    finally:
        try:
            os.killpg(taker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        taker.wait(timeout=30)


def _get_or_none(queue):
    try:
        return queue.get(timeout=0.2)
    except queue.Empty:
        return None


def test_restore_keeps_the_message_in_its_place_and_marks_it_redelivered(tmp_path):
    with connect(tmp_path) as conn:
        queue = conn.SimpleQueue("jobs")
        queue.put({"n": 7})
    taker = start_taker(tmp_path)
    (taken,) = files(tmp_path, "processing")
    os.killpg(taker.pid, signal.SIGKILL)
    taker.wait(timeout=30)
    with connect(tmp_path, restore_interval=3600.0) as conn:
        channel = conn.default_channel
        assert channel.restore_abandoned() == 1
    assert files(tmp_path, "queue") == [taken] and files(tmp_path, "processing") == []
    assert json.loads((tmp_path / "queue" / taken).read_bytes())["redelivered"] is True


def test_no_ack_consumers_leave_nothing_behind(tmp_path):
    with connect(tmp_path) as conn:
        queue = conn.SimpleQueue("jobs", no_ack=True)
        queue.put({"n": 1})
        assert queue.get(timeout=5).payload == {"n": 1}
        assert files(tmp_path, "processing") == [] and files(tmp_path, "queue") == []


def test_stats_counts_each_folder(tmp_path):
    with connect(tmp_path) as conn:
        conn.SimpleQueue("jobs").put({"n": 1})
    assert broker.stats(tmp_path) == {"queue": 1, "processing": 0, "corrupt": 0, "tmp": 0}
