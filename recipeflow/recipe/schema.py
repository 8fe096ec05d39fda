"""The JSON Schema of recipes, generated from the same models the validator uses (operator
parameters included), for editor completion: ``recipeflow schema``."""


import inspect
from typing import Any

from pydantic import (
    BaseModel,
)
from pydantic.json_schema import models_json_schema

from recipeflow.operators import registry
from recipeflow.operators.base import Operator
from recipeflow.recipe.models import CHAIN_KEYS, FROM_DESCRIPTION, GRAPH_KEYS, InputSpec, JSON_SCHEMA_DIALECT, NAME_DESCRIPTION, OutputSpec, RECIPE_NAME_PATTERN, RouteSpec, RunSpec, STREAM_NAME_PATTERN, TrainSpec

# ---------------------------------------------------------------------------------------------
# JSON Schema for editors


def recipe_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of recipe files, with every registered operator's parameters."""
    operators = registry.operators()
    models: list[type[BaseModel]] = [InputSpec, OutputSpec, RunSpec]
    models += [operator.Params for operator in operators.values()]
    refs, top = models_json_schema(
        [(model, "validation") for model in models], ref_template="#/$defs/{model}"
    )
    definitions = dict(top.get("$defs", {}))

    def ref(model: type[BaseModel]) -> dict[str, Any]:
        return refs[(model, "validation")]

    definitions["Step"] = _step_schema(
        {name: ref(operator.Params) for name, operator in operators.items()}, operators
    )
    definitions["Node"] = _node_schema()
    names = {"propertyNames": {"pattern": STREAM_NAME_PATTERN}}
    steps = {"type": "array", "items": {"$ref": "#/$defs/Step"}}
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": "recipeflow recipe",
        "description": "A data recipe: inputs, operators (a chain or a graph of nodes), outputs.",
        "type": "object",
        "properties": {
            "name": {
                "type": "string",
                "pattern": RECIPE_NAME_PATTERN,
                "description": NAME_DESCRIPTION,
            },
            "description": {"type": "string"},
            "inputs": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": ref(InputSpec),
                **names,
            },
            "process": {**steps, "description": "Chain form: operators applied to every input"},
            "output": {**ref(OutputSpec), "description": "Chain form: where the result is written"},
            "nodes": {"type": "object", "additionalProperties": {"$ref": "#/$defs/Node"}, **names},
            "outputs": {
                "type": "object",
                "additionalProperties": ref(OutputSpec),
                "description": "Graph form: node name -> where that node's documents are written",
            },
            "run": ref(RunSpec),
            "train": {"type": "object", "additionalProperties": TrainSpec.model_json_schema()},
            "language_settings": {"type": "string"},
        },
        "required": ["name", "inputs"],
        "additionalProperties": False,
        "oneOf": [_form_schema(CHAIN_KEYS, GRAPH_KEYS), _form_schema(GRAPH_KEYS, CHAIN_KEYS)],
        "$defs": definitions,
    }


def _step_schema(
    params_refs: dict[str, dict[str, Any]], operators: dict[str, type[Operator]]
) -> dict[str, Any]:
    """A step: exactly one registered operator name mapped to its parameters (or null)."""
    choices = [
        {
            "type": "object",
            "properties": {
                name: {
                    "description": inspect.getdoc(operators[name]) or name,
                    "anyOf": [params_ref, {"type": "null"}],
                }
            },
            "required": [name],
            "additionalProperties": False,
        }
        for name, params_ref in params_refs.items()
    ]
    if not choices:  # no operator registered: any single-key mapping
        return {"type": "object", "minProperties": 1, "maxProperties": 1}
    return {"description": "`operator_name: {parameters}`", "anyOf": choices}


def _node_schema() -> dict[str, Any]:
    name = {"type": "string", "description": "An input, a node, or `<node>.rejected`"}
    return {
        "type": "object",
        "properties": {
            "from": {
                "description": FROM_DESCRIPTION,
                "anyOf": [name, {"type": "array", "items": name, "minItems": 1}],
            },
            "route": RouteSpec.model_json_schema(),
            "language": {"type": "string", "description": "Language code of per-language settings"},
            "process": {"type": "array", "items": {"$ref": "#/$defs/Step"}},
        },
        "required": ["from"],
        "additionalProperties": False,
    }


def _form_schema(required: tuple[str, ...], excluded: tuple[str, ...]) -> dict[str, Any]:
    return {
        "required": list(required),
        "not": {"anyOf": [{"required": [key]} for key in excluded]},
    }
