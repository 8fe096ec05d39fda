"""Evaluate the module-level constants of a peer's test file (kept as text under tests/data/)
without running it: string literals, names defined earlier, ``+``, ``*``, ``" ".join([...])``,
lists and ``Document(text=..., id=...)`` calls (as dicts). ``get_random_string()`` calls give
strings of DataTrove's shape (20 upper-case letters or digits and "!") from a fixed seed."""

from __future__ import annotations

import ast
import random
import string
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data"
# Data-Juicer's field names (data_juicer/utils/constant.py: Fields), as its tests write them.
DATAJUICER_FIELDS = {"stats": "__dj__stats__", "suffix": "__dj__suffix__", "meta": "__dj__meta__", "context": "__dj__context__"}


class Evaluator:
    def __init__(self) -> None:
        self.names: dict[str, Any] = {}
        self._random = random.Random(20)

    def value(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.names[node.id]
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = self.value(node.left), self.value(node.right)
            return left + right if isinstance(node.op, ast.Add) else left * right
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.value(e) for e in node.elts]
        if isinstance(node, ast.Dict):
            return {self.value(k): self.value(v) for k, v in zip(node.keys, node.values)}
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Fields":
            return DATAJUICER_FIELDS[node.attr]
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            return self.names[node.attr]  # a class attribute defined earlier
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -self.value(node.operand)
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "join":
                return self.value(func.value).join(self.value(node.args[0]))
            if isinstance(func, ast.Name) and func.id == "get_random_string":
                return "".join(self._random.choices(string.ascii_uppercase + string.digits, k=20)) + "!"
            if isinstance(func, ast.Name) and func.id == "Document":
                return {k.arg: self.value(k.value) for k in node.keywords}
        if isinstance(node, ast.JoinedStr):
            raise ValueError("f-strings are not evaluated")
        raise ValueError(f"cannot evaluate {ast.dump(node)[:80]}")


def module_constants(relative_path: str) -> dict[str, Any]:
    """name -> value of every top-level assignment that can be evaluated."""
    evaluator = Evaluator()
    tree = ast.parse((DATA / relative_path).read_text(encoding="utf-8"))
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name):
            try:
                evaluator.names[statement.targets[0].id] = evaluator.value(statement.value)
            except (ValueError, KeyError, TypeError):
                continue
    return evaluator.names
