"""The recipe's models: the normalised graph-form :class:`Recipe` and the YAML-shaped
documents validation reads first, with the constants both share."""


import copy
import fnmatch
import hashlib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    StringConstraints,
    field_validator,
    model_validator,
)

from recipeflow.operators import registry
from recipeflow.operators.base import Operator


# Executors are plain Literal values: adding "ray" or "dask" later is a one-word change here
# (and the runner's job), not a schema redesign.
Executor = Literal["threads", "processes", "ray", "dask"]
InputFormat = Literal["jsonl", "parquet", "warc", "text"]
OutputFormat = Literal["parquet", "jsonl.gz", "megatron"]

RECIPE_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
# Input and node names may not contain dots: `from: clean.rejected` must be unambiguous.
STREAM_NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
CHAIN_NODE = "main"
REJECTED_SUFFIX = ".rejected"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# What a regular-expression constraint means, in words.
NAME_DESCRIPTION = "The dataset name: letters, digits, '_', '.' and '-'"
FROM_DESCRIPTION = "An input, a node, `<node>.rejected`, or a list of them (their union)"
CHAIN_KEYS = ("process", "output")
GRAPH_KEYS = ("nodes", "outputs")
STEP_EXAMPLE = (
    "a mapping with one key, the operator name: `- text_length_filter: {min_length: 200}`"
)



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


# Columns every published document has: selection cannot leave them out.
REQUIRED_COLUMNS = ("id", "text")
_COLUMN_PATTERN = re.compile(r"^[A-Za-z0-9_.\-*?\[\]!]+$")


