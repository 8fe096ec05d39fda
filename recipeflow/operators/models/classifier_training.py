"""Fitting a classifier head on frozen embeddings from graded documents (FineWeb-Edu's recipe).

FineWeb-Edu graded pages 0-5 with an LLM, then trained a regression head over a frozen
encoder's embeddings and kept pages whose rounded score is >= 3. :func:`train_head` does
the same on whatever grades it is given (``llm_grade``'s ``grade`` field), in plain numpy:

* ``regression``: ridge regression (closed form), score = w . x + b;
* ``classification``: multinomial logistic regression (softmax, L2, full-batch gradient
  descent with Nesterov momentum), score = expected grade.

Documents are split into training and held-out sets by a seeded hash of their ids (or their
position when no ids are given), so the split does not depend on input order. Held-out
metrics compare the head with the grades: ``accuracy`` (rounded score == grade),
``f1_macro`` over grades, ``f1_binary`` (grade >= ``f1_threshold`` as the positive class,
FineWeb-Edu's threshold 3), ``spearman`` (rank correlation of score and grade) and, for
regression, ``mse``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np
import xxhash

from recipeflow.operators.models.classifier_head import ClassifierHead, softmax
from recipeflow.operators.models.embedding_models import encoder


class NotEnoughGradedDocuments(ValueError):
    """Too few graded documents to train and still hold some out."""


@dataclass
class TrainingResult:
    head: ClassifierHead
    metrics: dict[str, Any]  # held-out metrics, and the sizes of both sets
    train_ids: list[str]
    holdout_ids: list[str]


def train_head(
    grades: Sequence[float],
    *,
    texts: Sequence[str] | None = None,
    embeddings: np.ndarray | None = None,
    ids: Sequence[str] | None = None,
    embedding_model: str = "all-minilm-l6-v2",
    embedding_sha256: str | None = None,
    task: Literal["regression", "classification"] = "regression",
    holdout_fraction: float = 0.2,
    min_holdout: int = 10,
    seed: int = 0,
    l2: float | None = None,
    max_length: int | None = None,
    batch_size: int = 64,
    grade_range: tuple[int, int] = (0, 5),
    f1_threshold: float = 3,
    field: str = "train",
) -> TrainingResult:
    """A head over ``embedding_model``'s embeddings of ``texts`` (or the given ``embeddings``,
    which must then come from that model, whose sha256 is ``embedding_sha256``), fitted to
    ``grades``, with held-out metrics. ``l2``: the penalty per training document (default
    1e-3 for ridge, 1e-2 for logistic). ``field`` names the recipe field in errors."""
    y = np.asarray(grades, np.float64)
    if (texts is None) == (embeddings is None):
        raise ValueError("give texts or embeddings (exactly one)")
    n = len(y)
    if texts is not None and len(texts) != n or embeddings is not None and len(embeddings) != n:
        raise ValueError("grades and texts/embeddings differ in length")
    if np.isnan(y).any():
        raise ValueError(f"`{field}`: {int(np.isnan(y).sum())} grades are missing (NaN); drop "
                         "ungraded documents first")
    check_split(n, holdout_fraction, min_holdout, field)
    holdout = _holdout_mask(n, ids, holdout_fraction, seed)
    n_hold, n_train = int(holdout.sum()), int((~holdout).sum())
    if embeddings is None:
        enc = encoder(embedding_model, max_length=max_length)
        x = enc.encode(list(texts or []), batch_size, normalize=True)
        embedding_sha256 = enc.sha256
    else:
        x = np.asarray(embeddings, np.float32)
        if embedding_sha256 is None:
            embedding_sha256 = encoder(embedding_model, max_length=max_length).sha256
    if len(np.unique(y[~holdout])) < 2:
        raise NotEnoughGradedDocuments(
            f"`{field}`: every training document has the same grade ({y[~holdout][0]:g}); a head "
            "needs documents of at least two grades")
    if task == "regression":
        weight, bias, labels = _fit_ridge(x[~holdout], y[~holdout], 1e-3 if l2 is None else l2)
    else:
        weight, bias, labels = _fit_logistic(x[~holdout], y[~holdout], 1e-2 if l2 is None else l2)
    head = ClassifierHead(task=task, weight=weight, bias=bias, embedding_model=embedding_model,
                          embedding_sha256=embedding_sha256, normalize=True,
                          max_length=max_length, labels=labels)
    metrics = evaluate(head, x[holdout], y[holdout], grade_range, f1_threshold)
    metrics.update(train_documents=n_train, holdout_documents=n_hold, task=task,
                   holdout_fraction=holdout_fraction, seed=seed)
    head.training = {"metrics": metrics}
    all_ids = list(ids) if ids is not None else [str(i) for i in range(n)]
    return TrainingResult(head, metrics,
                          [i for i, h in zip(all_ids, holdout) if not h],
                          [i for i, h in zip(all_ids, holdout) if h])


def check_split(documents: int, holdout_fraction: float = 0.2, min_holdout: int = 10,
                field: str = "train") -> tuple[int, int]:
    """(training, held-out) sizes for ``documents`` graded documents, or
    :class:`NotEnoughGradedDocuments` naming ``field``: callable at planning, when the number
    of documents to grade is known (a `sample: count`), before any GPU work."""
    n_hold = int(round(holdout_fraction * documents))
    n_train = documents - n_hold
    if n_hold < min_holdout or n_train < max(2 * min_holdout, 2):
        raise NotEnoughGradedDocuments(
            f"`{field}`: {documents} graded documents are too few to train a head and hold "
            f"{holdout_fraction:.0%} out: the held-out set would have {n_hold} (at least "
            f"{min_holdout} needed) and the training set {n_train} (at least "
            f"{max(2 * min_holdout, 2)}); grade more documents")
    return n_train, n_hold


def _holdout_mask(n: int, ids: Sequence[str] | None, fraction: float, seed: int) -> np.ndarray:
    """The ``fraction`` of documents with the lowest seeded hash of their id (or position)."""
    keys = [str(i) for i in ids] if ids is not None else [str(i) for i in range(n)]
    ranks = np.array([xxhash.xxh3_64_intdigest(k.encode("utf-8"), seed=seed) for k in keys], np.uint64)
    count = int(round(fraction * n))
    mask = np.zeros(n, bool)
    mask[np.argsort(ranks, kind="stable")[:count]] = True
    return mask


def _fit_ridge(x: np.ndarray, y: np.ndarray, l2: float):
    """Ridge regression with an unpenalised bias (centred data)."""
    mean_x, mean_y = x.mean(axis=0), y.mean()
    xc = (x - mean_x).astype(np.float64)
    gram = xc.T @ xc + l2 * len(x) * np.eye(x.shape[1])
    w = np.linalg.solve(gram, xc.T @ (y - mean_y))
    b = mean_y - mean_x @ w
    return w[None, :].astype(np.float32), np.array([b], np.float32), None


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, steps: int = 500):
    """Multinomial logistic regression over the grades seen in training."""
    labels = np.unique(y)
    targets = (y[:, None] == labels[None, :]).astype(np.float64)
    x64 = x.astype(np.float64)
    w = np.zeros((len(labels), x.shape[1]))
    b = np.zeros(len(labels))
    velocity_w, velocity_b = np.zeros_like(w), np.zeros_like(b)
    # Step size from the loss's smoothness bound (features of unit length: <= 1/2 + l2).
    rate, momentum = 1.0 / (0.5 * max(1.0, float((x64 ** 2).sum(axis=1).max())) + l2), 0.9
    for _ in range(steps):
        look_w, look_b = w + momentum * velocity_w, b + momentum * velocity_b
        error = softmax(x64 @ look_w.T + look_b) - targets
        grad_w = error.T @ x64 / len(x64) + l2 * look_w
        grad_b = error.mean(axis=0)
        velocity_w = momentum * velocity_w - rate * grad_w
        velocity_b = momentum * velocity_b - rate * grad_b
        w, b = w + velocity_w, b + velocity_b
    return w.astype(np.float32), b.astype(np.float32), [float(v) for v in labels]


def evaluate(head: ClassifierHead, x: np.ndarray, grades: np.ndarray,
             grade_range: tuple[int, int] = (0, 5), f1_threshold: float = 3) -> dict[str, Any]:
    """Held-out metrics of ``head`` against the grades (see the module docstring)."""
    score = head.scores(x)
    predicted = head.predicted_labels(x)
    predicted = np.clip(np.round(score) if predicted is None else predicted, *grade_range)
    truth = np.clip(np.round(grades), *grade_range)
    metrics: dict[str, Any] = {
        "accuracy": float(np.mean(predicted == truth)) if len(truth) else None,
        "f1_macro": _f1_macro(truth, predicted),
        "f1_binary": _f1(truth >= f1_threshold, predicted >= f1_threshold),
        "f1_threshold": f1_threshold,
        "spearman": spearman(score, grades),
    }
    if head.task == "regression":
        metrics["mse"] = float(np.mean((score - grades) ** 2))
    return metrics


def _f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    tp = float(np.sum(truth & predicted))
    denominator = float(np.sum(truth) + np.sum(predicted))
    return 2 * tp / denominator if denominator else 1.0


def _f1_macro(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Mean F1 over the grades present in the truth (as scikit-learn's macro average over
    labels present in either)."""
    labels = np.union1d(truth, predicted)
    return float(np.mean([_f1(truth == c, predicted == c) for c in labels])) if len(labels) else 1.0


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None when either is constant."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    if np.std(ra) == 0 or np.std(rb) == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def train_head_from_documents(documents, grade_field: str = "grade", embedding_field: str | None = None,
                              **options: Any) -> TrainingResult:
    """:func:`train_head` on a table of graded documents (``llm_grade``'s output): ids, texts
    and grades from its columns; embeddings from ``embedding_field`` (the field ``embed``
    wrote, kept or not) when given, in which case ``embedding_model`` / ``embedding_sha256``
    in ``options`` must name the model that made them. Documents without a grade are left
    out."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from recipeflow.operators.models.embedding_models import embedding_column, embeddings_matrix

    table: pa.Table = documents
    field = options.get("field", "train")
    if grade_field not in table.column_names:
        raise ValueError(f"`{field}`: the graded documents have no field {grade_field!r} "
                         "(llm_grade writes `grade`)")
    table = table.filter(pc.is_valid(table.column(grade_field)))
    grades = pc.cast(table.column(grade_field), pa.float64()).to_numpy(zero_copy_only=False)
    ids = table.column("id").to_pylist()
    if embedding_field is None:
        return train_head(grades, texts=table.column("text").to_pylist(), ids=ids, **options)
    column = embedding_column(table.column_names, embedding_field)
    if column is None:
        raise ValueError(f"`{field}`: the graded documents have no embeddings {embedding_field!r}")
    vectors = embeddings_matrix(table.column(column), None, "train", embedding_field)
    return train_head(grades, embeddings=vectors, ids=ids, **options)
