"""``fasttext_classifier``: score documents with a fastText classifier; optionally filter.

Every label's probability becomes a field (``<field_prefix><label>``), as DCLM and
DataTrove's ``FastTextClassifierFilter`` keep them; ``min_scores`` turns it into a filter.

``model`` is any of:

* a model file on any fsspec path (``s3://bucket/quality.bin``, ``/models/quality.ftz``);
* a recipeflow model root, a folder that training commits versions into
  (``<root>/versions/<version>/model.bin`` with ``manifest.json`` written last): the latest
  committed version is used (versions ordered by their manifest's ``created_at``);
* ``<root>@<version>``: that committed version of a model root.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Sequence

import fsspec
import pyarrow as pa
from pydantic import Field, field_validator

from recipeflow.operators import document as doc
from recipeflow.operators.models.fasttext_models import file_sha256, load_model, local_copy
from recipeflow.operators.models.fasttext_training import LABEL_PREFIX, one_line
from recipeflow.operators.base import Filter, OperatorParams, Rejection, path_field
from recipeflow.operators.registry import register

VERSIONS_DIR = "versions"
MODEL_FILE = "model.bin"
MANIFEST = "manifest.json"


class ModelChecksumMismatch(ValueError):
    """The model file is not the one the recipe pinned with ``sha256``."""


class ModelResolutionError(FileNotFoundError):
    """A model root has no committed version, or not the one asked for."""


class UnknownLabel(ValueError):
    """``labels`` or ``min_scores`` names a label the model does not have."""


def _strip_label(label: str) -> str:
    return label[len(LABEL_PREFIX):] if label.startswith(LABEL_PREFIX) else label


class FastTextClassifierParams(OperatorParams):
    model: str = path_field(
        description="A fastText model file (any fsspec path), a model root (latest committed "
        "version) or `ROOT@VERSION`."
    )
    sha256: str | None = Field(
        None,
        description="Expected sha256 of the model file: a different file is an error. The "
        "checksum is recorded in the manifest either way.",
    )
    field_prefix: str | None = Field(
        None,
        description="Scores are written as `<field_prefix><label>`; default: the model's name "
        "(file stem, or the model root's folder name) followed by `_`, e.g. `quality_`.",
    )
    labels: list[str] | None = Field(
        None,
        description="Only write these labels' scores (default: every label of the model); "
        "labels thresholded in `min_scores` are always written.",
    )
    min_scores: dict[str, float] = Field(
        default_factory=dict,
        description="Drop documents whose score for a label is below its threshold (reason "
        "`<label>_score_below_min`). Empty: annotate only.",
    )
    batch_size: int = Field(1000, ge=1, description="Texts per call to fastText's predict.")

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ValueError("a sha256 is 64 hexadecimal digits")
        return value.lower() if value else value

    @field_validator("labels")
    @classmethod
    def _labels_without_prefix(cls, value: list[str] | None) -> list[str] | None:
        return [_strip_label(v) for v in value] if value is not None else None

    @field_validator("min_scores")
    @classmethod
    def _thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        for label, threshold in value.items():
            if not 0.0 <= threshold <= 1.0:
                raise ValueError(f"the threshold of {label!r} is a probability in [0, 1]; got {threshold}")
        return {_strip_label(k): v for k, v in value.items()}


# -- model resolution ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedModel:
    """The model file a ``model`` parameter names, and which committed version it is."""

    path: str  # fsspec path of the model file
    root: str | None = None  # the model root, when ``model`` named one
    version: str | None = None


def _is_model_root(fs: fsspec.AbstractFileSystem, path: str) -> bool:
    return fs.isdir(path) and fs.isdir(f"{path.rstrip('/')}/{VERSIONS_DIR}")


def _committed_versions(fs: fsspec.AbstractFileSystem, root: str) -> list[tuple[str, str]]:
    """(created_at, version) of each committed version of a model root, oldest first."""
    found = []
    for entry in fs.ls(f"{root.rstrip('/')}/{VERSIONS_DIR}", detail=False):
        version = entry.rstrip("/").rsplit("/", 1)[-1]
        manifest_path = f"{entry.rstrip('/')}/{MANIFEST}"
        try:
            with fs.open(manifest_path, "rb") as f:
                manifest = json.load(f)
        except (FileNotFoundError, NotADirectoryError):
            continue  # no manifest: training still running, failed or killed
        except ValueError as error:
            raise ModelResolutionError(f"model manifest {manifest_path} is not valid JSON: {error}")
        found.append((str(manifest.get("created_at", "")), version))
    return sorted(found)


def resolve_model(model: str) -> ResolvedModel:
    """Which file ``model`` names: itself, a model root's latest committed version, or
    ``ROOT@VERSION``. The returned path keeps ``model``'s protocol (``s3://``...)."""
    root, _, version = model.rpartition("@")
    if root:
        fs, root_path = fsspec.core.url_to_fs(root)
        if _is_model_root(fs, root_path):
            return _pinned_version(fs, root, root_path, version)
    fs, path = fsspec.core.url_to_fs(model)
    if _is_model_root(fs, path):
        committed = _committed_versions(fs, path)
        if not committed:
            raise ModelResolutionError(
                f"model root {model} has no committed version (a version is committed once its "
                f"{MANIFEST} is written); train one first"
            )
        latest = committed[-1][1]
        return ResolvedModel(_join(model, VERSIONS_DIR, latest, MODEL_FILE), model, latest)
    if fs.isdir(path):
        raise ModelResolutionError(
            f"{model} is a folder but not a model root (no {VERSIONS_DIR}/ inside); name the "
            "model file or a model root"
        )
    if not fs.exists(path):
        raise ModelResolutionError(f"fastText model not found: {model}")
    return ResolvedModel(model)


