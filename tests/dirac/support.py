"""Helpers for tests that disturb the real DIRAC services started by services.sh."""

from __future__ import annotations

import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent


@contextmanager
def stopped_service(name: str = "WorkloadManagement_JobMonitoring"):
    """Stop one DIRAC service process (by the pid services.sh recorded), start it again after."""
    root = Path(os.environ["DIRAC_TEST_ROOT"])
    pid = int((root / "run" / f"{name}.pid").read_text())
    os.kill(pid, 15)
    try:
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        yield
    finally:
        subprocess.run([str(HERE / "services.sh"), "start"], check=True, capture_output=True)
