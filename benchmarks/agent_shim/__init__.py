"""CTADIRAC's TransformationFailoverAgent on the simulated DIRAC (runs in var/bench-agent-venv).

``transport`` replaces DIRAC's RPC transport, ``server`` answers the RPCs from the simulator's
SQLite file, ``__main__`` runs the agent's cycles or its report code. Standard library only at
import time, so the orchestrator (in the product's venv) can import ``server.state_summary``.
"""