def _pinned_version(fs: fsspec.AbstractFileSystem, root: str, root_path: str, version: str) -> ResolvedModel:
    committed = [v for _, v in _committed_versions(fs, root_path)]
    if version not in committed:
        listed = ", ".join(committed) or "none"
        raise ModelResolutionError(
            f"model root {root} has no committed version {version!r}; committed versions: {listed}"
        )
    return ResolvedModel(_join(root, VERSIONS_DIR, version, MODEL_FILE), root, version)


def _join(url: str, *parts: str) -> str:
    return "/".join([url.rstrip("/"), *parts])


def default_field_prefix(resolved: ResolvedModel) -> str:
    """``quality_`` for ``.../quality.bin`` or for the model root ``.../quality``."""
    name = resolved.root if resolved.root else resolved.path
    stem = name.rstrip("/").rsplit("/", 1)[-1]
    if not resolved.root:
        stem = os.path.splitext(stem)[0]
    return re.sub(r"[^0-9a-z]+", "_", stem.lower()).strip("_") + "_"


@functools.lru_cache(maxsize=32)
def _sha256_of(local_path: str, size: int, mtime_ns: int) -> str:
    """Checksum of a model file, once per process and file state."""
    return file_sha256(local_path)


def model_sha256(local_path: str) -> str:
    stat = os.stat(local_path)
    return _sha256_of(local_path, stat.st_size, stat.st_mtime_ns)


# -- the operator -------------------------------------------------------------------------------


