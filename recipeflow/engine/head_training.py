"""Train a classifier head on LLM-graded documents (FineWeb-Edu's loop) and commit it as a model.

A `train:` entry with `graded:` (see ``recipe.models.HeadTrainSpec``) reads the documents of
its sources (a node with ``llm_grade``), fits a linear head over a frozen encoder's embeddings
with a seeded held-out split (``operators.models.classifier_training``), and commits
``<root>/versions/<version>/head.safetensors`` with a ``manifest.json`` written last: the
training data's lineage (sources, documents per source, graded and ungraded counts, the grader
models and prompt hashes), the parameters, and the held-out metrics (accuracy, F1, Spearman).
``model_classifier: {model: ROOT@VERSION}`` (or the root, for the latest) scores with it.

:func:`check_head_training` runs before any work starts: a split that cannot hold enough
documents out, an encoder that cannot be found or whose vectors do not fit, each an error
naming the recipe field.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from recipeflow.engine.shard_input import ShardInput, iter_batches
from recipeflow.engine.train import commit_model
from recipeflow.operators import document as doc
from recipeflow.operators.models.classifier_head import HEAD_FILE
from recipeflow.operators.models.classifier_training import (
    NotEnoughGradedDocuments,
    check_split,
    train_head_from_documents,
)
from recipeflow.operators.models.embedding_models import (
    BUNDLED_MINILM,
    EmbeddingModelError,
    describe_encoder,
    embedding_column,
    embeddings_matrix,
)
from recipeflow.recipe.models import REJECTED_SUFFIX, HeadTrainSpec, Recipe

GRADER_FIELDS = ("grade_model", "grade_prompt_sha256")  # written by llm_grade beside the grade


class HeadTrainingError(ValueError):
    """A head's `train:` entry cannot work: too few documents, an unusable or mismatched encoder."""


def _embed_steps(recipe: Recipe, spec: HeadTrainSpec) -> list[dict[str, Any]]:
    """Parameters of the `embed` steps on the way to the graded documents."""
    found = []
    for source in spec.graded:
        for node in recipe.ancestors(source.removesuffix(REJECTED_SUFFIX)):
            found += [s.params for s in recipe.nodes[node].process if s.operator == "embed"]
    return found


def embedding_model_of(recipe: Recipe, spec: HeadTrainSpec) -> str:
    """The encoder a head is trained over: `embedding_model`, else the graded node's `embed`
    model (the one writing `embedding_field` when given), else the bundled all-MiniLM-L6-v2."""
    if spec.embedding_model:
        return spec.embedding_model
    steps = _embed_steps(recipe, spec)
    if spec.embedding_field:
        steps = [s for s in steps if s.get("field", "embedding") == spec.embedding_field]
    return str(steps[-1].get("model", BUNDLED_MINILM)) if steps else BUNDLED_MINILM


def with_encoder(recipe: Recipe, spec: HeadTrainSpec) -> HeadTrainSpec:
    """``spec`` with `embedding_model` filled in from the recipe (see :func:`embedding_model_of`),
    and `max_length` from the `embed` step whose vectors it reads, so the head records how
    they were made."""
    model = embedding_model_of(recipe, spec)
    max_length = spec.max_length
    if max_length is None and spec.embedding_field:
        steps = [s for s in _embed_steps(recipe, spec)
                 if s.get("field", "embedding") == spec.embedding_field]
        max_length = steps[-1].get("max_length") if steps else None
    return spec.model_copy(update={"embedding_model": model, "max_length": max_length})


def most_graded(recipe: Recipe, spec: HeadTrainSpec) -> int | None:
    """At most how many documents reach training, when the recipe says (a `sample: {count}`
    on the way to every graded source); None when only the data can tell."""
    total = 0
    for source in spec.graded:
        if source.endswith(REJECTED_SUFFIX):
            return None  # a rejected stream is not bounded by the node's sample
        counts = [
            int(s.params["count"])
            for node in recipe.ancestors(source)
            for s in recipe.nodes[node].process
            if s.operator == "sample" and s.params.get("count") is not None
        ]
        if not counts:
            return None
        total += min(counts)
    return total


def check_head_training(recipe: Recipe) -> None:
    """Errors a head's `train:` entry would meet only after grading, raised before any work."""
    for name, spec in recipe.train.items():
        if not isinstance(spec, HeadTrainSpec):
            continue
        field = f"train.{name}"
        bound = most_graded(recipe, spec)
        if bound is not None:
            try:
                check_split(bound, spec.holdout, spec.min_holdout, field=f"{field}.holdout")
            except NotEnoughGradedDocuments as error:
                raise HeadTrainingError(
                    f"{error} (at most {bound} graded documents reach `{field}.graded`: the "
                    "`sample: {count}` before grading; raise the count, or lower "
                    f"`{field}.holdout` / `{field}.min_holdout`)") from error
        model = embedding_model_of(recipe, spec)
        try:
            encoder_info = describe_encoder(model, field=f"{field}.embedding_model")
        except EmbeddingModelError as error:
            raise HeadTrainingError(str(error)) from error
        if spec.embedding_field is None:
            continue
        writers = [s for s in _embed_steps(recipe, spec)
                   if s.get("field", "embedding") == spec.embedding_field]
        if writers:
            written = describe_encoder(str(writers[-1].get("model", BUNDLED_MINILM)))
            if (written.sha256, written.dim) != (encoder_info.sha256, encoder_info.dim):
                raise HeadTrainingError(
                    f"`{field}.embedding_field`: the vectors in {spec.embedding_field!r} come "
                    f"from {written.model!r} ({written.dim} dimensions), but "
                    f"`{field}.embedding_model` is {model!r} ({encoder_info.dim} dimensions): "
                    "a head is only valid over the encoder it was trained on; name the same "
                    "model or leave embedding_model out")


