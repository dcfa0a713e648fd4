"""Set up Django for a benchmark subprocess on databases of its own (never the checkout's var/)."""

from __future__ import annotations

import os
from pathlib import Path


def setup(sim_db: Path, dashboard_db: Path, *, var_dir: Path, latency_ms: float = 0.0) -> None:
    """Point the product at ``sim_db`` and ``dashboard_db`` and start Django.

    Settings are read from the environment at import time, so this must run before anything
    imports ``django.conf.settings``.
    """
    var_dir.mkdir(parents=True, exist_ok=True)
    os.environ["VAR_DIR"] = str(var_dir)
    os.environ["DATABASE_URL"] = f"sqlite:///{dashboard_db}"
    os.environ["SIMDIRAC_DATABASE_URL"] = f"sqlite:///{sim_db}"
    os.environ["SIMDIRAC_LATENCY_MS"] = str(latency_ms)
    os.environ["SIMDIRAC_FAULTS"] = ""
    os.environ["DIRAC_BACKEND"] = "simulated"
    os.environ.pop("OPENSEARCH_URL", None)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
    import django

    django.setup()


def migrate(database: str) -> None:
    from django.core.management import call_command

    call_command("migrate", database=database, interactive=False, verbosity=0)
