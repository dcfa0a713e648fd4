"""Choosing the DIRAC adapter: ``DIRAC_BACKEND`` is ``simulated`` (default) or ``dirac``."""

from __future__ import annotations

from failover.backends.base import CallCounter, DiracBackend

__all__ = ["CallCounter", "DiracBackend", "get_backend"]


def get_backend(name: str | None = None, **options) -> DiracBackend:
    from django.conf import settings

    name = name or settings.DIRAC_BACKEND
    if name == "simulated":
        # The same simulator with plain-SQL bulk reads on SQLite (docs/benchmarks.md); the
        # contract suite holds both read paths to the same answers.
        from failover.simulated.fastpath import FastSimulatedDirac

        options.setdefault("latency_ms", settings.SIMDIRAC_LATENCY_MS)
        options.setdefault("faults", settings.SIMDIRAC_FAULTS)
        return FastSimulatedDirac(**options)
    if name == "dirac":
        from failover.backends.dirac import DiracAdapter
        from failover.backends.links import DatabaseLinkStore

        options.setdefault("timeout", settings.DIRAC_TIMEOUT)
        # Parent links cost several RPCs per new process: kept in our database across processes.
        options.setdefault("link_store", DatabaseLinkStore())
        return DiracAdapter(**options)
    from failover.errors import ConfigurationError

    raise ConfigurationError(f"unknown DIRAC backend {name!r} (use simulated or dirac)")
