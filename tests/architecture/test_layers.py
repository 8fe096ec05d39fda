"""The package layout holds: imports run one way, no circles, Prefect only in orchestration.

Every import is counted, including those inside functions; only imports under
``if TYPE_CHECKING:`` are left out (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "recipeflow"

# Higher layers may import lower ones; packages on one layer do not import each other.
LAYERS = {
    "cli": 6,
    "orchestration": 5,
    "analyze": 4,
    "engine": 3,
    "recipe": 2,
    "datasets": 2,
    "io": 1,
    "operators": 0,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path) -> set[str]:
    """Modules imported by ``path`` (absolute names), type-only imports left out."""
    module = _module_name(path)
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = module.split(".")[: len(module.split(".")) - child.level + (path.name == "__init__.py")]
                    base = ".".join(anchor + ([base] if base else []))
                found.add(base)
                for alias in child.names:  # `from pkg import module` imports the module
                    found.add(f"{base}.{alias.name}")
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m in _imports(path) if m in modules and m != name}
    return graph


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_imports_run_one_way():
    wrong = []
    for module, imported in _graph().items():
        here = _layer(module)
        if here not in LAYERS:
            continue
        for target in imported:
            there = _layer(target)
            if there in LAYERS and there != here and LAYERS[there] >= LAYERS[here]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_no_import_circles():
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_only_orchestration_imports_prefect():
    outside = []
    for path in PACKAGE.rglob("*.py"):
        if _layer(_module_name(path)) == "orchestration":
            continue
        if any(m == "prefect" or m.startswith(("prefect.", "prefect_")) for m in _imports(path)):
            outside.append(_module_name(path))
    assert not outside, f"modules outside orchestration/ import Prefect: {sorted(outside)}"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: _module_name(p))
def test_modules_are_small_or_say_why(path: Path):
    """A module over ~500 lines says in its docstring why it is one module."""
    lines = path.read_text(encoding="utf-8").count("\n")
    if lines <= 520:
        return
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    assert "One module because" in doc, f"{_module_name(path)} has {lines} lines and no reason"
