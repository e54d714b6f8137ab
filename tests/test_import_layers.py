"""The package's import graph has no cycles, counting imports inside functions too.

Every module under ``src/napari_colorize`` is parsed with :mod:`ast` (nothing is
imported); each ``import``/``from ... import`` anywhere in it (module level,
functions, methods, ``try`` blocks) is an edge to the package module it names.
``if TYPE_CHECKING:`` blocks are skipped: they never run. A cycle means two
modules each need the other, which is what the layering in DESIGN.md forbids.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "napari_colorize"
ROOT = Path(__file__).resolve().parents[1] / "src" / PACKAGE

#: Cycles known to remain, each a sorted tuple of module names; shrink it as they are fixed.
KNOWN_CYCLES: set[tuple[str, ...]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST):
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _targets(name: str, path: Path, node, modules: dict[str, Path]) -> set[str]:
    """The package modules one import statement of module ``name`` loads."""
    if isinstance(node, ast.Import):
        found = {alias.name for alias in node.names}
    else:
        if node.level:
            package = name if path.name == "__init__.py" else name.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{node.module}" if node.module else package
        else:
            base = node.module or ""
        # ``from pkg import sub`` loads the submodule pkg.sub when there is one
        found = {
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
            for alias in node.names
        }
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    """Module name -> the package modules it imports anywhere in its code."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges: set[str] = set()
        for node in _import_nodes(tree):
            edges |= _targets(name, path, node, modules)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def _path_of(component: tuple[str, ...], graph) -> str:
    """One import chain round a cycle, for the failure message."""
    members = set(component)
    start = component[0]
    chain, seen = [start], {start}
    while True:
        nxt = sorted(graph[chain[-1]] & members)
        step = next((m for m in nxt if m == start and len(chain) > 1), None)
        if step is not None:
            return " -> ".join([*chain, start])
        unvisited = [m for m in nxt if m not in seen]
        if not unvisited:
            return " <-> ".join(component)
        chain.append(unvisited[0])
        seen.add(unvisited[0])


def test_graph_sees_function_level_imports():
    graph = import_graph()
    # the model cache imports the registry only inside a function
    assert f"{PACKAGE}.registry" in graph[f"{PACKAGE}.inference.model_cache"]
    assert f"{PACKAGE}.devices" in graph[f"{PACKAGE}.inference.colorizer"]


def test_cycle_finder_finds_a_cycle_made_inside_functions():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [("a", "b", "c")]


def test_no_import_cycles_in_the_package():
    graph = import_graph()
    found = set(cycles(graph))
    new = sorted(found - KNOWN_CYCLES)
    assert not new, "import cycles (fix the layering, see DESIGN.md):\n" + "\n".join(
        _path_of(c, graph) for c in new
    )
    fixed = sorted(KNOWN_CYCLES - found)
    if fixed:
        pytest.fail(f"cycles fixed, remove them from KNOWN_CYCLES: {fixed}")
