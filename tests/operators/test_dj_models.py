"""Model files as Data-Juicer gets them (recipeflow/operators/datajuicer_models.py), with stand-in
models made here (a KenLM ARPA model, a sentencepiece model trained on the bundled sample, a
Hugging Face tokenizer trained with `tokenizers`) and a real local HTTP server: nothing is
downloaded from outside."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest

from recipeflow.operators import registry
from recipeflow.operators.models import datajuicer_models
from recipeflow.operators.models.datajuicer_models import ModelUnavailable, missing_models, required_models
from tests.operators.standin_models import (
    bundled_texts,
    serve_folder,
    write_arpa,
    write_hf_tokenizer,
    write_sentencepiece,
)


@pytest.fixture(scope="module")
def standins(tmp_path_factory) -> Path:
    """en.sp.model and en.arpa.bin (the LM over the sentencepiece pieces, as Data-Juicer's
    Wikipedia models are), and a Hugging Face tokenizer folder."""
    import sentencepiece

    folder = tmp_path_factory.mktemp("standins")
    texts = bundled_texts()
    write_sentencepiece(folder / "en.sp.model", texts)
    sp = sentencepiece.SentencePieceProcessor()
    sp.load(str(folder / "en.sp.model"))
    sentences = [sp.encode_as_pieces(line) for t in texts for line in t.splitlines() if line.strip()]
    write_arpa(folder / "en.arpa.bin", sentences)
    write_hf_tokenizer(folder / "hf-tokenizer", texts)
    return folder


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """An empty Data-Juicer model cache per test; downloads only where a test allows them."""
    cache = tmp_path / "dj-models"
    monkeypatch.setenv("DATA_JUICER_MODELS_CACHE", str(cache))
    for name in ("DATA_JUICER_EXTERNAL_MODELS_HOME", "RECIPEFLOW_DATAJUICER_MODEL_LINKS", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECIPEFLOW_OFFLINE", "1")
    datajuicer_models.load_datajuicer_kenlm.cache_clear()
    datajuicer_models.load_datajuicer_sentencepiece.cache_clear()
    datajuicer_models.load_hf_tokenizer.cache_clear()
    return cache


def _batch(texts: list[str]) -> pa.Table:
    return pa.table({"id": [str(i) for i in range(len(texts))], "text": texts})


def _install(standins: Path, cache: Path, *names: str) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    for name in names:
        (cache / name).write_bytes((standins / name).read_bytes())


TEXTS = [
    "Debian is a free operating system for your computer.",
    "The package manager installs software and keeps it up to date.",
    "zxq vbn qwrt plk",
]


def test_env_variables_choose_the_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("DATA_JUICER_MODELS_CACHE")
    monkeypatch.setenv("CACHE_HOME", str(tmp_path / "c"))
    monkeypatch.delenv("DATA_JUICER_CACHE_HOME", raising=False)
    assert datajuicer_models.models_cache() == str(tmp_path / "c" / "data_juicer" / "models")
    monkeypatch.setenv("DATA_JUICER_CACHE_HOME", str(tmp_path / "dj"))
    assert datajuicer_models.models_cache() == str(tmp_path / "dj" / "models")
    monkeypatch.setenv("DATA_JUICER_MODELS_CACHE", str(tmp_path / "m"))
    assert datajuicer_models.models_cache() == str(tmp_path / "m")


def test_perplexity_filter_with_cached_standins(standins, isolated_cache):
    import kenlm
    import sentencepiece

    _install(standins, isolated_cache, "en.sp.model", "en.arpa.bin")
    op = registry.get("perplexity_filter")({"lang": "en", "max_ppl": 900})
    values = op.compute_stats(_batch(TEXTS))["perplexity"]
    # Data-Juicer's formula, computed here directly on the same models.
    sp = sentencepiece.SentencePieceProcessor()
    sp.load(str(standins / "en.sp.model"))
    lm = kenlm.Model(str(standins / "en.arpa.bin"))
    for text, value in zip(TEXTS, values):
        words = " ".join(sp.encode_as_pieces(text))
        expected = round(10 ** (-lm.score(words) / (len(words.split()) + 1)), 1)
        assert value == pytest.approx(expected)
    assert values[2] > values[0]  # nonsense is less likely than handbook prose
    result = op.process(_batch(TEXTS))
    assert len(result.kept) + (0 if result.rejected is None else len(result.rejected)) == 3


def test_offline_error_names_the_file_where_to_put_it_and_its_source(isolated_cache):
    op = registry.get("perplexity_filter")({"lang": "xx"})
    with pytest.raises(ModelUnavailable) as error:
        op.compute_stats(_batch(TEXTS))
    message = str(error.value)
    assert "'xx.arpa.bin'" in message
    assert str(isolated_cache / "xx.arpa.bin") in message
    assert "https://huggingface.co/edugp/kenlm/resolve/main/wikipedia/xx.arpa.bin" in message
    assert "model_path" in message and "DATA_JUICER_EXTERNAL_MODELS_HOME" in message


def test_missing_model_is_fetched_over_http_into_the_cache(standins, isolated_cache, tmp_path, monkeypatch):
    empty = tmp_path / "empty-host"
    empty.mkdir()
    with serve_folder(empty) as first, serve_folder(standins) as backup:
        # The first host lacks the files (404), the backup has them, as Data-Juicer tries both.
        monkeypatch.setenv("RECIPEFLOW_DATAJUICER_MODEL_LINKS", f"{first} {backup}")
        monkeypatch.delenv("RECIPEFLOW_OFFLINE")
        op = registry.get("words_num_filter")({"lang": "en", "tokenization": True, "min_num": 5})
        counts = op.compute_stats(_batch(TEXTS))["num_words"]
    assert (isolated_cache / "en.sp.model").read_bytes() == (standins / "en.sp.model").read_bytes()
    recorded = (isolated_cache / "en.sp.model.sha256").read_text().split()[0]
    assert recorded == datajuicer_models.file_sha256(str(standins / "en.sp.model"))
    assert all(c > 0 for c in counts)


def test_a_download_that_does_not_load_never_lands(isolated_cache, tmp_path, monkeypatch):
    host = tmp_path / "bad-host"
    host.mkdir()
    (host / "en.sp.model").write_bytes(b"not a sentencepiece model")
    with serve_folder(host) as url:
        monkeypatch.setenv("RECIPEFLOW_DATAJUICER_MODEL_LINKS", url)
        monkeypatch.delenv("RECIPEFLOW_OFFLINE")
        with pytest.raises(ModelUnavailable, match="does not load"):
            datajuicer_models.load_datajuicer_sentencepiece("en")
    assert not (isolated_cache / "en.sp.model").exists()


def test_checksum_mismatch_is_refetched(standins, isolated_cache, monkeypatch):
    _install(standins, isolated_cache, "en.sp.model")
    (isolated_cache / "en.sp.model.sha256").write_text("0" * 64 + "  en.sp.model\n")
    with pytest.raises(ModelUnavailable, match="SHA-256"):  # offline: cannot replace it
        datajuicer_models.load_datajuicer_sentencepiece("en")
    with serve_folder(standins) as url:
        monkeypatch.setenv("RECIPEFLOW_DATAJUICER_MODEL_LINKS", url)
        monkeypatch.delenv("RECIPEFLOW_OFFLINE")
        (isolated_cache / "en.sp.model.sha256").unlink()
        (isolated_cache / "en.sp.model").write_bytes(b"truncated")
        assert datajuicer_models.load_datajuicer_sentencepiece("en").get_piece_size() > 0


def test_external_models_home_is_searched_first(standins, monkeypatch, tmp_path):
    monkeypatch.setenv("DATA_JUICER_EXTERNAL_MODELS_HOME", os.pathsep.join([str(tmp_path / "nothing"), str(standins)]))
    assert datajuicer_models.find_model("en.arpa.bin") == str(standins / "en.arpa.bin")
    assert required_models("perplexity_filter", {"lang": "en"})[0].path == str(standins / "en.arpa.bin")


def test_remove_words_mapper_tokenized(standins, isolated_cache):
    _install(standins, isolated_cache, "en.sp.model")
    op = registry.get("remove_words_with_incorrect_substrings_mapper")({"tokenization": True})
    text = "see http://www.debian.org for details"
    out = op.map_text(text)
    assert "http" not in out and "details" in out


def test_required_and_missing_models_for_validate(standins, isolated_cache):
    steps = [
        ("perplexity_filter", {"lang": "en"}),
        ("words_num_filter", {"lang": "en", "tokenization": True}),
        ("stopwords_filter", {"lang": "en"}),  # no tokenization: no model
        ("alphanumeric_filter", {"tokenization": True, "hf_tokenizer": str(standins / "hf-tokenizer")}),
    ]
    messages = missing_models(steps)
    # en.sp.model once, en.arpa.bin once; the local tokenizer folder is present.
    assert len(messages) == 2
    assert any("'en.arpa.bin'" in m for m in messages) and any("'en.sp.model'" in m for m in messages)
    _install(standins, isolated_cache, "en.sp.model", "en.arpa.bin")
    assert missing_models(steps) == []
    assert [r.kind for r in required_models("perplexity_filter", {"tokenizer": "whitespace"})] == ["kenlm"]


def test_alphanumeric_filter_token_ratio(standins):
    from tokenizers import Tokenizer

    op = registry.get("alphanumeric_filter")(
        {"tokenization": True, "min_ratio": 1.5, "hf_tokenizer": str(standins / "hf-tokenizer")}
    )
    stats = op.compute_stats(_batch(TEXTS))
    tokenizer = Tokenizer.from_file(str(standins / "hf-tokenizer" / "tokenizer.json"))
    for text, value in zip(TEXTS, stats["alpha_token_ratio"]):
        tokens = len(tokenizer.encode(text, add_special_tokens=False).tokens)
        assert value == pytest.approx(sum(c.isalpha() for c in text) / tokens)
    assert op.thresholds()["alpha_token_ratio"]["min_ratio"] == 1.5


def test_alphanumeric_hub_tokenizer_offline_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    op = registry.get("alphanumeric_filter")({"tokenization": True})
    with pytest.raises(ModelUnavailable) as error:
        op.compute_stats(_batch(TEXTS))
    assert "EleutherAI/pythia-6.9b-deduped" in str(error.value) and "hf_tokenizer" in str(error.value)


def test_token_num_filter_counts_tokens_of_a_local_tokenizer(standins):
    from tokenizers import Tokenizer

    folder = str(standins / "hf-tokenizer")
    op = registry.get("token_num_filter")({"hf_tokenizer": folder, "min_num": 10, "max_num": 20})
    tokenizer = Tokenizer.from_file(str(standins / "hf-tokenizer" / "tokenizer.json"))
    counts = op.compute_stats(_batch(TEXTS))["num_token"]
    assert counts == [len(tokenizer.encode(t, add_special_tokens=False).ids) for t in TEXTS]
    kept = op.process(_batch(TEXTS)).kept.column("text").to_pylist()
    assert kept == [t for t, n in zip(TEXTS, counts) if 10 <= n <= 20]
    assert [r.kind for r in required_models("token_num_filter", {"hf_tokenizer": folder})] == ["hf_tokenizer"]
    assert required_models("token_num_filter", {"hf_tokenizer": folder})[0].path is not None
