"""``model_classifier``: score documents with a learned model, as FineWeb-Edu does; optionally filter.

``model`` is any of:

* a Hugging Face sequence-classification folder (``save_pretrained``; its ``config.json``
  names a ``...ForSequenceClassification`` architecture), local or on object storage. With one
  output (FineWeb-Edu's regression head) the output is the score; with several, the score is
  the expected label (labels read as numbers from ``id2label`` where they are numbers, else
  their index) and ``int_score`` the most probable one;
* a head trained by recipeflow (``models.classifier_head``: a safetensors file of linear/logistic
  weights over a named encoder's embeddings). It embeds the text with its encoder, or reads
  embeddings ``embed`` already wrote (``embedding_field``);
* a model root (``<root>/versions/<version>/`` holding ``head.safetensors`` or a model
  folder ``model/``, committed by its ``manifest.json``): the latest version, or
  ``<root>@<version>``.

Statistics ``score`` and ``int_score`` (names configurable): ``int_score`` is the score
rounded and clipped to ``int_score_range`` (FineWeb-Edu: ``int(round(max(0, min(score, 5))))``).
"""

from __future__ import annotations

import functools
import json
import os
import threading
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import fsspec
import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from recipeflow.operators import document as doc
from recipeflow.operators.base import Filter, Rejection, Resource, threshold_decisions
from recipeflow.operators.embed import EncoderParams
from recipeflow.operators.fasttext_classifier import MANIFEST, VERSIONS_DIR, _committed_versions
from recipeflow.operators.models.classifier_head import HEAD_FILE, ClassifierHead, load_head
from recipeflow.operators.models.embedding_models import (
    EmbeddingModelError,
    EncoderInfo,
    TextEncoder,
    describe_encoder,
    embedding_column,
    embeddings_matrix,
    encoder,
    resolve_device,
    resolve_dtype,
)
from recipeflow.operators.models.fasttext_models import file_sha256, local_copy
from recipeflow.operators.models.llm_models import hub_offline, local_model_path, model_fingerprint
from recipeflow.operators.registry import register

HF_FOLDER_IN_VERSION = "model"
# Forward passes one batch at a time per process: operators in threads share loaded models.
_FORWARD_LOCK = threading.Lock()


class ModelClassifierError(ValueError):
    """The model is missing, of the wrong kind, or does not fit the embeddings."""


class ModelClassifierParams(EncoderParams):
    model: str = Field(
        description="A Hugging Face sequence-classification folder, a recipeflow head file, a "
        "model root (latest committed version) or `ROOT@VERSION`.")
    score_field: str = Field("score", description="Name of the score statistic (`stat_<name>`).")
    int_score_field: str = Field("int_score", description="Name of the rounded score statistic.")
    int_score_range: tuple[int, int] = Field(
        (0, 5), description="int_score is the score rounded, then clipped to this range "
        "(FineWeb-Edu: 0..5).")
    min_score: float | None = Field(None, description="Drop documents whose score is lower.")
    max_score: float | None = Field(None, description="Drop documents whose score is higher.")
    min_int_score: int | None = Field(None, description="Drop documents whose int_score is lower "
                                      "(FineWeb-Edu keeps int_score >= 3).")
    max_int_score: int | None = Field(None, description="Drop documents whose int_score is higher.")
    embedding_field: str | None = Field(
        None, description="A trained head only: read the embeddings `embed` wrote under this "
        "name (kept or not) instead of embedding the text again. They must come from the "
        "head's encoder.")
    max_length: int | None = Field(
        None, ge=1, description="Tokens per text. Default: 512 for a Hugging Face model; the "
        "head's training setting for a trained head.")

    @model_validator(mode="after")
    def _distinct_names(self):
        if self.score_field == self.int_score_field:
            raise ValueError("score_field and int_score_field must differ")
        low, high = self.int_score_range
        if low > high:
            raise ValueError(f"int_score_range is [low, high]; got {list(self.int_score_range)}")
        return self


@dataclass(frozen=True)
class ResolvedClassifier:
    kind: Literal["huggingface", "head"]
    path: str  # local folder (huggingface) or local head file
    root: str | None = None
    version: str | None = None


