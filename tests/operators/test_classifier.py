"""fastText quality classifiers: training (held-out metrics, reproducibility) and the
``fasttext_classifier`` operator (score fields, thresholds, sha256 pinning, model roots).

Real models, trained here on real text: English paragraphs of the Debian Reference are the
positives ("hq"); the same paragraphs with their words shuffled are the negatives ("lq").
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
from pathlib import Path

import fsspec
import pyarrow as pa
import pytest

from recipeflow.operators.models.fasttext_training import (
    TrainingError,
    evaluate,
    is_held_out,
    one_line,
    train_classifier,
)
from recipeflow.operators.fasttext_classifier import (
    FastTextClassifier,
    ModelChecksumMismatch,
    ModelResolutionError,
    UnknownLabel,
    resolve_model,
)
from recipeflow.operators.models.fasttext_models import load_model, local_copy
from tests.conftest import CORPORA

# Small hash tables keep the test models a few MB (the default makes 512 MB files).
SMALL = {"bucket": 20_000, "dim": 32}


def english_paragraphs() -> list[str]:
    with gzip.open(CORPORA / "debian-reference.jsonl.gz", "rt") as f:
        chapters = [json.loads(line) for line in f]
    return [
        p for c in chapters if c["lang"] == "en" for p in c["text"].split("\n") if len(p.split()) >= 8
    ]


def shuffled_words(paragraphs: list[str], seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for p in paragraphs:
        words = p.split()
        rng.shuffle(words)
        out.append(" ".join(words))
    return out


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[str]]:
    positives = english_paragraphs()
    return {"positives": positives, "negatives": shuffled_words(positives)}


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """A model trained once for the module, and a copy named quality.bin."""
    workdir = tmp_path_factory.mktemp("train")
    result = train_classifier(corpus["positives"], corpus["negatives"], workdir=str(workdir), **SMALL)
    named = workdir / "quality.bin"
    shutil.copy(result.path, named)
    return result, str(named)


def batch_of(texts: list[str]) -> pa.Table:
    return pa.table({"id": [f"t{i}" for i in range(len(texts))], "text": texts})


def held_out_texts(corpus, count: int) -> tuple[list[str], list[str]]:
    """Paragraphs the model never saw (the default split: seed 0, 10%), real and shuffled."""
    real = [p for p in corpus["positives"] if is_held_out(one_line(p), 0, 0.1)][:count]
    fake = [p for p in corpus["negatives"] if is_held_out(one_line(p), 0, 0.1)][:count]
    return real, fake


# -- training -------------------------------------------------------------------------------------


def test_training_reports_metrics_on_the_held_out_split(trained, corpus):
    result, _ = trained
    m = result.metrics
    total = len(corpus["positives"]) + len(corpus["negatives"])
    assert m["train_positive"] + m["holdout_positive"] == len(corpus["positives"])
    assert m["train_negative"] + m["holdout_negative"] == len(corpus["negatives"])
    held = m["holdout_positive"] + m["holdout_negative"]
    assert 0.07 * total < held < 0.13 * total
    assert m["threshold"] == 0.5
    # Word order is all that separates the classes: bigrams learn it, well above chance.
    assert m["precision"] > 0.7 and m["recall"] > 0.7 and m["accuracy"] > 0.7
    assert m["f1"] == pytest.approx(2 * m["precision"] * m["recall"] / (m["precision"] + m["recall"]))
    assert len(result.sha256) == 64 and result.labels == ("hq", "lq")

    # The metrics are those of the saved model on the held-out file, recomputed here.
    workdir = Path(result.path).parent
    again = evaluate(load_model(result.path), str(workdir / "holdout.txt"), "hq")
    assert again == {k: m[k] for k in again}
    held_lines = (workdir / "holdout.txt").read_text().splitlines()
    assert len(held_lines) == held
    assert all(line.startswith(("__label__hq ", "__label__lq ")) for line in held_lines)


def test_training_is_reproducible_and_the_seed_changes_the_split(trained, corpus, tmp_path):
    result, _ = trained
    again = train_classifier(corpus["positives"], corpus["negatives"], workdir=str(tmp_path / "a"), **SMALL)
    assert again.sha256 == result.sha256  # byte-identical model
    assert again.metrics == result.metrics
    other = train_classifier(
        corpus["positives"], corpus["negatives"], seed=1, workdir=str(tmp_path / "b"), **SMALL
    )
    assert other.metrics["holdout_positive"] != result.metrics["holdout_positive"]


def test_training_needs_both_classes(tmp_path):
    with pytest.raises(TrainingError, match="both classes.*0 'lq'"):
        train_classifier(["a fine text"] * 5, [], workdir=str(tmp_path))
    with pytest.raises(TrainingError, match="holdout"):
        train_classifier(["a"], ["b"], holdout=1.0, workdir=str(tmp_path))


# -- the operator ---------------------------------------------------------------------------------


def test_classifier_writes_a_score_field_per_label(trained, corpus):
    _, model = trained
    real, fake = held_out_texts(corpus, 40)
    op = FastTextClassifier({"model": model})
    out = op.process(batch_of(real + fake)).kept
    assert len(out) == 80  # no thresholds: annotate only
    assert out.column_names == ["id", "text", "quality_hq", "quality_lq"]
    hq = out.column("quality_hq").to_pylist()
    lq = out.column("quality_lq").to_pylist()
    assert all(0.0 <= s <= 1.0 for s in hq)
    assert all(abs(a + b - 1.0) < 1e-3 for a, b in zip(hq, lq))
    # Real paragraphs score higher than shuffled ones, on text the model never saw.
    assert sum(hq[:40]) / 40 > sum(hq[40:]) / 40 + 0.3

    # Line breaks are spaces to the model (as in DCLM); `labels` limits the fields.
    text = real[0]
    broken = text.replace(" ", "\n", 3)
    only_hq = FastTextClassifier({"model": model, "labels": ["__label__hq"], "field_prefix": "dclm_"})
    scores = only_hq.process(batch_of([text, broken])).kept
    assert scores.column_names == ["id", "text", "dclm_hq"]
    first, second = scores.column("dclm_hq").to_pylist()
    assert first == pytest.approx(second)


def test_classifier_thresholds_drop_with_reason_and_statistic(trained, corpus):
    _, model = trained
    real, fake = held_out_texts(corpus, 30)
    op = FastTextClassifier({"model": model, "min_scores": {"hq": 0.5}})
    result = op.process(batch_of(real + fake))
    kept = result.kept.to_pylist()
    rejected = result.rejected.to_pylist()
    assert len(kept) + len(rejected) == 60 and kept and rejected
    assert all(r["quality_hq"] >= 0.5 for r in kept)
    for r in rejected:
        assert r["reject_reason"] == "hq_score_below_min"
        assert r["reject_statistic"] == "quality_hq"
        assert r["reject_value"] == r["quality_hq"] < 0.5
        assert r["rejected_by"] == "fasttext_classifier"
    assert sum(r["text"] in fake for r in rejected) > sum(r["text"] in real for r in rejected)

    # annotate() decides without dropping: what `analyze` shows.
    annotated, decisions = op.annotate(batch_of(real + fake))
    assert len(annotated) == 60 and sum(d is not None for d in decisions) == len(rejected)


def test_classifier_pins_the_model_by_sha256(trained):
    result, model = trained
    ok = FastTextClassifier({"model": model, "sha256": result.sha256.upper()})
    assert len(ok.process(batch_of(["some text here"])).kept) == 1
    assert ok.provenance()["sha256"] == result.sha256
    assert ok.provenance()["model_path"] == model

    wrong = FastTextClassifier({"model": model, "sha256": "0" * 64})
    with pytest.raises(ModelChecksumMismatch, match=f"has sha256 {result.sha256}, but the recipe pins"):
        wrong.process(batch_of(["some text here"]))
    with pytest.raises(ValueError, match="64 hexadecimal digits"):
        FastTextClassifier({"model": model, "sha256": "abc"})


def test_classifier_errors_for_unknown_labels_and_missing_models(trained, tmp_path):
    _, model = trained
    with pytest.raises(UnknownLabel, match="no label 'good'; its labels are: hq, lq"):
        FastTextClassifier({"model": model, "min_scores": {"good": 0.5}}).process(batch_of(["x y"]))
    with pytest.raises(ModelResolutionError, match="not found"):
        FastTextClassifier({"model": str(tmp_path / "nope.bin")}).process(batch_of(["x y"]))
    with pytest.raises(ValueError, match="probability in \\[0, 1\\]"):
        FastTextClassifier({"model": model, "min_scores": {"hq": 2}})


def test_classifier_reads_models_from_any_fsspec_path(trained, tmp_path):
    result, model = trained
    # A URL of its own: local_copy caches downloads by URL, across runs.
    url = f"memory://models/{tmp_path.name}/remote-quality.bin"
    with open(model, "rb") as source, fsspec.open(url, "wb") as target:
        target.write(source.read())
    op = FastTextClassifier({"model": url})
    out = op.process(batch_of(["Debian is a free operating system."])).kept
    assert out.column_names[-2:] == ["remote_quality_hq", "remote_quality_lq"]
    assert op.provenance()["sha256"] == result.sha256
    os.remove(local_copy(url))  # the downloaded copy, so runs leave no files behind


def commit_model_version(root: Path, version: str, model: str, created_at: str | None) -> None:
    """A model version as training commits it: model.bin, then manifest.json (if committed)."""
    folder = root / "versions" / version
    folder.mkdir(parents=True)
    shutil.copy(model, folder / "model.bin")
    if created_at is not None:
        (folder / "manifest.json").write_text(json.dumps({"version": version, "created_at": created_at}))


def test_classifier_resolves_model_roots_and_versions(trained, corpus, tmp_path):
    result, model = trained
    later = train_classifier(
        corpus["positives"][:800], corpus["negatives"][:800], epoch=2, workdir=str(tmp_path / "t2"), **SMALL
    )
    root = tmp_path / "quality-model"
    # Names sort the other way round from creation times: order comes from the manifests.
    commit_model_version(root, "b-first", model, "2026-01-01T00:00:00+00:00")
    commit_model_version(root, "a-second", later.path, "2026-02-01T00:00:00+00:00")
    commit_model_version(root, "c-unfinished", model, None)  # no manifest: not committed

    latest = FastTextClassifier({"model": str(root)})
    assert latest.provenance()["model_version"] == "a-second"
    assert latest.provenance()["sha256"] == later.sha256
    assert latest.field_prefix == "quality_model_"
    pinned = FastTextClassifier({"model": f"{root}@b-first"})
    assert pinned.provenance()["sha256"] == result.sha256
    assert pinned.resolved.path.endswith("versions/b-first/model.bin")

    texts = ["Debian is a free operating system.", "system free a operating is Debian."]
    direct = FastTextClassifier({"model": later.path, "field_prefix": "q_"}).process(batch_of(texts)).kept
    via_root = FastTextClassifier({"model": str(root), "field_prefix": "q_"}).process(batch_of(texts)).kept
    assert direct.column("q_hq").to_pylist() == via_root.column("q_hq").to_pylist()

    with pytest.raises(ModelResolutionError, match="no committed version 'c-unfinished'; committed versions: b-first, a-second"):
        resolve_model(f"{root}@c-unfinished")
    empty = tmp_path / "empty-root"
    (empty / "versions").mkdir(parents=True)
    with pytest.raises(ModelResolutionError, match="has no committed version"):
        resolve_model(str(empty))