class ColumnsSpec(StrictModel):
    """Columns to publish: ``keep`` (only these, plus id and text) and/or ``drop``; each entry a
    column name or a glob pattern (``stat_*``, ``input_?``, ``[ab]*``)."""

    keep: list[str] | None = Field(None, description="Publish only these columns (id and text always)")
    drop: list[str] = Field(default_factory=list, description="Leave these columns out")

    @field_validator("keep", "drop")
    @classmethod
    def _patterns(cls, patterns: list[str] | None) -> list[str] | None:
        for pattern in patterns or []:
            if not _COLUMN_PATTERN.match(pattern) or pattern.count("[") != pattern.count("]"):
                raise ValueError(
                    f"{pattern!r} is not a column name or glob pattern: use letters, digits, _ . - and "
                    "the wildcards * ? [...] (for example stat_* or lang)"
                )
        return patterns

    @field_validator("drop")
    @classmethod
    def _not_required(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            hit = [c for c in REQUIRED_COLUMNS if fnmatch.fnmatchcase(c, pattern)]
            if hit:
                raise ValueError(f"drop pattern {pattern!r} would drop {hit[0]!r}: every document keeps id and text")
        return patterns

    def selects(self, column: str) -> bool:
        """Whether ``column`` is published."""
        if column in REQUIRED_COLUMNS:
            return True
        if self.keep is not None and not any(fnmatch.fnmatchcase(column, p) for p in self.keep):
            return False
        return not any(fnmatch.fnmatchcase(column, p) for p in self.drop)


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
    create_bucket: bool = Field(
        False,
        strict=True,
        description="Create the object-store bucket of `path` when it does not exist; "
        "otherwise a missing bucket is an error (a misspelt bucket name is not created silently)",
    )
    export_file: str | None = Field(
        None,
        description="Also write the committed documents to this one JSONL file (Data-Juicer's "
        "export_path), after the version is committed",
    )
    shuffle: "ShuffleSpec | None" = Field(
        None, description="Write documents in a seeded global order (across all shards): {seed: N}"
    )
    target_shard_rows: PositiveInt | None = Field(
        None, description="Cut the data into files of about this many documents"
    )
    target_shard_tokens: Annotated[int, BeforeValidator(lambda v: _whole_amount(v))] | None = Field(
        None, ge=1, description="Cut the data into files of about this many tokens (needs n_tokens)"
    )
    partition_by: str | None = Field(
        None,
        description="Write one folder per value of this field (e.g. `phase`: one partition per "
        "training phase of a mix), each with its own files and counts",
    )
    license: str | None = Field(
        None,
        description="License of the published dataset, as the dataset card states it (a Hugging Face "
        "license id such as cc-by-4.0, odc-by, other)",
    )
    columns: ColumnsSpec | None = Field(
        None, description="Which columns are published (keep / drop lists; glob patterns such as stat_*)"
    )

    @model_validator(mode="after")
    def _one_shard_target(self) -> "OutputSpec":
        if self.target_shard_rows is not None and self.target_shard_tokens is not None:
            raise ValueError("give target_shard_rows or target_shard_tokens, not both")
        return self


def _whole_amount(value: Any) -> Any:
    """``1e9`` (YAML reads it as a string) or ``1.0e9`` -> 1000000000; other values unchanged."""
    if isinstance(value, str):
        try:
            value = float(value.replace("_", ""))
        except ValueError:
            return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class ShuffleSpec(StrictModel):
    """A seeded global order of the output's documents."""

    seed: int = Field(0, ge=0, description="Seed of the order (a hash of seed and document id)")


OutputSpec.model_rebuild()


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
    tasks_per_stage: PositiveInt | None = Field(
        None,
        description="Prefect tasks a stage's shards are batched into, at most (each shard keeps its "
        "own cached result); omitted = 4 per worker. More tasks show finer progress in the UI and "
        "cost about 0.2 s of orchestration each",
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


def one_or_many(value: Any) -> Any:
    """`from: a` means `from: [a]`."""
    return [value] if isinstance(value, str) else value


Sources = Annotated[list[str], BeforeValidator(one_or_many, json_schema_input_type=str | list[str])]
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


class HeadTrainSpec(StrictModel):
    """Train a classifier head on frozen embeddings of LLM-graded documents (FineWeb-Edu style)."""

    graded: Sources = Field(description="Sources of graded documents (a node with `llm_grade`)")
    output: OutputSpec = Field(description="Model root: each training run commits a version")
    grade_field: str = Field("grade", description="The field holding each document's grade")
    embedding_model: str | None = Field(
        None, description="The frozen encoder (a folder or `all-minilm-l6-v2`). Default: the "
        "model of the `embed` step in the graded node, else all-minilm-l6-v2")
    embedding_field: str | None = Field(
        None, description="Read the vectors an `embed` step wrote (`embedding`) instead of "
        "embedding the texts again; they must come from `embedding_model`")
    max_length: PositiveInt | None = Field(None, description="Tokens per text when embedding")
    task: Literal["regression", "classification"] = Field(
        "regression", description="regression: ridge (FineWeb-Edu); classification: logistic")
    holdout: float = Field(0.2, gt=0, lt=1, description="Share of graded documents held out to measure the head")
    min_holdout: PositiveInt = Field(10, description="Fewest held-out documents that give a metric")
    seed: int = Field(0, description="Seed of the held-out split")
    l2: float | None = Field(None, gt=0, description="L2 penalty per training document")
    f1_threshold: float = Field(3, description="Grade from which a document counts as positive for f1_binary")


def _train_kind(value: Any) -> str:
    """Which trainer a `train:` entry asks for: a head from graded documents, or fastText."""
    graded = value.get("graded") if isinstance(value, dict) else getattr(value, "graded", None)
    return "head" if graded is not None else "fasttext"


# The tags appear in pydantic's error locations; recipe.errors drops them (TRAIN_KINDS).
TRAIN_KINDS = ("fasttext", "head")
AnyTrainSpec = Annotated[
    Annotated[TrainSpec, Tag("fasttext")] | Annotated[HeadTrainSpec, Tag("head")],
    Discriminator(_train_kind),
]



class Recipe(StrictModel):
    """A validated recipe in graph form; made by :func:`load_recipe` or :func:`parse_recipe`."""

    name: str = Field(pattern=RECIPE_NAME_PATTERN)
    description: str = ""
    inputs: dict[str, InputSpec]
    nodes: dict[str, NodeSpec]
    outputs: dict[str, OutputSpec]
    run: RunSpec = Field(default_factory=RunSpec)
    train: dict[str, AnyTrainSpec] = Field(default_factory=dict)
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
            "outputs": {name: _resolved_output(spec) for name, spec in self.outputs.items()},
            "run": self.run.model_dump(mode="json"),
            **({"train": {n: t.model_dump(mode="json") for n, t in self.train.items()}} if self.train else {}),
            **({"language_settings": self.language_settings} if self.language_settings else {}),
        }

    def sha256(self) -> str:
        """Identity of what the recipe does: insensitive to key order, comments and layout."""
        return resolved_sha256(self.resolved())

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


def resolved_sha256(resolved: dict[str, Any]) -> str:
    """sha256 of a recipe's :meth:`Recipe.resolved` form, canonical JSON."""
    canonical = json.dumps(resolved, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# Output fields added since the first release: left out of the resolved form while unset, so the
# identity (sha256) of a recipe that does not use them stays what it was.
_OPTIONAL_OUTPUT_FIELDS = (
    "license", "columns", "shuffle", "target_shard_rows", "target_shard_tokens", "partition_by", "export_file",
)


def _resolved_output(spec: OutputSpec) -> dict[str, Any]:
    dumped = spec.model_dump(mode="json")
    return {k: v for k, v in dumped.items() if not (k in _OPTIONAL_OUTPUT_FIELDS and v is None)}


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
    return [base for base in (strip_rejected(s) for s in node.sources) if base in nodes]


def strip_rejected(source: str) -> str:
    return source[: -len(REJECTED_SUFFIX)] if source.endswith(REJECTED_SUFFIX) else source


# ---------------------------------------------------------------------------------------------
# The YAML-shaped models: what a user writes, before normalisation. Steps stay `Any` here; they
# are checked against the registry separately, with messages that know about operators.


class NodeDocument(StrictModel):
    sources: Sources = Field(alias="from", description=FROM_DESCRIPTION)
    route: RouteSpec | None = Field(None, description="Take only documents with these field values")
    language: str | None = Field(
        None, description="Language code whose settings file gives this node's operators defaults"
    )
    process: list[Any] = Field(default_factory=list, description="Steps: `- operator: {params}`")


class RecipeDocument(StrictModel):
    name: str = Field(pattern=RECIPE_NAME_PATTERN, description=NAME_DESCRIPTION)
    description: str = ""
    inputs: dict[StreamName, InputSpec] = Field(
        min_length=1, description="At least one input: a name mapped to {path: ...}"
    )
    process: list[Any] | None = None
    output: OutputSpec | None = None
    nodes: dict[StreamName, NodeDocument] | None = None
    outputs: dict[str, OutputSpec] | None = None
    run: RunSpec = Field(default_factory=RunSpec)
    train: dict[StreamName, AnyTrainSpec] = Field(default_factory=dict)
    language_settings: str | None = Field(
        None, description="Folder of per-language settings files (<code>.yaml); default: bundled"
    )