def resolve_classifier(model: str, field: str = "model") -> ResolvedClassifier:
    """What ``model`` names, as local files (see the module docstring)."""
    root, version = None, None
    base, _, pinned = model.rpartition("@")
    target = model
    if base and _is_model_root(base):
        root, version = base, pinned
        committed = [v for _, v in _committed_versions(*fsspec.core.url_to_fs(base))]
        if version not in committed:
            raise ModelClassifierError(
                f"`{field}`: model root {base} has no committed version {version!r}; committed "
                f"versions: {', '.join(committed) or 'none'}")
    elif _is_model_root(model):
        fs, path = fsspec.core.url_to_fs(model)
        committed = _committed_versions(fs, path)
        if not committed:
            raise ModelClassifierError(
                f"`{field}`: model root {model} has no committed version (a version is "
                f"committed once its {MANIFEST} is written); train one first")
        root, version = model, committed[-1][1]
    if root is not None:
        target = f"{root.rstrip('/')}/{VERSIONS_DIR}/{version}"
        fs, path = fsspec.core.url_to_fs(target)
        if fs.exists(f"{path}/{HEAD_FILE}"):
            return ResolvedClassifier("head", local_copy(f"{target}/{HEAD_FILE}"), root, version)
        target = f"{target}/{HF_FOLDER_IN_VERSION}"
    try:
        local = local_model_path(target)
    except FileNotFoundError as error:
        raise ModelClassifierError(f"`{field}`: classifier {error}") from error
    if os.path.isfile(local):
        load_head(local, field)  # raises a clear error when it is not a head
        return ResolvedClassifier("head", local, root, version)
    _check_sequence_classification(local, model, field)
    return ResolvedClassifier("huggingface", local, root, version)


def _is_model_root(url: str) -> bool:
    fs, path = fsspec.core.url_to_fs(url)
    return fs.isdir(path) and fs.isdir(f"{path.rstrip('/')}/{VERSIONS_DIR}")


def _check_sequence_classification(folder: str, model: str, field: str) -> None:
    config_path = os.path.join(folder, "config.json")
    if not os.path.isfile(config_path):
        raise ModelClassifierError(
            f"`{field}`: {model} is a folder without config.json: not a Hugging Face model "
            "folder (save one with save_pretrained), a head file or a model root")
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    architectures = config.get("architectures") or []
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise ModelClassifierError(
            f"`{field}`: {model} is a {', '.join(architectures) or 'model without architectures'}, "
            "not a sequence-classification model (its config.json names no "
            "...ForSequenceClassification architecture); loading it would score with an "
            "untrained head")


@functools.lru_cache(maxsize=2)
def _load_sequence_classifier(path: str, device: str, dtype: str):
    hub_offline()
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, local_files_only=True, dtype=getattr(torch, dtype))
    model.to(device).eval()
    return tokenizer, model


def label_values(id2label: dict[Any, str] | None, outputs: int) -> np.ndarray:
    """The number each output stands for: its label when numeric ("3"), else its index."""
    values = np.arange(outputs, dtype=np.float64)
    for key, label in (id2label or {}).items():
        try:
            values[int(key)] = float(label)
        except (TypeError, ValueError):
            return np.arange(outputs, dtype=np.float64)
    return values


