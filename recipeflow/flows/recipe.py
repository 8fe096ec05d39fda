"""The recipe: schema, loader and validation with errors people can act on.

A recipe is YAML in one of two forms:

* **chain**: ``process`` (a list of ``{operator: {params}}`` steps) and ``output``; it becomes one
  node named ``main`` reading from every input, in mapping order;
* **graph**: ``nodes`` (each ``{from: ..., process: [...]}``) and ``outputs`` (node name ->
  output spec); ``from`` names an input, a node, ``<node>.rejected``, or a list of them (union).

Validation reports every problem at once. Each :class:`RecipeIssue` names the file, the line,
the dotted field path, what was wrong, what was expected, and the nearest valid name when the
problem looks like a typo. Validation happens in layers that each see the raw YAML data, so a
structural error in one place does not hide an operator or graph error in another:

1. structure: the YAML-shaped pydantic models below (unknown fields, types, required fields);
2. form: chain or graph, not both, each complete;
3. steps: operator names against the registry, parameters against each operator's ``Params``;
4. graph: references in ``from``, cycles, outputs naming nodes.

Only when all layers pass is the normalised, graph-form :class:`Recipe` built.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import re
import types
from dataclasses import dataclass, field
from collections.abc import Hashable, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic.json_schema import models_json_schema

from recipeflow.flows import language_settings
from recipeflow.flows.yaml_source import PathKey, YamlSyntaxError, load_yaml
from recipeflow.operators import registry
from recipeflow.operators.base import Operator

# Executors are plain Literal values: adding "ray" or "dask" later is a one-word change here
# (and the runner's job), not a schema redesign.
Executor = Literal["threads", "processes", "ray", "dask"]
InputFormat = Literal["jsonl", "parquet", "warc", "text"]
OutputFormat = Literal["parquet", "jsonl.gz"]

RECIPE_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
# Input and node names may not contain dots: `from: clean.rejected` must be unambiguous.
STREAM_NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
CHAIN_NODE = "main"
REJECTED_SUFFIX = ".rejected"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# What a regular-expression constraint means, in words.
_PATTERN_WORDS = {
    RECIPE_NAME_PATTERN: "letters, digits, '_', '.' and '-' only",
    STREAM_NAME_PATTERN: "a name of letters, digits, '_' and '-' only (no dots)",
}
# Top-level keys of other tools' recipes, and where the same thing goes here.
_FOREIGN_FIELDS = {
    "dataset_path": "inputs",
    "export_path": "output",
    "project_name": "name",
    "np": "run",
}
_NAME_DESCRIPTION = "The dataset name: letters, digits, '_', '.' and '-'"
_FROM_DESCRIPTION = "An input, a node, `<node>.rejected`, or a list of them (their union)"
_CHAIN_KEYS = ("process", "output")
_GRAPH_KEYS = ("nodes", "outputs")
_STEP_EXAMPLE = (
    "a mapping with one key, the operator name: `- text_length_filter: {min_length: 200}`"
)


# ---------------------------------------------------------------------------------------------
# Issues


@dataclass
class RecipeIssue:
    """One problem in a recipe, located as precisely as the YAML allows."""

    file: str
    line: int | None
    path: str  # dotted, with list indices in brackets: "process[2].text_length_filter.min_length"
    message: str
    expected: str | None = None
    suggestion: str | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        if self.expected:
            text += f"; expected {self.expected}"
        if self.suggestion:
            text += f'; did you mean "{self.suggestion}"?'
        return text


class RecipeInvalid(ValueError):
    """A recipe that cannot be run; ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[RecipeIssue], source: str | None = None):
        self.issues = list(issues)
        self.source = source or (self.issues[0].file if self.issues else "<recipe>")
        # args mirror __init__ so the exception survives pickling (process pools, Prefect).
        super().__init__(self.issues, self.source)

    def __str__(self) -> str:
        count = len(self.issues)
        header = f"recipe {self.source} is invalid ({count} error{'' if count == 1 else 's'}):"
        return "\n".join([header] + [f"  {issue}" for issue in self.issues])


def format_path(loc: PathKey) -> str:
    """``("process", 2, "x")`` -> ``"process[2].x"``."""
    text = ""
    for segment in loc:
        if isinstance(segment, int) and not isinstance(segment, bool):
            text += f"[{segment}]"
        else:
            text += f".{segment}" if text else str(segment)
    return text


# ---------------------------------------------------------------------------------------------
# The normalised recipe


class StrictModel(BaseModel):
    """Every recipe model: unknown fields are errors; aliased fields accept both names."""

    model_config = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True)


PositiveInt = Annotated[int, Field(strict=True, ge=1)]  # strict: `workers: true` is not 1


class InputSpec(StrictModel):
    """Where documents come from."""

    path: str = Field(
        description="File, directory or glob to read (local, or an fsspec URL such as s3://...)"
    )
    format: InputFormat | None = Field(
        None, description="File format; guessed from the file extension when omitted"
    )
    text_field: str = Field("text", description="Field that holds the document text")
    id_field: str = Field("id", description="Field that holds the document id")


