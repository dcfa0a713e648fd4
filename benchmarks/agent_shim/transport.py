"""The shim's one seam: DIRAC's RPC transport, replaced by calls to the simulated services.

Every DIRAC client (TransformationClient, ProductionClient, JobMonitoringClient,
NotificationClient, and the TransformationClient inside each ``Transformation`` object) reaches its
service through ``Client._getRPC``, which returns an RPC client whose attributes are the service's
methods. We give it an object that counts the call, waits the injected latency, and answers from
``SimDiracServer``. Everything above the wire, DIRAC's client-side logic (paging, the file state
machine, the Transformation object's constructor fetch) and CTADIRAC's agent, runs unchanged.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from benchmarks.agent_shim.server import SimDiracServer


class CallLog:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_method: Counter[str] = Counter()

    def add(self, key: str) -> None:
        with self.lock:
            self.by_method[key] += 1

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.by_method)


class SimulatedRPC:
    """What ``Client._getRPC`` returns: one service's methods, each one simulated RPC."""

    def __init__(self, server: SimDiracServer, service: str, calls: CallLog, latency: float):
        self._server = server
        self._service = service
        self._calls = calls
        self._latency = latency

    def __getattr__(self, method: str):
        if method.startswith("__"):
            raise AttributeError(method)

        def rpc(*args):
            self._calls.add(f"{self._service.split('/')[-1]}.{method}")
            if self._latency:
                time.sleep(self._latency)
            return self._server.call(self._service, method, args)

        return rpc


def install(server: SimDiracServer, *, latency_ms: float) -> CallLog:
    """Route every DIRAC client of this process to ``server``; returns the call log."""
    from DIRAC.Core.Base.Client import Client
    from DIRAC.Core.Utilities import Mail

    calls = CallLog()
    latency = latency_ms / 1000.0

    def _getRPC(self, rpc=None, url="", timeout=None):  # noqa: N802 (DIRAC's name)
        if rpc:
            return rpc
        return SimulatedRPC(server, url or self.serverURL, calls, latency)

    Client._getRPC = _getRPC

    # The agent mails through local SMTP first (NotificationClient.sendMail with localAttempt);
    # a sink stands in for the mail server. Mails are counted apart: they are not DIRAC calls.
    mails = CallLog()

    def _send(self, msg=None):
        mails.add("smtp")
        return {"OK": True, "Value": "accepted by the benchmark's mail sink"}

    Mail.Mail._send = _send
    calls.mails = mails  # type: ignore[attr-defined]
    return calls
