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
from recipeflow.recipe import datajuicer
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
    definitions["Recipe"] = _recipe_schema(ref)
    definitions["DataJuicerStep"] = _datajuicer_step_schema(operators, definitions)
    definitions["DataJuicerRecipe"] = _datajuicer_recipe_schema()
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": "recipeflow recipe",
        "description": "A data recipe: inputs, operators (a chain or a graph of nodes), outputs; "
        "or a Data-Juicer recipe (dataset_path, export_path, process), run as it is.",
        # A Data-Juicer recipe is recognised as the validator recognises it (one of its marker
        # keys and no `inputs`), so each form's errors are reported alone.
        "if": {
            "type": "object",
            "anyOf": [{"required": [key]} for key in datajuicer.schema_facts()["marker_keys"]],
            "not": {"required": ["inputs"]},
        },
        "then": {"$ref": "#/$defs/DataJuicerRecipe"},
        "else": {"$ref": "#/$defs/Recipe"},
        "$defs": definitions,
    }


def _recipe_schema(ref: Any) -> dict[str, Any]:
    """recipeflow's own form: chain (process, output) or graph (nodes, outputs)."""
    names = {"propertyNames": {"pattern": STREAM_NAME_PATTERN}}
    steps = {"type": "array", "items": {"$ref": "#/$defs/Step"}}
    return {
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
    }


def _datajuicer_recipe_schema() -> dict[str, Any]:
    """A Data-Juicer recipe: its top-level keys, ``process`` with Data-Juicer operator names."""
    facts = datajuicer.schema_facts()
    properties: dict[str, Any] = {key: {} for key in facts["known_keys"]}
    properties["process"] = {"type": "array", "items": {"$ref": "#/$defs/DataJuicerStep"}}
    return {
        "type": "object",
        "description": "A Data-Juicer recipe, converted to a recipeflow chain",
        "properties": properties,
        "anyOf": [{"required": [key]} for key in facts["marker_keys"]],
        "not": {"required": ["inputs"]},
        "additionalProperties": False,
    }


def _datajuicer_step_schema(operators: dict[str, type[Operator]], definitions: dict[str, Any]) -> dict[str, Any]:
    """A Data-Juicer step: a supported operator under its Data-Juicer name, its parameters as
    Data-Juicer spells them, and the run arguments every Data-Juicer operator takes."""
    facts = datajuicer.schema_facts()
    run_arguments = {name: {} for name in facts["run_arguments"]}
    properties = {}
    for name in datajuicer.supported_operators():
        params = definitions.get(operators[name].Params.__name__, {})
        renames = {ours: theirs for theirs, ours in facts["renamed_parameters"].get(name, {}).items()}
        own = {renames.get(key, key): value for key, value in params.get("properties", {}).items()}
        properties[name] = {
            "description": inspect.getdoc(operators[name]) or name,
            "anyOf": [
                {"type": "object", "properties": {**run_arguments, **own}, "additionalProperties": False},
                {"type": "null"},
            ],
        }
    return {
        "description": "`operator_name: {parameters}` with a Data-Juicer operator name",
        "type": "object",
        "properties": properties,
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
    }


def _step_schema(
    params_refs: dict[str, dict[str, Any]], operators: dict[str, type[Operator]]
) -> dict[str, Any]:
    """A step: exactly one registered operator name mapped to its parameters (or null). One
    object listing every operator, so a misspelt name is reported as an unknown property."""
    return {
        "description": "`operator_name: {parameters}`",
        "type": "object",
        "properties": {
            name: {
                "description": inspect.getdoc(operators[name]) or name,
                "anyOf": [params_ref, {"type": "null"}],
            }
            for name, params_ref in params_refs.items()
        },
        "propertyNames": {"enum": sorted(params_refs)},
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
    }


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