class OutputSpec(StrictModel):
    """Where a dataset is written."""

    path: str = Field(description="Dataset root (local or any fsspec URL such as s3://)")
    format: OutputFormat = Field("parquet", description="Format of the data files")
    keep_rejected: bool = Field(
        False,
        strict=True,
        description="Also write rejected documents, with who rejected them and why",
    )
    keep_last: PositiveInt | None = Field(
        None, description="Keep only this many newest versions; older ones are deleted after a commit"
    )


class PoolsSpec(StrictModel):
    """Prefect work pools by resource (see deploy/ for their definitions)."""

    cpu: str | None = Field(
        None, description="Work pool of the recipe's own flow runs (the default pool of `recipeflow deploy`)"
    )
    gpu: str | None = Field(
        None,
        description="Work pool for GPU stages: each runs as its own flow run there; omitted = GPU "
        "stages run in the recipe's flow run like any other",
    )


class RunSpec(StrictModel):
    """How the flow runs."""

    executor: Executor = Field(
        "threads",
        description="Task runner: threads, processes, ray (prefect-ray) or dask (prefect-dask)",
    )
    aws_credentials_block: str | None = Field(
        None,
        description="Name of a Prefect AwsCredentials block for s3:// paths (else the standard "
        "AWS environment variables or profile); the recipe never holds credentials",
    )
    address: str | None = Field(
        None,
        description="ray/dask: address of an existing cluster (e.g. ray://head:10001, "
        "tcp://scheduler:8786); omitted = a local cluster of `workers` processes",
    )
    workers: PositiveInt = Field(2, description="Parallel workers")
    shard_size: PositiveInt = Field(
        10000, description="Documents per shard (the unit of parallel work)"
    )
    cache: bool = Field(
        True,
        strict=True,
        description="Reuse finished stage results (content-addressed); false recomputes everything",
    )
    pools: PoolsSpec = Field(default_factory=PoolsSpec, description="Work pools by resource: {cpu: NAME, gpu: NAME}")
    gpu_concurrency: PositiveInt = Field(
        1,
        description="GPU tasks that may run at once, across all runs: a Prefect tag concurrency "
        "limit on the tag `recipeflow-gpu` (set by `recipeflow deploy`, created by a run if missing)",
    )


class Step(StrictModel):
    """One operator with its validated parameters (defaults filled in, JSON-able)."""

    operator: str
    params: dict[str, Any] = Field(default_factory=dict)

    def build(self) -> Operator:
        """A ready operator instance, from the registry."""
        operator_class = registry.get(self.operator)
        return operator_class(operator_class.Params.model_validate(self.params))


def _one_or_many(value: Any) -> Any:
    """`from: a` means `from: [a]`."""
    return [value] if isinstance(value, str) else value


Sources = Annotated[list[str], BeforeValidator(_one_or_many)]
StreamName = Annotated[str, StringConstraints(pattern=STREAM_NAME_PATTERN)]


class RouteSpec(StrictModel):
    """Take only the documents whose ``field`` has one of ``values`` (or none of ``exclude``)."""

    field: str = Field(description="Document field to route on, e.g. `lang` or `script`")
    values: list[Any] | None = Field(None, description="Keep documents with one of these values")
    exclude: list[Any] | None = Field(
        None, description="Keep documents with none of these values (e.g. the other languages)"
    )

    @model_validator(mode="after")
    def _one_rule(self) -> "RouteSpec":
        if (self.values is None) == (self.exclude is None):
            raise ValueError("give exactly one of `values` or `exclude`")
        return self


class NodeSpec(StrictModel):
    """A named stage of the graph: the union of its sources, through its steps."""

    sources: Sources = Field(alias="from", min_length=1)
    route: RouteSpec | None = None
    language: str | None = None
    process: list[Step] = Field(default_factory=list)


class TrainSpec(StrictModel):
    """Train a fastText classifier from positive and negative documents (DCLM style)."""

    positive: Sources = Field(description="Sources of positive examples (inputs, nodes, `<node>.rejected`)")
    negative: Sources = Field(description="Sources of negative examples")
    output: OutputSpec = Field(description="Model root: each training run commits a version")
    holdout: float = Field(0.1, gt=0, lt=1, description="Share of examples held out to measure precision/recall")
    seed: int = Field(0, description="Seed of the held-out split")
    label_positive: str = "hq"
    label_negative: str = "lq"
    epoch: PositiveInt = 5
    lr: float = Field(0.1, gt=0)
    word_ngrams: PositiveInt = 2
    dim: PositiveInt = 64
    min_count: PositiveInt = 1
    bucket: PositiveInt = Field(
        2_000_000, description="Hash buckets for n-grams; the model is about bucket x dim x 4 bytes"
    )


