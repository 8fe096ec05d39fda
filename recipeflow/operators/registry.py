"""The operator registry: recipe name -> operator class.

Each operator lives in the module named exactly as its recipe name
(``recipeflow/operators/<name>.py``) and registers itself with :func:`register`.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil

from recipeflow.operators.base import Operator

_OPERATORS: dict[str, type[Operator]] = {}
_LOADED = False
# Modules of this package that hold machinery, not operators.
_NOT_OPERATORS = {"base", "document", "registry", "chain"}


def register(cls: type[Operator]) -> type[Operator]:
    """Class decorator: make ``cls`` available to recipes under ``cls.name``."""
    existing = _OPERATORS.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"operator name {cls.name!r} is registered twice: {existing} and {cls}")
    _OPERATORS[cls.name] = cls
    return cls


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    package = importlib.import_module("recipeflow.operators")
    for module in pkgutil.iter_modules(package.__path__):
        # Subpackages (dedup/, text/, models/) hold machinery operators share, not operators.
        if not module.ispkg and module.name not in _NOT_OPERATORS and not module.name.startswith("_"):
            importlib.import_module(f"recipeflow.operators.{module.name}")
    _LOADED = True


def operators() -> dict[str, type[Operator]]:
    """Every registered operator, by recipe name, sorted."""
    _load_all()
    return dict(sorted(_OPERATORS.items()))


def suggest(name: str, candidates) -> str | None:
    """The nearest valid name for a misspelt one, if any is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


class UnknownOperator(KeyError):
    def __init__(self, name: str):
        self.name = name
        self.suggestion = suggest(name, operators())
        hint = f"; did you mean {self.suggestion!r}?" if self.suggestion else ""
        super().__init__(f"unknown operator {name!r}{hint} (`recipeflow ops` lists them)")

    def __str__(self) -> str:
        return self.args[0]


def get(name: str) -> type[Operator]:
    """The operator class registered as ``name``; :class:`UnknownOperator` otherwise."""
    ops = operators()
    if name not in ops:
        raise UnknownOperator(name)
    return ops[name]
