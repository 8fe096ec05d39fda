"""Train a fastText classifier from a recipe's nodes and commit it as a versioned model.

A model root looks like a dataset root: ``<root>/versions/<version>/model.bin`` and a
``manifest.json`` written last, holding the training data's lineage (which sources, how many
examples, the recipe), the parameters and the precision/recall on the held-out split.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
from typing import Any, Iterator

import recipeflow
from recipeflow.io import storage
from recipeflow.datasets import versions
from recipeflow.engine.shard_input import ShardInput, iter_batches
from recipeflow.recipe.models import TrainSpec
from recipeflow.operators import document as doc
from recipeflow.operators.models.fasttext_training import train_classifier

MODEL_FILE = "model.bin"
MODEL_FORMAT = "recipeflow.model/1"


def _texts(inputs: list[ShardInput], counter: dict[str, int]) -> Iterator[str]:
    for inp in inputs:
        for batch, _ in iter_batches(inp):
            texts = batch.column(doc.TEXT).to_pylist()
            counter[inp.origin or inp.key] = counter.get(inp.origin or inp.key, 0) + len(texts)
            yield from texts


def train_and_commit(
    name: str,
    spec: TrainSpec,
    positives: list[ShardInput],
    negatives: list[ShardInput],
    run_info: dict[str, Any],
) -> dict[str, Any]:
    """Train on the documents of ``positives`` and ``negatives``; commit a model version."""
    root = spec.output.path
    positive_counts: dict[str, int] = {}
    negative_counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="recipeflow-train-") as workdir:
        trained = train_classifier(
            _texts(positives, positive_counts),
            _texts(negatives, negative_counts),
            holdout=spec.holdout,
            seed=spec.seed,
            label_positive=spec.label_positive,
            label_negative=spec.label_negative,
            epoch=spec.epoch,
            lr=spec.lr,
            word_ngrams=spec.word_ngrams,
            dim=spec.dim,
            min_count=spec.min_count,
            bucket=spec.bucket,
            workdir=workdir,
        )
        with open(trained.path, "rb") as f:
            model_bytes = f.read()
    return commit_model(
        root, run_info, MODEL_FILE, model_bytes,
        model={"name": name},
        training={
            "positive": {"sources": list(spec.positive), "documents": positive_counts},
            "negative": {"sources": list(spec.negative), "documents": negative_counts},
            "params": spec.model_dump(mode="json", exclude={"output"}),
        },
        metrics=trained.metrics,
        rows=sum(positive_counts.values()) + sum(negative_counts.values()),
    )


def commit_model(
    root: str, run_info: dict[str, Any], file_name: str, model_bytes: bytes, *, model: dict[str, Any],
    training: dict[str, Any], metrics: dict[str, Any], rows: int,
) -> dict[str, Any]:
    """Commit a trained model as a new version of ``root``: the model file, then the manifest
    every model version has (``model`` and ``training`` say what it is and what it learnt from)."""
    version = versions.new_version_id()
    storage.write_bytes(storage.join(versions.version_path(root, version), file_name), model_bytes)
    sha256 = hashlib.sha256(model_bytes).hexdigest()
    manifest = {
        "format": MODEL_FORMAT,
        "version": version,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "dataset": root,
        "parent": versions.latest_version(root),
        "recipe_name": run_info["recipe_name"],
        "recipe_sha256": run_info["recipe_sha256"],
        "recipe": run_info["recipe_resolved"],
        "model": {**model, "path": file_name, "bytes": len(model_bytes), "sha256": sha256},
        "training": training,
        "metrics": metrics,
        "rows": rows,
        "files": [{"path": file_name, "bytes": len(model_bytes), "sha256": sha256}],
        "run": run_info["run"],
        "recipeflow_version": recipeflow.__version__,
    }
    versions.commit(root, version, manifest)
    return manifest