def _graded_table(spec: HeadTrainSpec, inputs: list[ShardInput], counts: dict[str, int]) -> pa.Table:
    """id, text, grade (float64), grader facts and the embedding column of every document."""
    parts = []
    for inp in inputs:
        for batch, _ in iter_batches(inp):
            counts[inp.origin or inp.key] = counts.get(inp.origin or inp.key, 0) + len(batch)
            if spec.grade_field not in batch.column_names:
                if len(batch):
                    raise HeadTrainingError(
                        f"`train`: the documents of {', '.join(spec.graded)} have no field "
                        f"{spec.grade_field!r} (`grade_field`); put `llm_grade` in that node "
                        f"(fields: {', '.join(c for c in batch.column_names if not c.startswith('__'))})")
                continue
            columns = {doc.ID: batch.column(doc.ID), doc.TEXT: batch.column(doc.TEXT),
                       spec.grade_field: pc.cast(batch.column(spec.grade_field), pa.float64())}
            columns.update({f: batch.column(f).cast(pa.string())
                            for f in GRADER_FIELDS if f in batch.column_names})
            vectors = embedding_column(batch.column_names, spec.embedding_field) if spec.embedding_field else None
            if spec.embedding_field and vectors is None and len(batch):
                raise HeadTrainingError(
                    f"`train`: embedding_field {spec.embedding_field!r} is not a field of the "
                    f"graded documents; put `embed` before `llm_grade` or leave embedding_field out")
            if vectors is not None:
                columns[spec.embedding_field] = batch.column(vectors)
            parts.append(pa.table(columns))
    if not parts:
        return pa.table({doc.ID: pa.array([], pa.string()), doc.TEXT: pa.array([], pa.string()),
                         spec.grade_field: pa.array([], pa.float64())})
    return pa.concat_tables(parts, promote_options="permissive")


def _distinct(table: pa.Table, column: str) -> list[str]:
    if column not in table.column_names:
        return []
    return sorted(v for v in pc.unique(table.column(column)).to_pylist() if v is not None)


def train_head_and_commit(
    name: str, spec: HeadTrainSpec, graded: list[ShardInput], run_info: dict[str, Any]
) -> dict[str, Any]:
    """Fit a head on the graded documents of ``graded`` and commit it as a model version."""
    field = f"train.{name}"
    model = spec.embedding_model or BUNDLED_MINILM  # see with_encoder
    counts: dict[str, int] = {}
    table = _graded_table(spec, graded, counts)
    graded_rows = table.filter(pc.is_valid(table.column(spec.grade_field)))
    encoder_info = describe_encoder(model, field=f"{field}.embedding_model")
    if spec.embedding_field and len(graded_rows):
        dim = embeddings_matrix(graded_rows.column(spec.embedding_field)).shape[1]
        if dim != encoder_info.dim:
            raise HeadTrainingError(
                f"`{field}.embedding_field`: the vectors in {spec.embedding_field!r} have {dim} "
                f"dimensions, but `{field}.embedding_model` {model!r} makes {encoder_info.dim}: "
                "they come from another encoder; name it in embedding_model")
    result = train_head_from_documents(
        graded_rows, grade_field=spec.grade_field, embedding_field=spec.embedding_field,
        embedding_model=model, embedding_sha256=encoder_info.sha256, task=spec.task,
        holdout_fraction=spec.holdout, min_holdout=spec.min_holdout, seed=spec.seed, l2=spec.l2,
        max_length=spec.max_length, f1_threshold=spec.f1_threshold, field=field)
    lineage = {
        "sources": list(spec.graded),
        "documents": counts,
        "graded": len(graded_rows),
        "ungraded": len(table) - len(graded_rows),
        "grade_field": spec.grade_field,
        "graders": {f: _distinct(graded_rows, f) for f in GRADER_FIELDS if f in table.column_names},
        "train_documents": len(result.train_ids),
        "holdout_documents": len(result.holdout_ids),
    }
    head = result.head
    head.training = {"metrics": result.metrics, "data": lineage, "recipe_sha256": run_info["recipe_sha256"]}
    head_bytes = head.to_bytes()

    return commit_model(
        spec.output.path, run_info, HEAD_FILE, head_bytes,
        model={"name": name, "kind": "head", "task": head.task, "labels": head.labels,
               "embedding": head.metadata()["embedding"]},
        training={"data": lineage, "params": spec.model_dump(mode="json", exclude={"output"})},
        metrics=result.metrics,
        rows=len(graded_rows),
    )