@register
class ModelClassifier(Filter):
    """Score documents with a Hugging Face classifier/regressor or a recipeflow-trained head; filter by score.

    Writes the statistics ``score`` and ``int_score`` (``stat_score``, ``stat_int_score``;
    names configurable) for every document, and drops documents outside ``min_score`` /
    ``max_score`` / ``min_int_score`` / ``max_int_score`` (reasons ``<statistic>_below_min``
    / ``_above_max``). A missing model, a folder that is not a sequence-classification model,
    or a head whose encoder or dimension does not match is an error naming ``model`` before
    any document is scored (:meth:`provenance` checks all of it).
    """

    name = "model_classifier"
    version = "1"
    resource = Resource.gpu
    Params = ModelClassifierParams

    def __init__(self, params=None):
        super().__init__(params)
        self._resolved: ResolvedClassifier | None = None
        self._head: ClassifierHead | None = None
        self._checked: EncoderInfo | None = None

    @property
    def resolved(self) -> ResolvedClassifier:
        if self._resolved is None:
            self._resolved = resolve_classifier(self.params.model)
        return self._resolved

    @property
    def head(self) -> ClassifierHead:
        if self._head is None:
            self._head = load_head(self.resolved.path)
        return self._head

    def check_head(self) -> EncoderInfo:
        """The head's encoder, from its files, checked to be the one the head was trained on
        (sha256 and dimension); no weights are loaded."""
        if self._checked is not None:
            return self._checked
        head = self.head
        try:
            info = describe_encoder(head.embedding_model)
        except EmbeddingModelError as error:
            raise ModelClassifierError(
                f"`model`: the head {self.resolved.path} was trained on embeddings of "
                f"{head.embedding_model!r}, which cannot be loaded here: {error}") from error
        if info.sha256 != head.embedding_sha256:
            raise ModelClassifierError(
                f"`model`: the head {self.resolved.path} was trained on {head.embedding_model!r} "
                f"with sha256 {head.embedding_sha256}, but that model here has sha256 "
                f"{info.sha256}: retrain the head on this model or use the original one")
        if info.dim and info.dim != head.dim:
            raise ModelClassifierError(
                f"`model`: the head expects {head.dim}-dimensional embeddings, but "
                f"{head.embedding_model!r} makes {info.dim}-dimensional ones")
        self._checked = info
        return info

    def head_encoder(self) -> TextEncoder:
        """The head's encoder, loaded (after :meth:`check_head`)."""
        self.check_head()
        head, p = self.head, self.params
        return encoder(head.embedding_model, p.device, p.dtype, p.max_length or head.max_length)

    def provenance(self) -> dict[str, Any]:
        """Resolves and checks the model from its files (no weights loaded): the errors of a
        missing model, a folder of the wrong kind, or a head that does not fit its encoder
        come here, at planning, before any GPU work."""
        r = self.resolved
        facts: dict[str, Any] = {"model": self.params.model, "kind": r.kind,
                                 "model_root": r.root, "model_version": r.version}
        if r.kind == "huggingface":
            facts["sha256"] = model_fingerprint(r.path)
        else:
            info = self.check_head()
            facts.update(sha256=file_sha256(r.path), embedding_model=self.head.embedding_model,
                         embedding_sha256=info.sha256, task=self.head.task)
        return facts

    # -- scoring -----------------------------------------------------------------------------

    def scores(self, batch: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """(score, int_score) of every document."""
        texts = [t or "" for t in batch.column(doc.TEXT).to_pylist()]
        if self.resolved.kind == "huggingface":
            score, label = self._score_huggingface(texts)
        else:
            score, label = self._score_head(batch, texts)
        low, high = self.params.int_score_range
        rounded = np.round(score) if label is None else label
        return score, np.clip(rounded, low, high).astype(np.int64)

    def _score_head(self, batch: pa.Table, texts: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        head, p = self.head, self.params
        self.check_head()
        column = embedding_column(batch.column_names, p.embedding_field) if p.embedding_field else None
        if p.embedding_field and column is None and len(batch):
            raise ModelClassifierError(
                f"model_classifier: embedding_field {p.embedding_field!r} is not among the "
                "documents' columns; put `embed` before this operator or leave embedding_field out")
        if column is not None:
            vectors = embeddings_matrix(batch.column(column), head.dim, self.name, p.embedding_field)
        else:
            vectors = self.head_encoder().encode(texts, p.batch_size, head.normalize)
        return head.scores(vectors), head.predicted_labels(vectors)

    def _score_huggingface(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        p = self.params
        device = resolve_device(p.device)
        tokenizer, model = _load_sequence_classifier(self.resolved.path, device, resolve_dtype(p.dtype, device))
        outputs = int(model.config.num_labels)
        values = label_values(model.config.id2label, outputs)
        score = np.zeros(len(texts), np.float64)
        label = None if outputs == 1 else np.zeros(len(texts), np.float64)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # similar lengths per batch
        with _FORWARD_LOCK, torch.inference_mode():
            for start in range(0, len(order), p.batch_size):
                rows = order[start:start + p.batch_size]
                encoded = tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                    max_length=p.max_length or 512, return_tensors="pt").to(device)
                logits = model(**encoded).logits.float().cpu().numpy()
                if outputs == 1:
                    score[rows] = logits[:, 0]
                else:
                    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
                    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
                    score[rows] = probabilities @ values
                    label[rows] = values[np.argmax(logits, axis=1)]
        return score, label

    # -- the filter --------------------------------------------------------------------------

    def compute_stats(self, batch: pa.Table) -> dict[str, Sequence[Any]]:
        score, int_score = self.scores(batch)
        return {self.params.score_field: score.tolist(), self.params.int_score_field: int_score.tolist()}

    def thresholds(self) -> dict[str, dict[str, float]]:
        p = self.params
        out: dict[str, dict[str, float]] = {}
        for statistic, low, high, low_name, high_name in (
            (p.score_field, p.min_score, p.max_score, "min_score", "max_score"),
            (p.int_score_field, p.min_int_score, p.max_int_score, "min_int_score", "max_int_score"),
        ):
            bounds = {n: float(v) for n, v in ((low_name, low), (high_name, high)) if v is not None}
            if bounds:
                out[statistic] = bounds
        return out

    def decide(self, stats: dict[str, Sequence[Any]]) -> list[Rejection | None]:
        p = self.params
        by_score = threshold_decisions(stats[p.score_field], p.score_field, p.min_score, p.max_score)
        by_int = threshold_decisions(stats[p.int_score_field], p.int_score_field,
                                     p.min_int_score, p.max_int_score)
        return [a if a is not None else b for a, b in zip(by_score, by_int)]
