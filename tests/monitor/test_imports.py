"""The imports of both packages: no cycles, and no hidden ones.

The graph is read from the source with ``ast``: every import of a package module, at any
depth (also under ``TYPE_CHECKING`` and inside functions), is an edge. A function-local
import of the package's own modules would hide a cycle from Python, so neither package
has one (the CLI defers a subcommand's heavy module through ``importlib``, not an import).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "monitor_image" / "modelwatch_monitor"
NAME = "modelwatch_monitor"
OPERATOR = ROOT / "operator" / "modelwatch_operator"


def _module_of(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts[1:]  # below monitor_image/ or operator/
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_of(p): p for root in (PACKAGE, OPERATOR) for p in sorted(root.rglob("*.py"))}


def _targets(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The package's modules ``node`` imports (``from a import b`` is ``a.b`` when that is
    a module, else ``a``)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    return [n for n in names if n in MODULES]


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                edges.update(t for t in _targets(node) if t != module)
        graph[module] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph`` (each once, from its smallest module)."""
    found: set[tuple[str, ...]] = set()

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in path:
                cycle = path[path.index(nxt) :]
                start = cycle.index(min(cycle))
                found.add(tuple(cycle[start:] + cycle[:start]))
            elif nxt not in done:
                visit(nxt, [*path, nxt])
        done.add(node)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    return [list(c) for c in sorted(found)]


def test_the_packages_have_no_import_cycle() -> None:
    graph = _graph()
    assert graph[f"{NAME}.check.run"] >= {f"{NAME}.check.shard_runs", f"{NAME}.check.judge"}
    assert "modelwatch_operator.monitors" in graph["modelwatch_operator.kube"]
    assert _cycles(graph) == []


def test_a_cycle_is_found() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("root", [PACKAGE, OPERATOR], ids=["monitor", "operator"])
def test_no_function_local_import_of_the_package(root: pathlib.Path) -> None:
    """Only the CLI's ``importlib`` dispatch defers a subcommand's (heavy) module."""
    paths = sorted(root.rglob("*.py"))
    local = []
    for path in paths:
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import | ast.ImportFrom) and _targets(node):
                    local.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert local == []
