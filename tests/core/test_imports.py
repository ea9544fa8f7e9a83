"""The layout holds: no import cycle among the modules of `suite`, and core never imports a technique.

Reads the source (static imports, including those inside functions), imports nothing.
"""

import ast
from pathlib import Path

import pytest
from conftest import REPO

SUITE = REPO / "suite"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The suite modules `path` imports: `from a.b import c` counts a.b.c when that is a module."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known}
    return {module for module in found if module in known and module != name}


def import_graph() -> dict[str, set[str]]:
    paths = {_module_name(path): path for path in SUITE.rglob("*.py")}
    known = set(paths)
    return {name: _imports(path, name, known) for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path of modules, or None (depth-first search)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            # a package's __init__ importing its own submodules is how a plugin registers; not a cycle
            if target.startswith(node + "."):
                continue
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_is_read():
    graph = import_graph()
    assert "suite.core.runner" in graph and "suite.core.plan" in graph["suite.core.runner"]
    assert "suite.core.fit" in graph["suite.techniques.transfer.protocol"]


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_core_imports_no_technique():
    graph = import_graph()
    offending = {name: sorted(t for t in targets if t.startswith("suite.techniques"))
                 for name, targets in graph.items() if name.startswith("suite.core")}
    assert {name: targets for name, targets in offending.items() if targets} == {}


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
])
def test_the_cycle_finder_finds_cycles(graph, expected):
    assert find_cycle(graph) == expected


def test_every_import_of_the_suite_resolves():
    """Imports inside functions run late (a report section, a worker): a name that moved must fail here, not there."""
    import importlib

    missing = []
    for path in SUITE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("suite"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    if not hasattr(module, alias.name):
                        try:
                            importlib.import_module(f"{node.module}.{alias.name}")
                        except ImportError:
                            missing.append(f"{path.relative_to(REPO)}:{node.lineno}: from {node.module} import {alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("suite"):
                        importlib.import_module(alias.name)
    assert missing == []

