"""Training a fastText quality classifier from positive and negative texts (DCLM style).

Plain Python, no Prefect: recipes wire :func:`train_classifier` in as a ``train:`` section, and
``fasttext_classifier`` then scores documents with the model it writes.

Reproducible by construction: the held-out split is decided by a hash of (seed, text), the
training lines are ordered by a hash too (not by Python's ``random``), and fastText trains on
one thread with a fixed seed, in a fresh process whose allocations start zeroed (see
:func:`_fit`), so the same texts and parameters give a byte-identical model.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import IO, Any, Iterable, Iterator

import xxhash

from recipeflow.operators.models.fasttext_models import file_sha256

LABEL_PREFIX = "__label__"
MODEL_FILE = "model.bin"
# A held-out text counts as predicted positive when its positive-label probability is at least this.
DECISION_THRESHOLD = 0.5
# Held-out texts are scored this many at a time.
_PREDICT_BATCH = 1000
# mallopt's parameter number for M_PERTURB (glibc malloc.h).
_M_PERTURB = -6


class TrainingError(ValueError):
    """The training data cannot make a classifier (a class is empty, a label is invalid...)."""


def one_line(text: str) -> str:
    """The text as fastText reads it: one line, line breaks turned into spaces.

    fastText predicts one line at a time; DCLM joins a document's lines with spaces
    (``" ".join(text.strip().splitlines())``) and DataTrove replaces ``\\n`` with a space.
    """
    return " ".join(text.strip().splitlines())


def split_hash(text: str, seed: int) -> int:
    """A 64-bit hash of (seed, text): decides which texts are held out."""
    return xxhash.xxh3_64_intdigest(text.encode("utf-8"), seed=seed)


def _order_hash(line: bytes, seed: int) -> int:
    """The training order of a labelled line: seeded, and independent of the split hash."""
    return xxhash.xxh3_64_intdigest(b"order\0" + line, seed=seed)


def is_held_out(text: str, seed: int, holdout: float) -> bool:
    """Whether ``text`` belongs to the held-out split (about ``holdout`` of all texts)."""
    return split_hash(text, seed) < holdout * 2**64


@dataclass(frozen=True)
class TrainedClassifier:
    """A trained model on local disk, how it did on the held-out split, and its checksum."""

    path: str  # .../model.bin
    sha256: str
    metrics: dict[str, Any]
    labels: tuple[str, str]  # (positive, negative), without "__label__"
    params: dict[str, Any] = field(default_factory=dict)  # the training parameters used


@dataclass
class _SplitCounts:
    train_positive: int = 0
    train_negative: int = 0
    holdout_positive: int = 0
    holdout_negative: int = 0


def train_classifier(
    positives: Iterable[str],
    negatives: Iterable[str],
    *,
    holdout: float = 0.1,
    seed: int = 0,
    label_positive: str = "hq",
    label_negative: str = "lq",
    epoch: int = 5,
    lr: float = 0.1,
    word_ngrams: int = 2,
    dim: int = 64,
    min_count: int = 1,
    bucket: int = 2_000_000,
    workdir: str,
) -> TrainedClassifier:
    """Train a binary fastText classifier (positives vs negatives) into ``workdir/model.bin``.

    ``holdout`` of the texts (chosen by a hash of seed and text, so the same text always lands
    on the same side) are kept out of training and used to measure precision, recall, F1 and
    accuracy of the positive label at probability threshold 0.5. ``workdir`` is a local folder
    (created if needed); it also receives ``train.txt`` and ``holdout.txt`` in fastText format.
    Texts are streamed to disk, so memory holds only a few integers per text.

    ``bucket`` is fastText's number of hash buckets for word n-grams: the model file is about
    ``bucket × dim × 4`` bytes (512 MB at the defaults, as DCLM trains); a smaller one makes
    a much smaller model for small training sets.
    """
    _check_arguments(holdout, seed, label_positive, label_negative)
    os.makedirs(workdir, exist_ok=True)
    staging = os.path.join(workdir, "staging.txt")
    train_path = os.path.join(workdir, "train.txt")
    holdout_path = os.path.join(workdir, "holdout.txt")

    counts = _SplitCounts()
    with open(staging, "wb") as staged, open(holdout_path, "wb") as held:
        train_lines = _stage(positives, label_positive, True, seed, holdout, staged, held, counts)
        train_lines += _stage(negatives, label_negative, False, seed, holdout, staged, held, counts)
    _check_counts(counts, label_positive, label_negative)
    _write_in_hash_order(staging, train_lines, train_path)
    os.remove(staging)

    params = {
        "holdout": holdout, "seed": seed, "epoch": epoch, "lr": lr, "word_ngrams": word_ngrams,
        "dim": dim, "min_count": min_count, "bucket": bucket,
    }
    model_path = os.path.join(workdir, MODEL_FILE)
    _fit(train_path, model_path, params)
    model = _load(model_path)

    try:
        metrics = evaluate(model, holdout_path, label_positive)
    except RuntimeError as error:  # fastText raises "Encountered NaN." for a diverged model
        raise TrainingError(
            f"the trained model does not predict ({error}): training diverged; lower lr "
            f"(was {lr}) or epoch (was {epoch})"
        ) from error
    metrics.update(vars(counts))
    return TrainedClassifier(
        path=model_path,
        sha256=file_sha256(model_path),
        metrics=metrics,
        labels=(label_positive, label_negative),
        params=params,
    )


def _check_arguments(holdout: float, seed: int, label_positive: str, label_negative: str) -> None:
    if not 0 <= seed < 2**31:
        raise TrainingError(f"seed must be in [0, 2**31) (fastText's seed is a C int); got {seed}")
    if not 0.0 <= holdout < 1.0:
        raise TrainingError(f"holdout is the held-out fraction, in [0, 1); got {holdout}")
    for name, label in (("label_positive", label_positive), ("label_negative", label_negative)):
        if not label or any(c.isspace() for c in label) or label.startswith(LABEL_PREFIX):
            raise TrainingError(
                f"{name} must be a non-empty word without spaces or the {LABEL_PREFIX!r} prefix; "
                f"got {label!r}"
            )
    if label_positive == label_negative:
        raise TrainingError(f"label_positive and label_negative are both {label_positive!r}")


def _stage(
    texts: Iterable[str],
    label: str,
    positive: bool,
    seed: int,
    holdout: float,
    staged: IO[bytes],
    held: IO[bytes],
    counts: _SplitCounts,
) -> list[tuple[int, int, int]]:
    """Write each text as a fastText line: held-out ones to ``held``; training ones to
    ``staged``, returning (order hash, offset, length) of each so they can be reordered."""
    train_lines: list[tuple[int, int, int]] = []
    offset = staged.tell()
    for text in texts:
        line = one_line(text)
        if not line:
            continue  # an empty text teaches nothing and fastText would skip it anyway
        formatted = f"{LABEL_PREFIX}{label} {line}\n".encode("utf-8")
        if is_held_out(line, seed, holdout):
            held.write(formatted)
            if positive:
                counts.holdout_positive += 1
            else:
                counts.holdout_negative += 1
            continue
        train_lines.append((_order_hash(formatted, seed), offset, len(formatted)))
        staged.write(formatted)
        offset += len(formatted)
        if positive:
            counts.train_positive += 1
        else:
            counts.train_negative += 1
    return train_lines


def _check_counts(counts: _SplitCounts, label_positive: str, label_negative: str) -> None:
    if counts.train_positive == 0 or counts.train_negative == 0:
        raise TrainingError(
            f"training needs texts of both classes; the training split has "
            f"{counts.train_positive} {label_positive!r} (positive) and "
            f"{counts.train_negative} {label_negative!r} (negative) texts"
        )


def _write_in_hash_order(staging: str, lines: list[tuple[int, int, int]], target: str) -> None:
    """Interleave the classes in a seeded, stable order: single-threaded SGD sees them mixed,
    not all positives first."""
    lines.sort()
    with open(staging, "rb") as source, open(target, "wb") as out:
        for _, offset, length in lines:
            source.seek(offset)
            out.write(source.read(length))


def _fit(train_path: str, model_path: str, params: dict[str, Any]) -> None:
    """Train in a fresh Python process with zero-filled allocations, and save the model.

    Why not in this process: with ``thread=1`` fastText initialises only the first tenth of
    its input matrix (``DenseMatrix::uniform`` fills one block per thread, of ten) and leaves
    the rest as whatever the allocator returns. In a fresh process that is zero pages; in a
    process that has freed memory before it is garbage, so models differ from run to run and
    training can diverge ("Encountered NaN"). The child asks glibc to zero every allocation
    (``M_PERTURB``), so the result depends only on the data and parameters.
    """
    request = {"train": train_path, "model": model_path, "params": params}
    completed = subprocess.run(
        [sys.executable, "-m", __name__, json.dumps(request)],
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        raise TrainingError(
            f"fastText training failed (exit status {completed.returncode}): "
            f"{completed.stderr.strip()[-2000:]}"
        )


def _zero_filled_allocations() -> None:
    """glibc's M_PERTURB = 0xFF: every malloc'd byte starts as ~0xFF = 0 (no-op elsewhere)."""
    try:
        ctypes.CDLL(None).mallopt(_M_PERTURB, 0xFF)
    except (OSError, AttributeError):
        pass  # not glibc: a fresh process still gets zero pages for large allocations


def _train_here(train_path: str, model_path: str, params: dict[str, Any]) -> None:
    """The child process's work (see :func:`_fit`)."""
    _zero_filled_allocations()
    import fasttext

    model = fasttext.train_supervised(
        input=train_path,
        epoch=params["epoch"],
        lr=params["lr"],
        wordNgrams=params["word_ngrams"],
        dim=params["dim"],
        minCount=params["min_count"],
        bucket=params["bucket"],
        thread=1,  # one thread: multi-threaded (Hogwild) training is not reproducible
        seed=params["seed"],
        verbose=0,
    )
    model.save_model(model_path)


