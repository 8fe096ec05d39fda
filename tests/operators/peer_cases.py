"""Read a peer's unit-test file (kept as text under tests/data/) and pull out its cases: for
each test method, the literal lists it builds (inputs, targets) and the operator constructor
calls with their literal keyword arguments. Only literals are read (``ast.literal_eval``):
nothing of the peer's file runs."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.operators.peer_literals import Evaluator

DATA = Path(__file__).resolve().parent.parent / "data"


@dataclass
class PeerCase:
    source: str  # "<file>::<Class>.<method>"
    literals: dict[str, Any] = field(default_factory=dict)  # name -> value, in order of assignment
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (callee, literal kwargs)
    expects_error: bool = False  # the peer's test asserts that something raises


def _literal(node: ast.AST, names: dict[str, Any] | None = None) -> Any:
    """The value of a literal expression; names (class attributes) may appear in it."""
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        pass
    evaluator = Evaluator()
    evaluator.names = dict(names or {})
    try:
        return evaluator.value(node)
    except (ValueError, KeyError, TypeError, AttributeError):
        return _NOT_LITERAL


_NOT_LITERAL = object()
# Where a call's positional arguments are kept (in order) among its keyword arguments.
POSITIONAL = "__positional__"


def _setup_arguments(setup: ast.FunctionDef, method: ast.FunctionDef, names: dict[str, Any]) -> dict[str, Any]:
    """setUp's parameters as this test method calls it (``self.setUp(False, True)``), defaults
    filled in: what setUp's body then refers to by name."""
    parameters = [a.arg for a in setup.args.args[1:]]
    defaults = setup.args.defaults
    bound = {
        name: _literal(default, names)
        for name, default in zip(parameters[len(parameters) - len(defaults):], defaults)
    }
    for node in ast.walk(method):
        if (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "setUp" and isinstance(node.func.value, ast.Name)
        ):
            for name, arg in zip(parameters, node.args):
                bound[name] = _literal(arg, names)
            for keyword in node.keywords:
                bound[keyword.arg] = _literal(keyword.value, names)
    return {k: v for k, v in bound.items() if v is not _NOT_LITERAL}


def _callee(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _collect(body: list[ast.stmt], case: PeerCase, names: dict[str, Any] | None = None) -> None:
    for statement in ast.walk(ast.Module(body=body, type_ignores=[])):
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
            name = target.id if isinstance(target, ast.Name) else (
                target.attr if isinstance(target, ast.Attribute) else None
            )
            value = _literal(statement.value, {**(names or {}), **case.literals})
            if name and value is not _NOT_LITERAL:
                case.literals[name] = value
        if isinstance(statement, ast.Call):
            kwargs = {}
            positional = [_literal(a, {**(names or {}), **case.literals}) for a in statement.args]
            if positional and all(v is not _NOT_LITERAL for v in positional):
                kwargs[POSITIONAL] = positional
            for keyword in statement.keywords:
                value = _literal(keyword.value, {**(names or {}), **case.literals})
                if keyword.arg and value is not _NOT_LITERAL:
                    kwargs[keyword.arg] = value
            case.calls.append((_callee(statement), kwargs))


def peer_cases(relative_path: str) -> list[PeerCase]:
    """The test methods of a peer's test file, with setUp's literals and calls first."""
    path = DATA / relative_path
    tree = ast.parse(path.read_text(encoding="utf-8"))
    cases = []
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        class_attributes = PeerCase("class")
        _collect([m for m in cls.body if isinstance(m, ast.Assign)], class_attributes)
        attributes = class_attributes.literals
        setup = [m for m in cls.body if isinstance(m, ast.FunctionDef) and m.name == "setUp"]
        helpers = {m.name: m for m in cls.body if isinstance(m, ast.FunctionDef) and not m.name.startswith("test")}
        for method in cls.body:
            if isinstance(method, ast.FunctionDef) and method.name.startswith("test"):
                case = PeerCase(f"{path.name.removesuffix('.txt')}::{cls.name}.{method.name}")
                case.literals.update(attributes)  # a method's own assignments come later and win
                for s in setup:
                    _collect(s.body, case, {**attributes, **_setup_arguments(s, method, attributes)})
                _collect(method.body, case, attributes)
                # Test methods that only call a shared `_test_*` helper (e.g. with context=True):
                # the helper's literals and calls belong to the case too.
                for node in ast.walk(method):
                    if (
                        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr.startswith("_test") and node.func.attr in helpers
                    ):
                        _collect(helpers[node.func.attr].body, case, attributes)
                case.expects_error = any(
                    isinstance(n, ast.Attribute) and n.attr == "assertRaises" for n in ast.walk(method)
                )
                cases.append(case)
    return cases
