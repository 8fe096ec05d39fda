"""``model_classifier`` with real forward passes: a tiny Hugging Face regression model made
here, and heads trained on the bundled MiniLM's embeddings."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from recipeflow.operators.base import Resource
from recipeflow.operators.embed import Embed
from recipeflow.operators.model_classifier import ModelClassifier, ModelClassifierError
from recipeflow.operators.models.classifier_head import HeadFormatError, load_head
from recipeflow.operators.models.classifier_training import NotEnoughGradedDocuments, train_head
from recipeflow.operators.models.embedding_models import bundled_minilm_path
from tests.operators.corpora import handbook_paragraphs, stdlib_paragraphs


def batch(texts) -> pa.Table:
    return pa.table({"id": [f"d{i}" for i in range(len(texts))], "text": list(texts)})


@pytest.fixture(scope="module")
def tiny_regressor(tmp_path_factory):
    """A 2-layer BERT regression model (FineWeb-Edu's head shape: one output) with MiniLM's
    tokenizer, saved with save_pretrained."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(bundled_minilm_path())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                        num_labels=1, problem_type="regression")
    model = BertForSequenceClassification(config).eval()
    with torch.no_grad():  # scores around 2.5 with a spread, so rounding and clipping matter
        model.classifier.weight.mul_(20.0)
        model.classifier.bias.fill_(2.5)
    folder = tmp_path_factory.mktemp("models") / "tiny-edu"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder, model, tokenizer


TEXTS = handbook_paragraphs()[:6] + stdlib_paragraphs()[:6]


def test_huggingface_regression_scores_match_a_direct_forward_pass(tiny_regressor):
    import torch

    folder, model, tokenizer = tiny_regressor
    op = ModelClassifier({"model": str(folder), "batch_size": 4, "max_length": 64})
    assert op.resource is Resource.gpu
    annotated, decisions = op.annotate(batch(TEXTS))
    with torch.no_grad():
        encoded = tokenizer(TEXTS, padding=True, truncation=True, max_length=64, return_tensors="pt")
        expected = model(**encoded).logits[:, 0].numpy()
    scores = np.array(annotated.column("stat_score").to_pylist())
    assert np.allclose(scores, expected, atol=1e-4)
    assert annotated.column("stat_int_score").to_pylist() == [
        int(round(max(0, min(s, 5)))) for s in expected.tolist()]  # FineWeb-Edu's int_score
    assert decisions == [None] * len(TEXTS)
    assert op.provenance()["kind"] == "huggingface" and len(op.provenance()["sha256"]) == 64


def test_thresholds_drop_with_reasons_and_names_are_configurable(tiny_regressor):
    folder, _, _ = tiny_regressor
    scores = ModelClassifier({"model": str(folder), "max_length": 64}).scores(batch(TEXTS))[0]
    cut = float(np.median(scores))
    op = ModelClassifier({"model": str(folder), "score_field": "edu", "int_score_field": "edu_int",
                          "min_score": cut, "max_length": 64})
    result = op.process(batch(TEXTS))
    kept = result.kept.column("stat_edu").to_pylist()
    assert all(v >= cut for v in kept) and len(kept) == int(np.sum(scores >= cut))
    rejected = result.rejected
    assert rejected is not None and len(rejected) + len(kept) == len(TEXTS)
    assert set(rejected.column("reject_reason").to_pylist()) == {"edu_below_min"}
    assert op.thresholds() == {"edu": {"min_score": cut}}


def test_wrong_or_missing_model_is_an_error_naming_the_field(tmp_path, tiny_regressor):
    from transformers import BertConfig, BertModel

    with pytest.raises(ModelClassifierError, match="`model`.*not found"):
        ModelClassifier({"model": str(tmp_path / "nowhere")}).provenance()
    encoder_only = tmp_path / "encoder"
    BertModel(BertConfig(vocab_size=100, hidden_size=8, num_hidden_layers=1,
                         num_attention_heads=1, intermediate_size=8)).save_pretrained(encoder_only)
    with pytest.raises(ModelClassifierError, match="not a sequence-classification model"):
        ModelClassifier({"model": str(encoder_only)}).provenance()
    not_a_head = tmp_path / "weights.safetensors"
    from safetensors.numpy import save_file

    save_file({"x": np.zeros(3, np.float32)}, str(not_a_head))
    with pytest.raises(HeadFormatError, match="without recipeflow head metadata"):
        ModelClassifier({"model": str(not_a_head)}).provenance()


# -- trained heads ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graded():
    """Handbook paragraphs graded 4, standard-library docstrings graded 1 (stand-ins for an
    LLM's grades)."""
    handbook, stdlib = handbook_paragraphs()[:80], stdlib_paragraphs()[:80]
    texts = handbook + stdlib
    grades = [4.0] * len(handbook) + [1.0] * len(stdlib)
    ids = [f"h{i}" for i in range(len(handbook))] + [f"s{i}" for i in range(len(stdlib))]
    return texts, grades, ids


@pytest.fixture(scope="module")
def embedded(graded):
    """The graded texts' MiniLM embeddings and the model's sha256, computed once."""
    from recipeflow.operators.models.embedding_models import encoder

    enc = encoder("all-minilm-l6-v2")
    return enc.encode(graded[0]), enc.sha256


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_trained_head_learns_the_grades(tmp_path, graded, embedded, task):
    texts, grades, ids = graded
    if task == "regression":  # from texts: the encoder runs inside train_head
        result = train_head(grades, texts=texts, ids=ids, task=task)
    else:
        result = train_head(grades, embeddings=embedded[0], embedding_sha256=embedded[1],
                            ids=ids, task=task)
    m = result.metrics
    assert m["holdout_documents"] == 32 and m["train_documents"] == 128
    # Exact-grade accuracy is harder for a regression (a 3.4 misses the 4).
    assert m["accuracy"] >= (0.75 if task == "regression" else 0.9)
    assert m["f1_binary"] >= 0.9 and m["spearman"] >= 0.8
    assert not set(result.train_ids) & set(result.holdout_ids)
    path = tmp_path / "head.safetensors"
    result.head.save(str(path))
    meta = load_head(str(path))
    assert meta.embedding_model == "all-minilm-l6-v2" and meta.dim == 384
    assert meta.training["metrics"]["accuracy"] == m["accuracy"]

    op = ModelClassifier({"model": str(path), "min_int_score": 3})
    held = [t for t, i in zip(texts, ids) if i in set(result.holdout_ids)]
    truth = [g for g, i in zip(grades, ids) if i in set(result.holdout_ids)]
    annotated, decisions = op.annotate(batch(held))
    predicted = annotated.column("stat_int_score").to_pylist()
    assert np.mean(np.array(predicted) == np.array(truth)) == pytest.approx(m["accuracy"])
    assert [d is None for d in decisions] == [p >= 3 for p in predicted]
    assert op.provenance()["embedding_sha256"] == meta.embedding_sha256


def test_head_reads_embeddings_written_by_embed(tmp_path, graded, embedded):
    texts, grades, ids = graded
    result = train_head(grades, embeddings=embedded[0], embedding_sha256=embedded[1], ids=ids)
    path = tmp_path / "head.safetensors"
    result.head.save(str(path))
    embedded = Embed({}).process(batch(texts[:20])).kept
    from_column = ModelClassifier({"model": str(path), "embedding_field": "embedding"})
    from_text = ModelClassifier({"model": str(path)})
    a = from_column.annotate(embedded)[0].column("stat_score").to_numpy()
    b = from_text.annotate(batch(texts[:20]))[0].column("stat_score").to_numpy()
    assert np.allclose(a, b, atol=1e-5)


def test_head_against_another_encoder_or_dimension_is_an_error(tmp_path, graded, embedded):
    texts, grades, ids = graded
    head = train_head(grades, embeddings=embedded[0], embedding_sha256=embedded[1], ids=ids).head
    head.embedding_sha256 = "0" * 64
    path = tmp_path / "other.safetensors"
    head.save(str(path))
    with pytest.raises(ModelClassifierError, match="`model`.*sha256"):
        ModelClassifier({"model": str(path)}).provenance()
    head = train_head(grades, embeddings=np.random.default_rng(0).normal(size=(len(grades), 16)),
                      ids=ids, embedding_sha256=embedded[1]).head
    path = tmp_path / "small.safetensors"
    head.save(str(path))
    with pytest.raises(ModelClassifierError, match="expects 16-dimensional embeddings.*384"):
        ModelClassifier({"model": str(path)}).provenance()
    # Embeddings of the wrong size in the documents: named too.
    small = pa.table({"id": ["a"], "text": ["x"],
                      "embedding": pa.array([[0.0] * 8], pa.list_(pa.float32(), 8))})
    head = train_head(grades, embeddings=np.random.default_rng(0).normal(size=(len(grades), 384)),
                      ids=ids, embedding_sha256=embedded[1]).head
    head.save(str(path))
    with pytest.raises(ValueError, match="8-dimensional.*384 are expected"):
        ModelClassifier({"model": str(path), "embedding_field": "embedding"}).process(small)


def test_model_root_versions(tmp_path, graded, embedded):
    texts, grades, ids = graded
    root = tmp_path / "edu"
    for version, created in (("v1", "2026-01-01"), ("v2", "2026-02-01")):
        folder = root / "versions" / version
        folder.mkdir(parents=True)
        train_head(grades, embeddings=embedded[0], embedding_sha256=embedded[1], ids=ids,
                   seed=len(version + created)).head.save(
            str(folder / "head.safetensors"))
        (folder / "manifest.json").write_text(json.dumps({"created_at": created}))
    (root / "versions" / "v3").mkdir()  # not committed: no manifest
    assert ModelClassifier({"model": str(root)}).provenance()["model_version"] == "v2"
    assert ModelClassifier({"model": f"{root}@v1"}).provenance()["model_version"] == "v1"
    with pytest.raises(ModelClassifierError, match="no committed version 'v3'"):
        ModelClassifier({"model": f"{root}@v3"}).provenance()


def test_too_few_graded_documents_for_a_holdout_split():
    from recipeflow.operators.models.classifier_training import check_split

    assert check_split(160) == (128, 32)
    with pytest.raises(NotEnoughGradedDocuments, match="`train`: 40 graded documents"):
        check_split(40)
    with pytest.raises(NotEnoughGradedDocuments, match="`train`.*too few.*held-out set would have"):
        train_head([1.0, 4.0] * 10, embeddings=np.eye(20, 8), embedding_sha256="0" * 64)


def test_training_from_a_table_of_graded_documents(graded, embedded):
    from recipeflow.operators.embed import vectors_to_arrow
    from recipeflow.operators.models.classifier_training import train_head_from_documents

    texts, grades, ids = graded
    table = pa.table({"id": ids, "text": texts, "grade": grades[:-1] + [None],
                      "__embedding": vectors_to_arrow(embedded[0])})
    result = train_head_from_documents(table, embedding_field="embedding",
                                       embedding_sha256=embedded[1], task="classification")
    assert result.metrics["train_documents"] + result.metrics["holdout_documents"] == len(ids) - 1
    assert result.metrics["accuracy"] >= 0.9
    with pytest.raises(ValueError, match="`train`.*no field 'score'"):
        train_head_from_documents(table, grade_field="score")
