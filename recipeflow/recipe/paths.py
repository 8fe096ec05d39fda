"""Local paths of a recipe made absolute, once per run, before anything reads or writes."""

from __future__ import annotations

import os

from recipeflow.io import storage
from recipeflow.recipe.models import Recipe


def with_absolute_paths(recipe: Recipe, base_dir: str) -> Recipe:
    """A copy of ``recipe`` whose local input and output paths are absolute (from ``base_dir``)."""

    def resolve(path: str) -> str:
        if storage.is_local(path) and not os.path.isabs(os.path.expanduser(path)):
            path = os.path.join(base_dir, path)
        return storage.absolute(path)

    inputs = {n: s.model_copy(update={"path": resolve(s.path)}) for n, s in recipe.inputs.items()}
    outputs = {n: s.model_copy(update={"path": resolve(s.path)}) for n, s in recipe.outputs.items()}
    train = {
        n: t.model_copy(update={"output": t.output.model_copy(update={"path": resolve(t.output.path)})})
        for n, t in recipe.train.items()
    }
    return recipe.model_copy(update={"inputs": inputs, "outputs": outputs, "train": train})
