"""``embed`` with the bundled all-MiniLM-L6-v2, on the CPU."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest

from recipeflow.operators import registry
from recipeflow.operators.base import Resource
from recipeflow.operators.embed import Embed
from recipeflow.operators.models.embedding_models import (
    BUNDLED_MINILM,
    EmbeddingModelError,
    bundled_minilm_path,
    embedding_column,
    embeddings_matrix,
)

TEXTS = [
    "The cat sits on the mat.",
    "A cat is sitting on a mat.",
    "Install the package with apt-get and configure the network interface.",
    "",
]


def batch(texts=TEXTS) -> pa.Table:
    return pa.table({"id": [f"d{i}" for i in range(len(texts))], "text": texts})


def test_registered_on_the_gpu_pool():
    assert registry.get("embed") is Embed
    assert Embed.resource is Resource.gpu


def test_bundled_model_is_extracted_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RECIPEFLOW_MODEL_CACHE", str(tmp_path))
    first = bundled_minilm_path()
    assert os.path.dirname(first) == str(tmp_path)
    assert os.path.isfile(os.path.join(first, "model.safetensors"))
    stamp = os.stat(os.path.join(first, "config.json")).st_mtime_ns
    assert bundled_minilm_path() == first
    assert os.stat(os.path.join(first, "config.json")).st_mtime_ns == stamp
    # No partial extraction folder is left behind.
    assert os.listdir(tmp_path) == [os.path.basename(first)]


def test_working_column_by_default_and_similar_texts_close():
    op = Embed({})
    out = op.process(batch()).kept
    assert "embedding" not in out.column_names
    assert out.schema.field("__embedding").type == pa.list_(pa.float32(), 384)
    vectors = embeddings_matrix(out.column("__embedding"), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > 0.9 > 0.3 > similarity[0, 2]
    assert embedding_column(out.column_names, "embedding") == "__embedding"


def test_keep_writes_the_field_and_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    out = Embed({"keep": True, "batch_size": 2}).process(batch()).kept
    mine = embeddings_matrix(out.column("embedding"), 384)
    reference = SentenceTransformer(bundled_minilm_path(), device="cpu").encode(
        TEXTS, normalize_embeddings=True)
    assert np.allclose(mine, reference, atol=1e-5)


def test_plain_transformers_folder_is_mean_pooled(tmp_path):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    source = bundled_minilm_path()
    plain = tmp_path / "plain"  # the same weights without the sentence-transformers files
    AutoModel.from_pretrained(source).save_pretrained(plain)
    AutoTokenizer.from_pretrained(source).save_pretrained(plain)
    out = Embed({"model": str(plain), "max_length": 256}).process(batch()).kept
    reference = SentenceTransformer(source, device="cpu").encode(TEXTS, normalize_embeddings=True)
    assert np.allclose(embeddings_matrix(out.column("__embedding"), 384), reference, atol=1e-4)


def test_provenance_names_the_weights_sha256():
    facts = Embed({}).provenance()
    assert facts["model"] == BUNDLED_MINILM and len(facts["sha256"]) == 64 and facts["dim"] == 384
    assert facts["column"] == "__embedding"


def test_missing_or_wrong_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(EmbeddingModelError, match="`model`.*not found"):
        Embed({"model": str(tmp_path / "nowhere")}).process(batch())
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmbeddingModelError, match="no config.json"):
        Embed({"model": str(tmp_path / "empty")}).process(batch())


def test_bad_parameters():
    with pytest.raises(ValueError, match="reserved"):
        Embed({"field": "__x"})
    with pytest.raises(ValueError, match="device"):
        Embed({"device": "gpu"})
