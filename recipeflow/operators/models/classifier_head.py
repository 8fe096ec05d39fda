"""A classifier head trained by recipeflow: linear or logistic weights over frozen embeddings.

One file, ``head.safetensors`` (by convention; any name works):

* tensors ``weight`` (float32, ``[outputs, dim]``) and ``bias`` (float32, ``[outputs]``);
* the safetensors header's ``__metadata__`` has one entry, ``recipeflow_head``, a JSON object:
  ``format`` (``recipeflow-head``), ``format_version`` (1), ``task`` (``regression``: one
  output, the score; ``classification``: one output per label, softmax), ``labels`` (the
  numeric grades of a classification head, in output order), ``embedding`` (the encoder:
  ``model`` as named in the recipe, ``sha256`` of its files, ``dim``, ``normalize``,
  ``max_length``), and free-form ``training`` facts (metrics, data lineage) for people.

A head is only valid over embeddings of the encoder it was trained on: loading checks the
dimension, and ``model_classifier`` checks the encoder's sha256.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

HEAD_FORMAT = "recipeflow-head"
HEAD_FORMAT_VERSION = 1
METADATA_KEY = "recipeflow_head"
HEAD_FILE = "head.safetensors"

Task = Literal["regression", "classification"]


class HeadFormatError(ValueError):
    """A file is not a recipeflow head, or its contents disagree with its metadata."""


@dataclass
class ClassifierHead:
    task: Task
    weight: np.ndarray  # [outputs, dim]
    bias: np.ndarray  # [outputs]
    embedding_model: str
    embedding_sha256: str
    normalize: bool = True
    max_length: int | None = None
    labels: list[float] | None = None  # classification: the grade of each output
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.weight.shape[1])

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """The score of each row: the regression output, or a classification head's expected
        grade (sum of label x probability; for labels 0/1, the probability of 1)."""
        logits = embeddings.astype(np.float32) @ self.weight.T + self.bias
        if self.task == "regression":
            return logits[:, 0].astype(np.float64)
        probabilities = softmax(logits)
        return probabilities @ np.asarray(self.labels, np.float64)

    def predicted_labels(self, embeddings: np.ndarray) -> np.ndarray | None:
        """A classification head's most probable label per row (None for regression)."""
        if self.task == "regression":
            return None
        logits = embeddings.astype(np.float32) @ self.weight.T + self.bias
        return np.asarray(self.labels, np.float64)[np.argmax(logits, axis=1)]

    def metadata(self) -> dict[str, Any]:
        return {
            "format": HEAD_FORMAT,
            "format_version": HEAD_FORMAT_VERSION,
            "task": self.task,
            "labels": self.labels,
            "embedding": {
                "model": self.embedding_model,
                "sha256": self.embedding_sha256,
                "dim": self.dim,
                "normalize": self.normalize,
                "max_length": self.max_length,
            },
            "training": self.training,
        }

    def to_bytes(self) -> bytes:
        from safetensors.numpy import save

        tensors = {"weight": np.ascontiguousarray(self.weight, np.float32),
                   "bias": np.ascontiguousarray(self.bias, np.float32)}
        return save(tensors, metadata={METADATA_KEY: json.dumps(self.metadata(), sort_keys=True)})

    def save(self, path: str) -> None:
        """Write to any fsspec path."""
        import fsspec

        with fsspec.open(path, "wb") as f:
            f.write(self.to_bytes())


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def is_head_file(local_path: str) -> bool:
    """Whether a local file is a safetensors file with recipeflow head metadata."""
    try:
        return _read_metadata(local_path) is not None
    except Exception:
        return False


def _read_metadata(local_path: str) -> dict[str, Any] | None:
    with open(local_path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        if not 0 < size < 100_000_000:
            return None
        header = json.loads(f.read(size))
    raw = (header.get("__metadata__") or {}).get(METADATA_KEY)
    return json.loads(raw) if raw else None


def load_head(local_path: str, field: str = "model") -> ClassifierHead:
    """Read a head file; :class:`HeadFormatError` naming ``field`` when it is not one."""
    from safetensors.numpy import load_file

    try:
        meta = _read_metadata(local_path)
    except (OSError, ValueError) as error:
        raise HeadFormatError(f"`{field}`: {local_path} is not a safetensors file ({error})") from error
    if not meta or meta.get("format") != HEAD_FORMAT:
        raise HeadFormatError(
            f"`{field}`: {local_path} is a safetensors file without recipeflow head metadata; "
            "give a head trained by recipeflow, or a Hugging Face model folder"
        )
    if meta.get("format_version") != HEAD_FORMAT_VERSION:
        raise HeadFormatError(
            f"`{field}`: {local_path} is head format version {meta.get('format_version')}; this "
            f"recipeflow reads version {HEAD_FORMAT_VERSION}"
        )
    tensors = load_file(local_path)
    weight, bias = tensors["weight"], tensors["bias"]
    embedding = meta["embedding"]
    if weight.ndim != 2 or bias.shape != (weight.shape[0],) or weight.shape[1] != embedding["dim"]:
        raise HeadFormatError(
            f"`{field}`: {local_path} has weight {weight.shape} and bias {bias.shape}, which do "
            f"not match its metadata (dim {embedding['dim']})"
        )
    task = meta["task"]
    labels = meta.get("labels")
    if task == "classification" and (not labels or len(labels) != weight.shape[0]):
        raise HeadFormatError(f"`{field}`: {local_path} is a classification head without one label per output")
    return ClassifierHead(
        task=task, weight=weight, bias=bias, embedding_model=embedding["model"],
        embedding_sha256=embedding["sha256"], normalize=bool(embedding.get("normalize", True)),
        max_length=embedding.get("max_length"), labels=labels, training=meta.get("training") or {},
    )
