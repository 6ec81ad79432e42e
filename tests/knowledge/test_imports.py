"""knowledge is the bottom layer: it imports nothing else of supportloop, and its modules import
each other without a circle (function-level imports included, since they hide circles)."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import knowledge

PACKAGE = Path(knowledge.__file__).parent
OURS = ("agent", "training", "ui", "deploy", "benchmarks", "tests")


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of the syntax tree."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {f"knowledge.{p.stem}": p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    return {name: _imports(path) for name, path in modules.items()}


def test_knowledge_imports_nothing_else_of_ours() -> None:
    for module, imports in _graph().items():
        assert not {i for i in imports if i.split(".")[0] in OURS}, module


def test_knowledge_modules_import_each_other_without_a_circle() -> None:
    graph = {m: {i for i in imports if i.startswith("knowledge.")} for m, imports in _graph().items()}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"import circle: {' -> '.join(exc.args[1])}") from None
