"""The policy both contenders apply: the product's seed policy, read without starting Django."""

from __future__ import annotations

import ast
from pathlib import Path

FACTORIES = Path(__file__).resolve().parent.parent / "tests" / "factories.py"


def seed_policy() -> dict:
    """``SEED_POLICY`` of tests/factories.py (the seed installation's agent options).

    Read from the source, so the orchestrator needs neither Django nor the product's models;
    the engine's runner imports the same dict for real.
    """
    tree = ast.parse(FACTORIES.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "SEED_POLICY" for t in node.targets):
            call = node.value
            if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "dict":
                return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
            return ast.literal_eval(call)
    raise LookupError(f"SEED_POLICY not found in {FACTORIES}")
