"""Workers record that they are alive, so the health check reads a table instead of pinging.

Each Celery worker process (the main one, not its pool children) runs a small daemon thread from
``worker_ready`` to ``worker_shutdown`` that writes ``Heartbeat("worker:<hostname>")`` every
FAILOVER_HEARTBEAT_SECONDS. A clean shutdown writes ``stopped``; a killed worker simply stops
beating, and the health check calls it dead after three missed heartbeats. Beat's liveness is
the ``beat`` heartbeat written by its tick task (``failover.tasks.tick``).
"""

from __future__ import annotations

import logging
import os
import threading

from celery.signals import worker_ready, worker_shutdown

log = logging.getLogger(__name__)

WORKER_PREFIX = "worker:"
STOPPED = "stopped"

_lock = threading.Lock()
_running: dict[str, tuple[threading.Event, threading.Thread]] = {}


def record(hostname: str, detail: str = "") -> bool:
    """One heartbeat; never raises (a locked or unreachable database is retried next time)."""
    from failover.models import Heartbeat

    try:
        Heartbeat.beat(WORKER_PREFIX + hostname, detail)
        return True
    except Exception as exc:
        log.warning("worker heartbeat not recorded: %s: %s", exc.__class__.__name__, exc)
        return False


def start(hostname: str, interval: float | None = None) -> threading.Event:
    from django.conf import settings

    interval = interval or settings.FAILOVER_HEARTBEAT_SECONDS
    detail = f"pid {os.getpid()}"
    with _lock:
        if hostname in _running:
            return _running[hostname][0]
        stop = threading.Event()

        def loop() -> None:
            from django.db import connection

            while not stop.is_set():
                record(hostname, detail)
                connection.close()  # this thread's own connection: nothing lingers between beats
                stop.wait(interval)

        thread = threading.Thread(target=loop, name=f"heartbeat {hostname}", daemon=True)
        _running[hostname] = (stop, thread)
    thread.start()
    return stop


def stop(hostname: str, timeout: float = 10.0) -> None:
    """Stop the beats, wait for a beat in flight, then write ``stopped``.

    Waiting matters: a beat still being written when the event is set would otherwise land
    after ``stopped`` and make a cleanly stopped worker look alive until it is called dead.
    """
    with _lock:
        entry = _running.pop(hostname, None)
    if entry is not None:
        event, thread = entry
        event.set()
        thread.join(timeout)
        record(hostname, STOPPED)


def _hostname(sender) -> str:
    return getattr(sender, "hostname", None) or getattr(getattr(sender, "controller", None), "hostname", "") or ""


@worker_ready.connect(dispatch_uid="failover.heartbeats.ready")
def _on_worker_ready(sender=None, **kwargs) -> None:
    name = _hostname(sender)
    if name:
        start(name)


@worker_shutdown.connect(dispatch_uid="failover.heartbeats.shutdown")
def _on_worker_shutdown(sender=None, **kwargs) -> None:
    # worker_shutdown's sender is the WorkController; stop every heartbeat of this process.
    with _lock:
        names = list(_running)
    for name in names:
        stop(name)