def _load(model_path: str):
    import fasttext

    return fasttext.load_model(model_path)


def _read_labelled(path: str) -> Iterator[list[tuple[str, str]]]:
    """(label, text) pairs of a fastText-format file, in batches."""
    batch: list[tuple[str, str]] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            label, _, text = line.rstrip("\n").partition(" ")
            batch.append((label[len(LABEL_PREFIX):], text))
            if len(batch) == _PREDICT_BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def positive_probabilities(model, texts: list[str], label_positive: str) -> list[float]:
    """The probability of ``label_positive`` for each (one-line) text."""
    wanted = LABEL_PREFIX + label_positive
    all_labels, all_probs = model.predict(texts, k=-1)
    out = []
    for labels, probs in zip(all_labels, all_probs):
        out.append(next((float(p) for lab, p in zip(labels, probs) if lab == wanted), 0.0))
    return out


def evaluate(model, holdout_path: str, label_positive: str) -> dict[str, Any]:
    """Precision, recall, F1 and accuracy of the positive label on a fastText-format file.

    A metric whose denominator is zero (no held-out texts, nothing predicted positive) is None.
    """
    tp = fp = fn = tn = 0
    for batch in _read_labelled(holdout_path):
        scores = positive_probabilities(model, [text for _, text in batch], label_positive)
        for (label, _), score in zip(batch, scores):
            predicted = score >= DECISION_THRESHOLD
            actual = label == label_positive
            tp += predicted and actual
            fp += predicted and not actual
            fn += actual and not predicted
            tn += not predicted and not actual
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = None
    if precision is not None and recall is not None and precision + recall > 0:
        f1 = 2 * precision * recall / (precision + recall)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": _ratio(tp + tn, tp + fp + fn + tn),
        "threshold": DECISION_THRESHOLD,
    }


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


if __name__ == "__main__":  # the training child process: see _fit
    _request = json.loads(sys.argv[1])
    _train_here(_request["train"], _request["model"], _request["params"])
