"""The model files a recipe's operators will load (Data-Juicer's KenLM and sentencepiece
models, Hugging Face tokenizers), checked before any work: ``recipeflow validate`` reports the
missing ones, and a run fetches them (as Data-Juicer does on first use) or refuses to start."""

from __future__ import annotations

from typing import Any

from recipeflow.operators.models import datajuicer_models
from recipeflow.recipe.errors import RecipeInvalid, RecipeIssue
from recipeflow.recipe.models import Recipe


def recipe_steps(recipe: Recipe) -> list[tuple[str, str, dict[str, Any]]]:
    """(where the step is written, operator, parameters) of every step of the recipe."""
    chain = list(recipe.nodes) == ["main"]
    steps = []
    for node_name, node in recipe.nodes.items():
        for index, step in enumerate(node.process):
            where = f"process[{index}].{step.operator}"
            steps.append((where if chain else f"nodes.{node_name}.{where}", step.operator, dict(step.params)))
    return steps


def missing_model_issues(recipe: Recipe) -> list[RecipeIssue]:
    """One issue per model file the recipe needs that is not where it will be looked for."""
    source = recipe.source or "<recipe>"
    issues = []
    seen: set[tuple[str, str]] = set()
    for where, operator, params in recipe_steps(recipe):
        for requirement in datajuicer_models.required_models(operator, params):
            key = (requirement.kind, requirement.file_name)
            if requirement.missing and key not in seen:
                seen.add(key)
                issues.append(RecipeIssue(source, None, f"{where}.{requirement.parameter}", requirement.message()))
    return issues


def check_models(recipe: Recipe) -> None:
    """:class:`RecipeInvalid` naming every missing model file (where to put it, where it comes
    from); nothing is downloaded."""
    issues = missing_model_issues(recipe)
    if issues:
        raise RecipeInvalid(issues, recipe.source)


def fetch_models(recipe: Recipe) -> list[str]:
    """Fetch the missing model files as a run would on first use; messages for the files that
    cannot be had (offline, no network, a bad download)."""
    return datajuicer_models.fetch_missing_models([(op, params) for _, op, params in recipe_steps(recipe)])