@register
class FastTextClassifier(Filter):
    """Score documents with a fastText classifier (a field per label); optionally drop low scores.

    Text is put on one line as DCLM does (line breaks become spaces) and predicted in batches
    with ``k=-1`` (every label's probability). Each label's probability is written as the field
    ``<field_prefix><label>`` (fastText's ``__label__`` removed). With ``min_scores``, a document
    whose score for a label is below that label's threshold is dropped (reason
    ``<label>_score_below_min``, statistic the field). ``sha256`` pins the model file; the
    resolved path and checksum are recorded in the manifest (:meth:`provenance`).
    """

    name = "fasttext_classifier"
    version = "1"
    Params = FastTextClassifierParams

    def __init__(self, params=None):
        super().__init__(params)
        self._resolved: ResolvedModel | None = None
        self._model = None

    # Resolved and loaded on first use: building the operator (e.g. to plan) touches no file.
    @property
    def resolved(self) -> ResolvedModel:
        if self._resolved is None:
            self._resolved = resolve_model(self.params.model)
        return self._resolved

    @property
    def model(self):
        if self._model is None:
            local = local_copy(self.resolved.path)
            self._check_sha256(local)
            model = load_model(self.resolved.path)
            self._check_labels(model)
            self._model = model
            self._check_field_names()
        return self._model

    @property
    def field_prefix(self) -> str:
        if self.params.field_prefix is not None:
            return self.params.field_prefix
        return default_field_prefix(self.resolved)

    def model_labels(self) -> list[str]:
        """The model's labels without ``__label__``, in the model's order."""
        return [_strip_label(label) for label in self.model.get_labels()]

    def scored_labels(self) -> list[str]:
        """The labels whose scores become fields: ``labels`` (default: all of the model's),
        plus every label ``min_scores`` thresholds, so a decision's statistic is always kept."""
        chosen = list(self.params.labels) if self.params.labels is not None else self.model_labels()
        return chosen + [label for label in self.params.min_scores if label not in chosen]

    def field_for(self, label: str) -> str:
        return self.field_prefix + label

    def provenance(self) -> dict[str, Any]:
        local = local_copy(self.resolved.path)
        return {
            "model": self.params.model,
            "model_path": self.resolved.path,
            "model_root": self.resolved.root,
            "model_version": self.resolved.version,
            "sha256": model_sha256(local),
        }

    def _check_sha256(self, local_path: str) -> None:
        expected = self.params.sha256
        if expected is None:
            return
        actual = model_sha256(local_path)
        if actual != expected:
            raise ModelChecksumMismatch(
                f"fastText model {self.resolved.path} has sha256 {actual}, but the recipe pins "
                f"sha256 {expected}: the file changed or the wrong model is named"
            )

    def _check_labels(self, model) -> None:
        known = [_strip_label(label) for label in model.get_labels()]
        asked = list(self.params.labels or []) + list(self.params.min_scores)
        unknown = [label for label in asked if label not in known]
        if unknown:
            raise UnknownLabel(
                f"fastText model {self.resolved.path} has no label {unknown[0]!r}; its labels "
                f"are: {', '.join(known)}"
            )

    def _check_field_names(self) -> None:
        reserved = {doc.ID, doc.TEXT, *doc.LINEAGE_COLUMNS, *doc.REJECTION_COLUMNS}
        for label in self.scored_labels():
            field = self.field_for(label)
            if field in reserved or field.startswith("__"):
                raise ValueError(
                    f"fasttext_classifier would write label {label!r} as the field {field!r}, "
                    "which is reserved; set field_prefix"
                )

    # -- scoring --------------------------------------------------------------------------------

    def score(self, texts: Sequence[str]) -> dict[str, list[float]]:
        """label -> probability per text, for :meth:`scored_labels`."""
        labels = self.scored_labels()
        scores: dict[str, list[float]] = {label: [] for label in labels}
        size = self.params.batch_size
        for start in range(0, len(texts), size):
            lines = [one_line(t) for t in texts[start:start + size]]
            all_labels, all_probs = self.model.predict(lines, k=-1)
            for predicted, probs in zip(all_labels, all_probs):
                by_label = {_strip_label(lab): float(p) for lab, p in zip(predicted, probs)}
                for label in labels:
                    # fastText's softmax can round a little above 1.
                    scores[label].append(min(by_label.get(label, 0.0), 1.0))
        return scores

    def compute_stats(self, batch: pa.Table) -> dict[str, Sequence[Any]]:
        """The score fields, by field name."""
        scores = self.score(batch.column(doc.TEXT).to_pylist())
        return {self.field_for(label): values for label, values in scores.items()}

    def decide(self, stats: dict[str, Sequence[Any]]) -> list[Rejection | None]:
        """Drop a document at the first thresholded label it scores below (in ``min_scores``
        order)."""
        size = len(next(iter(stats.values()), []))
        decisions: list[Rejection | None] = [None] * size
        for label, threshold in self.params.min_scores.items():
            field = self.field_for(label)
            for i, value in enumerate(stats[field]):
                if decisions[i] is None and value < threshold:
                    decisions[i] = Rejection(
                        f"{label}_score_below_min", field, float(value), detail=f"min={threshold}"
                    )
        return decisions

    def annotate(self, batch: pa.Table) -> tuple[pa.Table, list[Rejection | None]]:
        """Scores written into the batch under their field names (not ``stat_<name>``: a score
        is a document field, as in DCLM), and the decisions, dropping nothing."""
        stats = self.compute_stats(batch)
        for field, values in stats.items():
            batch = doc.set_column(batch, field, pa.array(values, pa.float64()))
        return batch, self.decide(stats)
