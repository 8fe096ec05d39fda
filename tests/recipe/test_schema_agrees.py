"""The editor schema (`recipeflow schema`) and the validator agree: every bundled recipe passes
both, and every invalid recipe below fails both."""

from __future__ import annotations

import copy

import jsonschema
import pytest
import yaml

from recipeflow.recipe.errors import RecipeInvalid
from recipeflow.recipe.schema import recipe_json_schema
from recipeflow.recipe.validate import parse_recipe
from tests.conftest import REPO

VALIDATOR = jsonschema.Draft202012Validator(recipe_json_schema())
BUNDLED = sorted((REPO / "recipes").glob("*.yaml"))

CHAIN = {
    "name": "r",
    "inputs": {"docs": {"path": "docs.jsonl"}},
    "process": [{"text_length_filter": {"min_length": 10}}],
    "output": {"path": "out"},
}


def _changed(change) -> dict:
    recipe = copy.deepcopy(CHAIN)
    change(recipe)
    return recipe


INVALID = {
    "misspelt operator": _changed(lambda r: r["process"].append({"text_lenght_filter": {}})),
    "unknown parameter": _changed(lambda r: r["process"][0]["text_length_filter"].update(min_lenght=3)),
    "wrong parameter type": _changed(lambda r: r["process"][0]["text_length_filter"].update(min_length="x")),
    "two operators in a step": _changed(lambda r: r["process"][0].update(exact_dedup={})),
    "unknown top-level field": _changed(lambda r: r.update(outptu={"path": "x"})),
    "chain and graph at once": _changed(lambda r: r.update(nodes={"a": {"from": "docs"}})),
    "no inputs": _changed(lambda r: r.pop("inputs")),
    "bad name": _changed(lambda r: r.update(name="a b")),
    "workers not an integer": _changed(lambda r: r.update(run={"workers": "two"})),
}


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_bundled_recipes_pass_the_schema_and_the_validator(path):
    data = yaml.safe_load(path.read_text())
    errors = [f"{list(e.path)}: {e.message[:200]}" for e in VALIDATOR.iter_errors(data)]
    assert not errors, errors
    from recipeflow.recipe.loading import load_recipe

    load_recipe(str(path))


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_recipes_fail_the_schema_and_the_validator(case):
    data = INVALID[case]
    assert list(VALIDATOR.iter_errors(data)), f"the schema accepts: {case}"
    with pytest.raises(RecipeInvalid):
        parse_recipe(data, source="<test>")


def test_a_misspelt_operator_is_named_by_the_schema():
    errors = list(VALIDATOR.iter_errors(INVALID["misspelt operator"]))
    best = jsonschema.exceptions.best_match(errors)
    text = " ".join(e.message for e in [best, *(best.context or [])])
    assert "text_lenght_filter" in text and "is a required property" not in best.message
