"""The baseline's own virtual environment: DIRAC and CTADIRAC from PyPI, never the product's.

Created on first use under var/bench-agent-venv (override with BENCH_AGENT_VENV) and recreated
when benchmarks/agent_shim/requirements.txt changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "benchmarks" / "agent_shim" / "requirements.txt"
CHECK = (
    "import CTADIRAC.TransformationSystem.Agent.TransformationFailoverAgent, "
    "DIRAC.TransformationSystem.Client.Transformation, rich, pyinstrument"
)


def venv_dir() -> Path:
    return Path(os.environ.get("BENCH_AGENT_VENV", ROOT / "var" / "bench-agent-venv"))


def python() -> Path:
    return venv_dir() / "bin" / "python"


def ensure(log=print) -> Path:
    """The agent venv's interpreter, creating or refreshing the venv if needed."""
    venv = venv_dir()
    stamp = venv / ".bench-requirements.sha256"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if python().exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return python()
    log(f"Creating the agent's environment in {venv} (DIRAC 9.1.9, CTADIRAC 3.1.0; a minute or two) ...")
    if not python().exists():
        # The base interpreter, not the product's venv: the two environments share nothing.
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
    build_tools(log)
    pip = [str(python()), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    try:
        subprocess.run([*pip, "install", "--no-deps", "-r", str(REQUIREMENTS)], check=True)
    except subprocess.CalledProcessError:
        missing = missing_build_tools()
        raise SystemExit(
            "benchmarks: installing the agent's environment failed"
            + (f"; missing to build M2Crypto: {', '.join(missing)} (as root: scripts/system-deps.sh bench)"
               if missing else " (see pip's message above)")) from None
    subprocess.run([str(python()), "-c", CHECK], check=True, cwd=ROOT)
    stamp.write_text(digest + "\n")
    return python()


def missing_build_tools() -> list[str]:
    """What building M2Crypto (DIRAC imports it; no wheel on PyPI) needs and this machine lacks."""
    import shutil
    import sysconfig

    missing = [tool for tool in ("swig", "gcc") if shutil.which(tool) is None]
    if not Path("/usr/include/openssl/ssl.h").exists():
        missing.append("libssl-dev")
    base = getattr(sys, "_base_executable", sys.executable)
    include = subprocess.run([base, "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"],
                             capture_output=True, text=True).stdout.strip() or sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        missing.append("python3-dev")
    return missing


def build_tools(log=print) -> None:
    """Install what the build needs from Debian (scripts/system-deps.sh bench), when missing."""
    missing = missing_build_tools()
    if not missing:
        return
    log(f"Installing what building M2Crypto needs: {', '.join(missing)} (scripts/system-deps.sh bench) ...")
    subprocess.run([str(ROOT / "scripts" / "system-deps.sh"), "bench"], check=False)
