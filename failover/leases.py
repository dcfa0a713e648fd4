"""Leases kept alive while their holder lives.

A cycle item and a transformation lock are leases in the database (FAILOVER_LEASE_SECONDS). The
process that holds one renews it from a small thread every third of the lease, so the lease runs
out only when the process is gone (killed, frozen, cut off from the database): then beat's tick
puts the item back on the queue and the next taker finds the lock free.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)


def lease_seconds() -> int:
    return settings.FAILOVER_LEASE_SECONDS


class Keeper:
    """``with Keeper(renew, ...):`` calls each ``renew()`` every ``interval`` seconds meanwhile.

    The first renewal comes one interval after the start: a short task never opens a second
    database connection. A failed renewal is logged and tried again at the next interval; with
    renewals every third of the lease, two may fail before the lease runs out.
    """

    def __init__(self, *renewals: Callable[[], object], interval: float | None = None, name: str = "lease"):
        self.renewals = renewals
        self.interval = interval if interval is not None else lease_seconds() / 3
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Keeper:
        if self.renewals:
            self._thread = threading.Thread(target=self._run, name=f"keeper {self.name}", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                for renew in self.renewals:
                    try:
                        renew()
                    except Exception as exc:  # the next interval tries again
                        log.warning("renewing %s failed: %s", self.name, exc)
        finally:
            connection.close()  # this thread's own connection
