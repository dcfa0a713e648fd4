"""The package graph is one-way and has no module cycle (an AST scan of every import, function-local ones too).

    failover  <-  reports  <-  dashboard (the web)  <-  reports.digests

A module may import its own layer and the layers to its left, never one to its right. Tests and
migrations are not scanned.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("failover", "reports", "dashboard", "reports.digests")

def modules() -> dict[str, Path]:
    out = {}
    for package in ("failover", "reports", "dashboard"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports, at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def layer(module: str) -> int:
    return max(i for i, prefix in enumerate(LAYERS) if module == prefix or module.startswith(prefix + "."))


def graph() -> dict[str, set[str]]:
    known = modules()
    return {m: imports(p, known) - {m} for m, p in known.items()}


def test_no_module_imports_a_layer_above_its_own():
    backward = sorted(
        (m, t) for m, targets in graph().items() for t in targets
        if layer(t) > layer(m)
    )
    assert backward == [], "imports against the graph failover <- reports <- dashboard <- reports.digests"


def test_failover_imports_neither_reports_nor_dashboard():
    wrong = sorted((m, t) for m, ts in graph().items() if layer(m) == 0 for t in ts if layer(t) > 0)
    assert wrong == []


def strongly_connected(g: dict[str, set[str]]) -> list[set[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(component)

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_there_is_no_module_cycle():
    assert strongly_connected(graph()) == []


def test_the_scan_sees_a_backward_import_and_a_cycle():
    """The checks above can fail: a made-up graph with a backward import and a cycle."""
    g = {"failover.a": {"reports.b"}, "reports.b": {"failover.a"}}
    assert [(m, t) for m, ts in g.items() for t in ts if layer(t) > layer(m)] == [("failover.a", "reports.b")]
    assert strongly_connected(g) == [{"failover.a", "reports.b"}]
    assert layer("reports.digests.views") == 3 and layer("reports.stores") == 1
