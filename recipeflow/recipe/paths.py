"""Local paths of a recipe made absolute, once per run, before anything reads or writes.

A relative local path in a recipe is taken from the folder of the recipe file (as
docker-compose and dbt do), so a recipe runs the same from any working directory: its inputs,
outputs, trained models' outputs, and operator parameters marked as paths
(:func:`recipeflow.operators.base.path_field`). A recipe that is not a local file (a URL,
deployment parameters) takes relative paths from the working directory.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel

from recipeflow.io import storage
from recipeflow.operators import registry
from recipeflow.operators.base import PATH_MARKER
from recipeflow.recipe.models import NodeSpec, Recipe


def recipe_folder(source: str | None) -> str:
    """The folder relative paths of the recipe read from ``source`` are taken from."""
    if source and "://" not in source and os.path.isfile(source):
        return os.path.dirname(os.path.abspath(source))
    return os.getcwd()


def with_absolute_paths(recipe: Recipe, base_dir: str | None = None) -> Recipe:
    """A copy of ``recipe`` whose local paths are absolute, from ``base_dir`` (default: the
    recipe file's folder)."""
    base = base_dir or recipe_folder(recipe.source)

    def resolve(path: str) -> str:
        if storage.is_local(path) and not os.path.isabs(os.path.expanduser(path)):
            path = os.path.join(base, path)
        return storage.absolute(path)

    inputs = {n: s.model_copy(update={"path": resolve(s.path)}) for n, s in recipe.inputs.items()}
    outputs = {n: s.model_copy(update={"path": resolve(s.path)}) for n, s in recipe.outputs.items()}
    train = {
        n: t.model_copy(update={"output": t.output.model_copy(update={"path": resolve(t.output.path)})})
        for n, t in recipe.train.items()
    }
    nodes = {n: _node_with_absolute_params(node, base) for n, node in recipe.nodes.items()}
    return recipe.model_copy(update={"inputs": inputs, "outputs": outputs, "train": train, "nodes": nodes})


def _node_with_absolute_params(node: NodeSpec, base: str) -> NodeSpec:
    steps = [
        step.model_copy(update={"params": _absolute_params(registry.get(step.operator).Params, step.params, base)})
        for step in node.process
    ]
    return node.model_copy(update={"process": steps})


def _absolute_params(model: type[BaseModel], params: dict[str, Any], base: str) -> dict[str, Any]:
    """``params`` with every value of a path-marked field (str or list of str) joined to
    ``base`` when it is a relative local path that exists there (a name such as a bundled model
    is left as it is)."""
    out = dict(params)
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        key = name if name in out else (field.alias if field.alias in out else None)
        if not extra.get(PATH_MARKER) or key is None:
            continue
        value = out[key]
        if isinstance(value, str):
            out[key] = _existing_from(base, value)
        elif isinstance(value, list):
            out[key] = [_existing_from(base, v) if isinstance(v, str) else v for v in value]
    return out


def _existing_from(base: str, path: str) -> str:
    if "://" in path or os.path.isabs(os.path.expanduser(path)):
        return path
    candidate = os.path.join(base, path.split("@", 1)[0])  # ROOT@VERSION: the root must exist
    return os.path.join(base, path) if os.path.exists(candidate) else path