class Recipe(StrictModel):
    """A validated recipe in graph form; made by :func:`load_recipe` or :func:`parse_recipe`."""

    name: str = Field(pattern=RECIPE_NAME_PATTERN)
    description: str = ""
    inputs: dict[str, InputSpec]
    nodes: dict[str, NodeSpec]
    outputs: dict[str, OutputSpec]
    run: RunSpec = Field(default_factory=RunSpec)
    train: dict[str, TrainSpec] = Field(default_factory=dict)
    language_settings: str | None = None
    source: str | None = None  # the file it came from; not part of what the recipe means

    def resolved(self) -> dict[str, Any]:
        """The whole recipe in graph form with every default filled in, as plain JSON data.

        It is itself a valid recipe: ``parse_recipe(r.resolved())`` gives back ``r``.
        """
        return {
            "name": self.name,
            "description": self.description,
            "inputs": {name: spec.model_dump(mode="json") for name, spec in self.inputs.items()},
            "nodes": {name: _resolved_node(node) for name, node in self.nodes.items()},
            "outputs": {name: spec.model_dump(mode="json") for name, spec in self.outputs.items()},
            "run": self.run.model_dump(mode="json"),
            **({"train": {n: t.model_dump(mode="json") for n, t in self.train.items()}} if self.train else {}),
            **({"language_settings": self.language_settings} if self.language_settings else {}),
        }

    def sha256(self) -> str:
        """Identity of what the recipe does: insensitive to key order, comments and layout."""
        canonical = json.dumps(self.resolved(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def ancestors(self, node: str) -> list[str]:
        """``node`` and every node it reads from, in dependency order."""
        wanted: set[str] = set()
        stack = [node]
        while stack:
            name = stack.pop()
            if name in wanted or name not in self.nodes:
                continue
            wanted.add(name)
            stack.extend(src.removesuffix(".rejected") for src in self.nodes[name].sources)
        return [n for n in self.topological_nodes() if n in wanted]

    def outputs_reaching(self, node: str) -> list[str]:
        """The outputs whose documents pass through ``node``."""
        return [name for name in self.outputs if node in self.ancestors(name)]

    def topological_nodes(self) -> list[str]:
        """Nodes in dependency order; among ready nodes, the one declared first goes first."""
        waiting = {
            name: set(_node_dependencies(node, self.nodes)) for name, node in self.nodes.items()
        }
        ordered: list[str] = []
        while waiting:
            ready = next((name for name, deps in waiting.items() if not deps), None)
            if ready is None:
                raise ValueError(f"recipe {self.name!r} has a cycle among nodes {sorted(waiting)}")
            ordered.append(ready)
            del waiting[ready]
            for deps in waiting.values():
                deps.discard(ready)
        return ordered


def _resolved_node(node: NodeSpec) -> dict[str, Any]:
    """A node as recipe YAML would write it."""
    resolved: dict[str, Any] = {"from": list(node.sources)}
    if node.route is not None:
        resolved["route"] = node.route.model_dump(mode="json", exclude_none=True)
    if node.language is not None:
        resolved["language"] = node.language
    resolved["process"] = [{step.operator: copy.deepcopy(step.params)} for step in node.process]
    return resolved


def _node_dependencies(node: NodeSpec, nodes: dict[str, Any]) -> list[str]:
    """The nodes (not inputs) that ``node`` reads from, kept or rejected stream alike."""
    return [base for base in (_strip_rejected(s) for s in node.sources) if base in nodes]


def _strip_rejected(source: str) -> str:
    return source[: -len(REJECTED_SUFFIX)] if source.endswith(REJECTED_SUFFIX) else source


# ---------------------------------------------------------------------------------------------
# The YAML-shaped models: what a user writes, before normalisation. Steps stay `Any` here; they
# are checked against the registry separately, with messages that know about operators.


class _NodeDocument(StrictModel):
    sources: Sources = Field(alias="from", description=_FROM_DESCRIPTION)
    route: RouteSpec | None = Field(None, description="Take only documents with these field values")
    language: str | None = Field(
        None, description="Language code whose settings file gives this node's operators defaults"
    )
    process: list[Any] = Field(default_factory=list, description="Steps: `- operator: {params}`")


class _RecipeDocument(StrictModel):
    name: str = Field(pattern=RECIPE_NAME_PATTERN, description=_NAME_DESCRIPTION)
    description: str = ""
    inputs: dict[StreamName, InputSpec] = Field(
        min_length=1, description="At least one input: a name mapped to {path: ...}"
    )
    process: list[Any] | None = None
    output: OutputSpec | None = None
    nodes: dict[StreamName, _NodeDocument] | None = None
    outputs: dict[str, OutputSpec] | None = None
    run: RunSpec = Field(default_factory=RunSpec)
    train: dict[StreamName, TrainSpec] = Field(default_factory=dict)
    language_settings: str | None = Field(
        None, description="Folder of per-language settings files (<code>.yaml); default: bundled"
    )


# ---------------------------------------------------------------------------------------------
# Collecting issues


@dataclass
class _Issues:
    """Issues found so far, and what is needed to locate them."""

    source: str
    lines: dict[PathKey, int] = field(default_factory=dict)
    overridden: dict[PathKey, str] = field(default_factory=dict)  # path -> the --set that wrote it
    found: list[RecipeIssue] = field(default_factory=list)

    def add(
        self,
        loc: PathKey,
        message: str,
        *,
        expected: str | None = None,
        suggestion: str | None = None,
    ) -> None:
        line = self.line_of(loc)
        override = self.override_of(loc)
        if override is not None:  # the file's line would point at a value that is not used
            line = None
            message += f" (value from --set {override})"
        path = format_path(loc)
        self.found.append(RecipeIssue(self.source, line, path, message, expected, suggestion))

    def line_of(self, loc: PathKey) -> int | None:
        """The line of ``loc`` or, for a field that is not written, of its enclosing mapping."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return None

    def override_of(self, loc: PathKey) -> str | None:
        for path, override in self.overridden.items():
            if loc[: len(path)] == path:
                return override
        return None

    def sorted(self) -> list[RecipeIssue]:
        """In file order: issues without a line (from --set) last."""
        return sorted(self.found, key=lambda issue: (issue.line is None, issue.line or 0))


def _describe(value: Any) -> str:
    """A value as a person would name it in an error message."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, (list, tuple)):
        return "a list" if value else "an empty list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _expected_for(error: dict[str, Any]) -> str | None:
    """What pydantic's error type says the value should have been, in words."""
    kind, ctx = error["type"], error.get("ctx") or {}
    simple = {
        "string_type": "a string",
        "int_type": "an integer",
        "int_parsing": "an integer",
        "int_from_float": "a whole number",
        "float_type": "a number",
        "float_parsing": "a number",
        "bool_type": "true or false",
        "bool_parsing": "true or false",
        "dict_type": "a mapping",
        "model_type": "a mapping",
        "model_attributes_type": "a mapping",
        "list_type": "a list",
    }
    if kind in simple:
        return simple[kind]
    if kind in ("literal_error", "enum"):
        return f"one of {ctx.get('expected')}"
    bounds = {
        "greater_than_equal": ">=",
        "greater_than": ">",
        "less_than_equal": "<=",
        "less_than": "<",
    }
    if kind in bounds:
        limit = next(iter(ctx.values()), None)
        return f"a value {bounds[kind]} {limit}"
    if kind == "string_pattern_mismatch":
        pattern = ctx.get("pattern", "")
        return _PATTERN_WORDS.get(pattern, f"text matching {pattern}")
    if kind == "too_short":
        return f"at least {_plural(ctx.get('min_length', 1), 'item')}"
    if kind == "too_long":
        return f"at most {_plural(ctx.get('max_length', 0), 'item')}"
    if kind == "string_too_short":
        return f"at least {_plural(ctx.get('min_length', 1), 'character')}"
    return None


def _add_validation_errors(
    issues: _Issues, error: ValidationError, model: type[BaseModel], prefix: PathKey = ()
) -> None:
    """One issue per pydantic error, located under ``prefix``; ``model`` is what was validated."""
    for detail in error.errors():
        loc = tuple(detail["loc"])
        if loc and loc[-1] == "[key]":  # the mapping key itself is wrong (e.g. a bad input name)
            loc = loc[:-1]
            expected = _expected_for(detail)
            issues.add(prefix + loc, f"invalid name {_describe(loc[-1])}", expected=expected)
        elif detail["type"] == "extra_forbidden":
            _add_unknown_field(issues, model, prefix, loc)
        elif detail["type"] == "missing":
            expected = _described_field(model, loc)
            issues.add(prefix + loc, "missing required field", expected=expected)
        else:
            expected = _expected_for(detail)
            if detail["type"] == "too_short":  # "at least one input" says more than "1 item"
                expected = _described_field(model, loc) or expected
            if expected is not None:
                message = f"got {_describe(detail.get('input'))}"
            else:  # a validator's own message (e.g. "min_length must not exceed max_length")
                message = re.sub(r"^(Value error|Assertion failed), ", "", detail["msg"])
            issues.add(prefix + loc, message, expected=expected)


def _described_field(model: type[BaseModel], loc: PathKey) -> str | None:
    """The description of the field at ``loc``, phrased to follow "expected"."""
    info = _field_at(model, loc)
    if info is None or not info.description:
        return None
    return info.description[0].lower() + info.description[1:]


def _add_unknown_field(
    issues: _Issues, model: type[BaseModel], prefix: PathKey, loc: PathKey
) -> None:
    """An unknown key: suggest the nearest field, or list the valid ones."""
    name = str(loc[-1])
    valid = _field_names(_annotation_at(model, loc[:-1]))
    if prefix == () and len(loc) == 1 and name in _FOREIGN_FIELDS:
        message = "unknown field (a Data-Juicer recipe? recipeflow names this differently)"
        issues.add(loc, message, suggestion=_FOREIGN_FIELDS[name])
        return
    suggestion = registry.suggest(name, valid)
    expected = None if suggestion or not valid else "one of " + ", ".join(valid)
    issues.add(prefix + loc, "unknown field", expected=expected, suggestion=suggestion)


# --- walking pydantic models along an error's location, to find the valid field names there ---


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return inspect.isclass(annotation) and issubclass(annotation, BaseModel)


def _model_field(model: type[BaseModel], key: Hashable) -> FieldInfo | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info
    return None


def _annotation_at(model: type[BaseModel], loc: PathKey) -> Any:
    """The type expected at ``loc`` inside ``model`` (``None`` when it cannot be told)."""
    current: Any = model
    for segment in loc:
        current = _strip_optional(current)
        if _is_model(current):
            info = _model_field(current, segment)
            if info is None:
                return None
            current = info.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        elif get_origin(current) is list:
            current = get_args(current)[0]
        else:
            return None
    return _strip_optional(current)


def _field_at(model: type[BaseModel], loc: PathKey) -> FieldInfo | None:
    parent = _annotation_at(model, loc[:-1])
    return _model_field(parent, loc[-1]) if loc and _is_model(parent) else None


def _field_names(annotation: Any) -> list[str]:
    if not _is_model(annotation):
        return []
    return [info.alias or name for name, info in annotation.model_fields.items()]


# ---------------------------------------------------------------------------------------------
# Validation layers


def _check_structure(data: dict[str, Any], issues: _Issues) -> _RecipeDocument | None:
    """Layer 1: field names, types and required fields, everywhere but inside steps."""
    try:
        return _RecipeDocument.model_validate(data)
    except ValidationError as error:
        _add_validation_errors(issues, error, _RecipeDocument)
        return None


def _check_form(data: dict[str, Any], issues: _Issues) -> None:
    """Layer 2: a chain (process + output) or a graph (nodes + outputs), complete, not both."""
    chain = [key for key in _CHAIN_KEYS if key in data]
    graph = [key for key in _GRAPH_KEYS if key in data]
    either = "`process` + `output` (one chain of operators) or `nodes` + `outputs` (a graph)"
    if chain and graph:
        issues.add(
            (graph[0],),
            f"chain form ({', '.join(chain)}) and graph form ({', '.join(graph)}) cannot be mixed",
            expected=either,
        )
        return
    if not chain and not graph:
        if not _has_misspelt_form_key(data):  # the "unknown field" issue already says it all
            issues.add((), "no `process` or `nodes`: the recipe does nothing", expected=either)
        return
    present = (chain or graph)[0]
    for key in _CHAIN_KEYS if chain else _GRAPH_KEYS:
        if key not in data:
            issues.add((key,), f"missing required field: a recipe with `{present}` needs `{key}`")
        elif data[key] is None:
            expected = "a list of steps" if key == "process" else "a mapping"
            issues.add((key,), "is empty", expected=expected)


def _has_misspelt_form_key(data: dict[str, Any]) -> bool:
    known = set(_field_names(_RecipeDocument))
    unknown = [str(key) for key in data if key not in known]
    return any(registry.suggest(key, _CHAIN_KEYS + _GRAPH_KEYS) for key in unknown)


def _check_all_steps(data: dict[str, Any], issues: _Issues) -> dict[str, list[Step]]:
    """Layer 3: every step of every node; returns the valid steps by node name."""
    steps: dict[str, list[Step]] = {}
    if isinstance(data.get("process"), list):
        inputs = data.get("inputs")
        sources = [str(n) for n in inputs] if isinstance(inputs, dict) else []
        steps[CHAIN_NODE] = _check_steps(data["process"], ("process",), issues, sources=sources)
    nodes = data.get("nodes")
    if isinstance(nodes, dict):
        for name, node in nodes.items():
            if isinstance(node, dict) and isinstance(node.get("process"), list):
                defaults = _language_defaults(data, name, node, issues)
                sources = _one_or_many(node.get("from"))
                steps[name] = _check_steps(
                    node["process"], ("nodes", name, "process"), issues, defaults,
                    sources=sources if isinstance(sources, list) else [],
                )
            else:
                steps[name] = []
    return steps


def _language_defaults(
    data: dict[str, Any], name: str, node: dict[str, Any], issues: _Issues
) -> dict[str, dict[str, Any]]:
    """Operator parameters from the settings file of the node's `language` (FineWeb2 style)."""
    language = node.get("language")
    if not isinstance(language, str):
        return {}
    folder = data.get("language_settings")
    try:
        return language_settings.load(language, folder if isinstance(folder, str) else None)
    except language_settings.UnknownLanguage as error:
        issues.add(("nodes", name, "language"), str(error), suggestion=error.suggestion)
    except ValueError as error:
        issues.add(("nodes", name, "language"), str(error))
    return {}


def _check_steps(
    raw_steps: list[Any],
    loc: PathKey,
    issues: _Issues,
    defaults: dict[str, dict[str, Any]] | None = None,
    sources: Sequence[str] = (),
) -> list[Step]:
    checked = (
        _check_step(raw, loc + (index,), issues, defaults or {}, sources)
        for index, raw in enumerate(raw_steps)
    )
    return [step for step in checked if step is not None]


def _check_step(
    raw: Any,
    loc: PathKey,
    issues: _Issues,
    defaults: dict[str, dict[str, Any]] | None = None,
    sources: Sequence[str] = (),
) -> Step | None:
    """One ``{operator: params}`` step against the registry and the operator's ``Params``."""
    if not isinstance(raw, dict) or len(raw) != 1:
        message, expected = _bad_step_message(raw)
        issues.add(loc, message, expected=expected)
        return None
    [(name, params)] = raw.items()
    loc = loc + (name,)
    operators = registry.operators()
    operator_class = operators.get(name) if isinstance(name, str) else None
    if operator_class is None:
        suggestion = registry.suggest(str(name), operators)
        message = "unknown operator"
        if suggestion is None:
            message += " (`recipeflow ops` lists them)"
        issues.add(loc, message, suggestion=suggestion)
        return None
    if params is None:  # `- html_extract:` means default parameters
        params = {}
    if not isinstance(params, dict):
        expected = "a mapping of parameters, `{}` or nothing"
        issues.add(loc, f"got {_describe(params)}", expected=expected)
        return None
    # The node language's settings are defaults; what the step says wins.
    params = {**(defaults or {}).get(name, {}), **params}
    try:
        validated = operator_class.Params.model_validate(params)
    except ValidationError as error:
        _add_validation_errors(issues, error, operator_class.Params, prefix=loc)
        return None
    problems = operator_class.check_sources(validated, [str(s) for s in sources])
    for problem in problems:
        issues.add(loc, problem)
    if problems:
        return None
    return Step(operator=name, params=validated.model_dump(mode="json", by_alias=True))


def _bad_step_message(raw: Any) -> tuple[str, str | None]:
    """(what is wrong, what was expected) for a step that is not a single-key mapping."""
    if isinstance(raw, str):
        return f"a step is a mapping, not a bare name: write `- {raw}: {{}}`", None
    if not isinstance(raw, dict):
        return f"got {_describe(raw)}", _STEP_EXAMPLE
    if not raw:
        return "empty step", _STEP_EXAMPLE
    keys = ", ".join(str(key) for key in raw)
    message = f"a step has one key, the operator name; this one has {len(raw)}: {keys}"
    misplaced = _params_written_beside_operator(raw)
    if misplaced:  # the usual cause: parameters indented like the operator name
        return f"{message}; indent {misplaced[1]} under `{misplaced[0]}:`", None
    return message, _STEP_EXAMPLE


def _params_written_beside_operator(raw: dict[Any, Any]) -> tuple[str, str] | None:
    """(operator, params) when a step reads like parameters that lost their indentation."""
    operators = registry.operators()
    for name, params in raw.items():
        if name in operators and params is None:
            others = [str(key) for key in raw if key != name]
            if set(others) <= set(_field_names(operators[name].Params)):
                return name, ", ".join(others)
    return None


def _check_graph(data: dict[str, Any], issues: _Issues) -> None:
    """Layer 4: references in `from`, cycles, and outputs that name nodes."""
    nodes = data.get("nodes")
    inputs = data.get("inputs")
    if not isinstance(nodes, dict):
        if isinstance(inputs, dict):  # chain form: its one node is `main`
            _check_train_sources(data.get("train"), [str(n) for n in inputs], [CHAIN_NODE], issues)
        return
    input_names = [str(name) for name in inputs] if isinstance(inputs, dict) else None
    node_names = [str(name) for name in nodes]
    for name in node_names:
        if input_names and name in input_names:
            issues.add(
                ("nodes", name),
                f"{name!r} is both an input and a node, so `from: {name}` would be ambiguous",
                expected="node names that differ from input names",
            )
    dependencies = {
        name: _check_sources(name, node, input_names, node_names, issues)
        for name, node in nodes.items()
        if isinstance(node, dict)
    }
    for cycle in _find_cycles(dependencies, node_names):
        flow = " -> ".join(cycle + [cycle[0]])
        issues.add(
            ("nodes", cycle[0], "from"),
            f"cycle: {flow}; a node cannot read, directly or through others, from itself",
        )
    _check_outputs(data.get("outputs"), input_names or [], node_names, issues)
    _check_train_sources(data.get("train"), input_names, node_names, issues)


def _check_train_sources(
    train: Any, input_names: list[str] | None, node_names: list[str], issues: _Issues
) -> None:
    """`positive` and `negative` of each classifier name inputs, nodes or rejected streams."""
    if not isinstance(train, dict):
        return
    for name, spec in train.items():
        if not isinstance(spec, dict):
            continue
        for side in ("positive", "negative"):
            if side in spec:
                _check_sources(
                    name, {"from": spec[side]}, input_names, node_names, issues,
                    loc=("train", name, side),
                )


def _check_sources(
    name: str,
    node: dict[str, Any],
    input_names: list[str] | None,
    node_names: list[str],
    issues: _Issues,
    loc: PathKey | None = None,
) -> list[str]:
    """Check one node's `from` (or another list of sources at ``loc``); returns the nodes it
    depends on."""
    raw = node.get("from")
    sources = _one_or_many(raw)
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        return []  # missing or mistyped: the structure layer reports it
    loc = loc or ("nodes", name, "from")
    if not sources:
        expected = _FROM_DESCRIPTION[0].lower() + _FROM_DESCRIPTION[1:]
        issues.add(loc, "empty `from`: the node reads nothing", expected=expected)
        return []
    dependencies = []
    seen: set[str] = set()
    for index, source in enumerate(sources):
        source_loc = loc + (index,) if isinstance(raw, list) else loc
        if source in seen:
            issues.add(source_loc, f"{source!r} is listed twice; its documents would be read twice")
        seen.add(source)
        base = _strip_rejected(source)
        if input_names is not None and source in input_names:
            continue  # an input, even if a node shares its name (reported as ambiguous)
        if base in node_names:
            dependencies.append(base)
        elif input_names is not None:
            _add_unknown_source(source, source_loc, input_names, node_names, issues)
    return dependencies


def _add_unknown_source(
    source: str, loc: PathKey, input_names: list[str], node_names: list[str], issues: _Issues
) -> None:
    base = _strip_rejected(source)
    if source != base and base in input_names:
        issues.add(loc, f"{base!r} is an input: only nodes have a rejected stream")
        return
    candidates = input_names + node_names + [n + REJECTED_SUFFIX for n in node_names]
    expected = "an input ({}), a node ({}) or `<node>.rejected`".format(
        ", ".join(input_names) or "none", ", ".join(node_names)
    )
    issues.add(
        loc,
        f"unknown reference {source!r}",
        expected=expected,
        suggestion=registry.suggest(source, candidates),
    )


def _find_cycles(dependencies: dict[str, list[str]], declared: list[str]) -> list[list[str]]:
    """Each cycle once, in data-flow order, starting from its first-declared node."""
    order = {name: index for index, name in enumerate(declared)}
    state: dict[str, str] = {}  # "open" while on the current path, "done" after
    found: dict[frozenset[str], list[str]] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        path.append(name)
        for upstream in dependencies.get(name, []):
            if state.get(upstream) == "open":
                reads_from = path[path.index(upstream):]  # each node reads from the next one
                flow = list(reversed(reads_from))  # data flows the other way
                start = min(range(len(flow)), key=lambda i: order[flow[i]])
                found.setdefault(frozenset(flow), flow[start:] + flow[:start])
            elif upstream not in state:
                visit(upstream, path)
        path.pop()
        state[name] = "done"

    for name in declared:
        if name not in state:
            visit(name, [])
    return list(found.values())


def _check_outputs(
    outputs: Any, input_names: list[str], node_names: list[str], issues: _Issues
) -> None:
    """Every key of `outputs` must be a node."""
    if not isinstance(outputs, dict):
        return
    nodes = "one of " + ", ".join(node_names)
    for key in outputs:
        loc: PathKey = ("outputs", key)
        if key in node_names:
            continue
        if key in input_names:
            issues.add(loc, f"{key!r} is an input, not a node; outputs write nodes", expected=nodes)
            continue
        suggestion = registry.suggest(str(key), node_names)
        expected = None if suggestion else nodes
        issues.add(loc, "output names no node", expected=expected, suggestion=suggestion)


# ---------------------------------------------------------------------------------------------
# Building the recipe


def _validate(data: Any, issues: _Issues) -> Recipe | None:
    """Run every layer; the recipe when nothing was found, else ``None`` (see ``issues``)."""
    fields = "name, inputs, and process + output (or nodes + outputs)"
    if data is None:
        issues.add((), "the recipe is empty", expected=fields)
        return None
    if not isinstance(data, dict):
        issues.add((), f"a recipe is a mapping of fields, got {_describe(data)}", expected=fields)
        return None
    document = _check_structure(data, issues)
    _check_form(data, issues)
    steps = _check_all_steps(data, issues)
    _check_graph(data, issues)
    if issues.found or document is None:
        return None
    recipe = _build_recipe(document, steps, issues.source)
    _check_history_scope(recipe, chain=document.nodes is None, issues=issues)
    return None if issues.found else recipe


def _check_history_scope(recipe: Recipe, *, chain: bool, issues: _Issues) -> None:
    """A deduplicator with `scope: history` compares with one dataset's earlier versions: its
    node's documents must reach exactly one output."""
    for node_name, node in recipe.nodes.items():
        for index, step in enumerate(node.process):
            if step.params.get("scope") != "history":
                continue
            reached = recipe.outputs_reaching(node_name)
            if len(reached) == 1:
                continue
            loc: PathKey = ("process", index, step.operator, "scope") if chain else (
                "nodes", node_name, "process", index, step.operator, "scope"
            )
            found = f"it reaches {', '.join(reached)}" if reached else "it reaches no output"
            issues.add(
                loc,
                f"scope: history deduplicates against one output dataset's earlier versions, "
                f"but node {node_name!r} is not part of exactly one output ({found})",
                expected="a node whose documents go to one output, or scope: run",
            )


def _build_recipe(document: _RecipeDocument, steps: dict[str, list[Step]], source: str) -> Recipe:
    """The graph form of a valid document."""
    if document.nodes is not None:
        nodes = {
            name: NodeSpec(
                sources=node.sources,
                route=node.route,
                language=node.language,
                process=steps.get(name, []),
            )
            for name, node in document.nodes.items()
        }
        outputs = dict(document.outputs or {})
    else:
        assert document.output is not None  # _check_form guarantees it
        chain = NodeSpec(sources=list(document.inputs), process=steps.get(CHAIN_NODE, []))
        nodes = {CHAIN_NODE: chain}
        outputs = {CHAIN_NODE: document.output}
    return Recipe(
        name=document.name,
        description=document.description,
        inputs=dict(document.inputs),
        nodes=nodes,
        outputs=outputs,
        run=document.run,
        train=dict(document.train),
        language_settings=document.language_settings,
        source=source,
    )


def parse_recipe(
    data: dict[str, Any], *, source: str = "<recipe>", lines: dict | None = None
) -> Recipe:
    """Validate recipe data (as loaded from YAML); ``lines`` maps field paths to line numbers.

    Raises :class:`RecipeInvalid` listing every problem.
    """
    issues = _Issues(source, dict(lines or {}))
    return _recipe_or_raise(data, issues)


def _recipe_or_raise(data: Any, issues: _Issues) -> Recipe:
    recipe = _validate(data, issues)
    if recipe is None:
        raise RecipeInvalid(issues.sorted(), issues.source)
    return recipe


def load_recipe(path: str, overrides: Sequence[str] = ()) -> Recipe:
    """Read, override (``--set a.b=c``) and validate a recipe file.

    Raises :class:`RecipeInvalid` for a missing or unreadable file, YAML syntax errors, bad
    overrides and every validation problem, each with its line where there is one.
    """
    source = str(path)
    text = _read_text(source)
    try:
        document = load_yaml(text)
    except YamlSyntaxError as error:
        column = f" (column {error.column})" if error.column is not None else ""
        issue = RecipeIssue(source, error.line, "", f"not valid YAML{column}: {error.problem}")
        raise RecipeInvalid([issue], source) from None
    issues = _Issues(source, document.lines)
    for loc, line in document.duplicate_keys:
        message = "written twice in the same mapping; YAML would silently keep only the last"
        issues.found.append(RecipeIssue(source, line, format_path(loc), message))
    data = _apply_overrides(document.data, overrides, issues)
    from recipeflow.flows import datajuicer  # imported here: it imports this module

    if datajuicer.is_datajuicer_recipe(data):
        return datajuicer.parse_datajuicer_recipe(data, issues)
    return _recipe_or_raise(data, issues)


def _read_text(source: str) -> str:
    """The recipe file's text, or :class:`RecipeInvalid` saying why it cannot be read."""
    try:
        with open(source, "rb") as handle:
            return handle.read().decode("utf-8-sig")
    except FileNotFoundError:
        problem = "file not found; check the path (relative paths start from the current directory)"
    except IsADirectoryError:
        problem = "is a directory; expected a recipe file (.yaml)"
    except PermissionError:
        problem = "cannot be read: permission denied"
    except UnicodeDecodeError as error:
        problem = f"is not UTF-8 text (byte {error.start}); save the recipe as UTF-8"
    raise RecipeInvalid([RecipeIssue(source, None, "", problem)], source)


# ---------------------------------------------------------------------------------------------
# Overrides


class _BadOverride(Exception):
    pass


def apply_overrides(
    data: dict[str, Any], overrides: Sequence[str], *, source: str = "--set"
) -> dict[str, Any]:
    """A copy of ``data`` with each ``dotted.path=value`` applied, in order.

    Integer segments index lists (``process.1.text_length_filter.min_length=50``); the value is
    parsed as YAML (``4`` is an int, ``true`` a bool, ``[a, b]`` a list); missing mapping keys
    are created. Raises :class:`RecipeInvalid` naming every override that cannot be applied.
    """
    issues = _Issues(source)
    result = _apply_overrides(data, overrides, issues)
    if issues.found:
        raise RecipeInvalid(issues.found, source)
    return result


def _apply_overrides(data: Any, overrides: Sequence[str], issues: _Issues) -> Any:
    """Apply what can be applied; record an issue for each override that cannot."""
    result = copy.deepcopy(data)
    for override in overrides:
        dotted, separator, value_text = override.partition("=")
        dotted = dotted.strip()
        try:
            if not separator or not dotted:
                raise _BadOverride("expected PATH=VALUE, e.g. run.workers=4")
            value = _parse_override_value(value_text)
            loc = _set_path(result, dotted.split("."), value)
            issues.overridden[loc] = override
        except _BadOverride as problem:
            message = f"--set {override}: {problem}"
            issues.found.append(RecipeIssue(issues.source, None, dotted, message))
    return result


def _parse_override_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or error
        raise _BadOverride(f"the value is not valid YAML ({problem})") from None


def _set_path(root: Any, segments: list[str], value: Any) -> PathKey:
    """Set ``value`` at ``segments`` inside ``root``; returns the path as a location tuple."""
    if any(not segment for segment in segments):
        raise _BadOverride("empty segment in the path")
    container, loc = root, ()
    for position, segment in enumerate(segments):
        last = position == len(segments) - 1
        key = _container_key(container, segment, loc)
        loc = loc + (key,)
        if last:
            container[key] = value
            break
        child = container[key] if isinstance(container, list) else container.get(key)
        if child is None:  # a missing key, or null params (`- html_extract:`), becomes a mapping
            child = container[key] = {}
        container = child
    return loc


def _container_key(container: Any, segment: str, loc: PathKey) -> str | int:
    """The key or list index that ``segment`` names in ``container``."""
    where = format_path(loc) or "the recipe"
    if isinstance(container, dict):
        return segment
    if isinstance(container, list):
        if not segment.isdigit():
            raise _BadOverride(f"{where} is a list: expected an item number, got {segment!r}")
        index = int(segment)
        if index >= len(container):
            raise _BadOverride(
                f"{where} has {_plural(len(container), 'item')}; index {index} is out of range "
                f"(items are numbered from 0)"
            )
        return index
    raise _BadOverride(f"{where} is {_describe(container)}, not a mapping or a list")


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
                "description": _NAME_DESCRIPTION,
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
        "oneOf": [_form_schema(_CHAIN_KEYS, _GRAPH_KEYS), _form_schema(_GRAPH_KEYS, _CHAIN_KEYS)],
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
                "description": _FROM_DESCRIPTION,
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
