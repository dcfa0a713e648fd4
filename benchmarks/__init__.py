"""Benchmarks: the Failover Dashboard's cycle against CTADIRAC's TransformationFailoverAgent.

Run ``python -m benchmarks --help``. Nothing in this package is imported by the product, and the
package itself imports neither Django nor DIRAC at import time: its ``agent_shim`` subpackage runs
in a virtual environment of its own (var/bench-agent-venv) that has DIRAC and CTADIRAC but not the
product, and the product side runs in the project's .venv. See docs/benchmarks.md.
"""
