"""``decontaminate``: planted benchmark items in real text (the bundled Debian handbook sample),
both index backends, the three modes, the index file, the report, bad benchmark files, and the
paraphrase judge's plumbing with the bundled SmolLM2 (transformers backend, CPU)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recipeflow.operators import registry
from recipeflow.operators.decontamination.benchmarks import BenchmarkError
from recipeflow.operators.decontamination.index import Index
from recipeflow.operators.decontamination.text import (
    Normalization,
    normalize,
    normalized_words,
    word_hashes,
    words_with_spans,
)
from recipeflow.operators.decontaminate import Decontaminate, merge_reports

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "recipes" / "samples" / "debian-handbook-sample.jsonl.gz"
N = 13
MIN_OVERLAP = 5


def _pages() -> list[dict]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _sentences(text: str) -> list[str]:
    return [" ".join(s.split()) for s in re.split(r"(?<=[.?!])\s+", text) if s.strip()]


def _pieces(text: str, size: int) -> list[str]:
    """Long documents of at least ``size`` characters, cut at line boundaries."""
    out, lines = [], []
    for line in text.split("\n"):
        lines.append(line)
        if sum(len(x) + 1 for x in lines) >= size:
            out.append("\n".join(lines))
            lines = []
    return out


@pytest.fixture(scope="module")
def corpus():
    """Benchmark items (question + answer) cut from the first English pages; clean documents
    from the other pages, kept only when a plain set-of-n-grams check finds none of the items'
    n-grams in them (the handbook repeats some sentences)."""
    pages = _pages()
    english = [p for p in pages if p["lang"] == "en"]
    sources, others = english[:8], english[8:] + [p for p in pages if p["lang"] != "en"]
    items = []
    for page in sources:
        sentences = [s for s in _sentences(page["text"]) if 18 <= len(s.split()) <= 40]
        for question, answer in zip(sentences[::2], sentences[1::2]):
            items.append({"qid": f"q{len(items)}", "question": question, "answer": answer})
            if len(items) % 8 == 0:
                break
    items = items[:60]
    # Two short items (fewer than n words): each one gram.
    items.append({"qid": "short1", "question": "Which command lists the loaded kernel modules?", "answer": "lsmod"})
    items.append({"qid": "short2", "question": "Name the Debian package tool", "answer": "apt"})
    item_grams = set()
    for it in items:
        words = normalize(it["question"] + "\n" + it["answer"]).split()
        k = min(N, len(words))
        item_grams |= {tuple(words[i:i + k]) for i in range(len(words) - k + 1)}
    lengths = {len(g) for g in item_grams}
    clean = []
    for page in others:
        for part, text in enumerate(_pieces(page["text"], 1200)):
            words = normalize(text).split()
            grams = {tuple(words[i:i + k]) for k in lengths for i in range(len(words) - k + 1)}
            if not grams & item_grams:
                clean.append({"id": f"{page['id']}-{part}", "text": text})
    assert len(items) >= 40 and len(clean) >= 130
    return items, clean


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory, corpus):
    items, _ = corpus
    path = tmp_path_factory.mktemp("bench") / "toyqa.jsonl"
    path.write_text("".join(json.dumps(it) + "\n" for it in items))
    return path


def _item_text(item: dict) -> str:
    return item["question"] + "\n" + item["answer"]


def _words(text: str) -> list[str]:
    """Normalized words: a part of an item is counted in the operator's words."""
    return normalize(text).split()


def _plant(clean_text: str, insert: str, where: float = 0.5) -> str:
    """``insert`` placed in the middle of a long clean text, at a line boundary."""
    lines = clean_text.split("\n")
    at = int(len(lines) * where)
    return "\n".join(lines[:at] + [insert] + lines[at:])


@pytest.fixture(scope="module")
def planted(corpus):
    """(documents, expected item ids per document): every kind of planted copy, and clean."""
    items, clean = corpus
    docs, expected = [], []

    def add(text, hit_ids, kind="planted"):
        docs.append({"id": f"d{len(docs)}", "text": text, "kind": kind})
        expected.append(set(hit_ids))

    host = iter(clean)
    for i, item in enumerate(it for it in items if not it["qid"].startswith("short")):
        text = _item_text(item)
        kind = i % 6
        if kind == 0:  # copied whole
            add(_plant(next(host)["text"], text), [item["qid"]])
        elif kind == 1:  # changed case and punctuation, line breaks inside
            changed = text.upper().replace(",", " ;").replace(". ", "!! ").replace(" ", "\n", 3)
            add(_plant(next(host)["text"], "«" + changed + "»"), [item["qid"]])
        elif kind == 2:  # in part, exactly at the threshold: MIN_OVERLAP n-grams
            words = _words(text)
            add(_plant(next(host)["text"], " ".join(words[2:2 + N + MIN_OVERLAP - 1]), 0.3), [item["qid"]])
        elif kind == 3:  # in part, one n-gram short of the threshold: not a hit
            words = _words(text)
            add(_plant(next(host)["text"], " ".join(words[1:1 + N + MIN_OVERLAP - 2]), 0.7), [], "below")
        elif kind == 4:  # full-width letters and a ligature (NFKC), at the very start
            wide = "".join(chr(ord(c) + 0xFEE0) if "a" <= c <= "z" else c for c in text)
            add(wide + "\n" + next(host)["text"], [item["qid"]])
        else:  # at the very end of a long document
            add(next(host)["text"] + " " + text, [item["qid"]])
    short = [it for it in items if it["qid"].startswith("short")]
    add(_plant(next(host)["text"], "Q: " + _item_text(short[0]).upper()), [short[0]["qid"]])
    add(_plant(next(host)["text"], "Which command lists the loaded kernel"), [])  # part of a short item
    for page in list(host)[:60]:  # clean documents, untouched
        add(page["text"], [], "clean")
    return docs, expected


def _batch(docs: list[dict]) -> pa.Table:
    return pa.table({"id": [d["id"] for d in docs], "text": [d["text"] for d in docs]})


def _op(bench_file, **params) -> Decontaminate:
    config = {"benchmarks": {"toyqa": {"path": str(bench_file), "fields": ["question", "answer"],
                                       "id_field": "qid"}},
              "min_overlap": MIN_OVERLAP, **params}
    return registry.get("decontaminate")(config)


def _hit_ids(labels: list[str]) -> set[str]:
    return {label.split(":", 1)[1].rsplit(" (", 1)[0] for label in labels}


# -- normalization -----------------------------------------------------------------------------------


def test_normalization_is_documented_and_shared():
    assert normalize("Don't  STOP!\n\tＦｕｌｌ-width, ﬁne café…") == "don t stop full width fine café"
    text = "Ünïcode «quotes» and ½ cup; e-mail: a@b.org — DONE."
    words, starts, ends = words_with_spans(text)
    assert words == normalized_words(text)
    assert all(text[s:e] for s, e in zip(starts, ends))


def test_normalization_paths_agree_on_real_text():
    """The fast path (whole text) and the span path (remove mode) give the same words."""
    for page in _pages()[::7]:
        words = words_with_spans(page["text"])[0]
        assert words == normalized_words(page["text"]), page["id"]
        from_text, _ = word_hashes([page["text"]])
        from_words, _ = word_hashes([" ".join(words)], prepared=True)
        assert np.array_equal(from_text, from_words) and len(from_text) == len(words)


def test_datatrove_normalization_makes_datatrove_words():
    """Expected words are what DataTrove 0.10.1 gives (``word_tokenize(simplify_text(s))`` with
    its English tokenizer); bench/decontamination_benchmark.py compares whole corpora."""
    datatrove = Normalization("datatrove")
    assert normalized_words("He cannot see https://x.org → the 2.5 GHz Café, don't!", datatrove) == [
        "he", "can", "not", "see", "https", "x", "org", "→", "the", "0", "ghz", "cafe", "don", "t"]
    assert normalized_words("Version 2.5 of the Tool gonna ship — ½ of ＡＢＣ１２ «naïve» 3,000", datatrove) == [
        "version", "0", "of", "the", "tool", "gon", "na", "ship", "½", "of", "ａｂｃ0", "naive", "0"]
    text = "Ünïcode «quotes» and 12.5 cups; e-mail: a@b.org — DONE."
    hashes, _ = word_hashes([text], normalization=datatrove)
    assert len(hashes) == len(normalized_words(text, datatrove))
    assert datatrove.key != Normalization().key


def test_datatrove_normalization_decides_on_datatrove_words(tmp_path):
    """Numbers are one word "0" and symbols are words: a copy of an item with other numbers is
    caught, and a symbol between two copied halves breaks the 13-gram, as in DataTrove."""
    item = {"qid": "q1", "question": "In release 4.2 the installer asks for the root password twice",
            "answer": "and then it writes the configuration file to the disk"}
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(item) + "\n")
    spec = {"benchmarks": {"b": {"path": str(path), "fields": ["question", "answer"], "id_field": "qid"}},
            "n": 13}
    docs = ["Notes. In release 7.19 the installer asks for the root password twice and then it writes",
            "In release 4.2 the installer asks for the root → password twice and then it",
            "An unrelated document about the weather."]
    batch = pa.table({"id": ["a", "b", "c"], "text": docs})
    ours = registry.get("decontaminate")(spec)
    theirs = registry.get("decontaminate")({**spec, "normalization": "datatrove"})
    # recipeflow: "7.19" is two words unlike "4.2"; "→" is a boundary, so b holds a 13-gram.
    assert ours.process(batch).kept.column("id").to_pylist() == ["a", "c"]
    assert theirs.process(batch).kept.column("id").to_pylist() == ["b", "c"]
    assert ours.index_key() != theirs.index_key()
    assert theirs.provenance()["normalization"] == Normalization("datatrove").key


# -- decisions -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", ["exact", "bloom"])
def test_annotate_catches_every_planted_copy_and_nothing_else(bench_file, planted, index):
    docs, expected = planted
    op = _op(bench_file, mode="annotate", index=index)
    result = op.process(_batch(docs))
    assert result.rejected is None and len(result.kept) == len(docs)
    found = [_hit_ids(labels) for labels in result.kept.column("contaminated_by").to_pylist()]
    for document, want, got in zip(docs, expected, found):
        assert got == want, document["id"]
    ngrams = result.kept.column("contamination_ngrams").to_pylist()
    assert all(n > 0 for n, want in zip(ngrams, expected) if want)
    # The below-threshold copies hold n-grams, one too few; clean documents none.
    kinds = [d["kind"] for d in docs]
    assert {n for n, kind in zip(ngrams, kinds) if kind == "below"} == {MIN_OVERLAP - 1}
    assert {n for n, kind in zip(ngrams, kinds) if kind == "clean"} == {0}
    assert kinds.count("below") >= 6 and kinds.count("clean") >= 60
    assert result.kept.column("text").to_pylist() == [d["text"] for d in docs]


def test_exact_and_bloom_decide_alike_and_bloom_false_positives_never_reach_decisions(bench_file, planted):
    docs, _ = planted
    exact = _op(bench_file, mode="drop").process(_batch(docs))
    # A very loose filter, so that there are false positives to verify away.
    loose = _op(bench_file, mode="drop", index="bloom", false_positive_rate=0.2)
    bloom = loose.process(_batch(docs))
    assert exact.kept.column("id").to_pylist() == bloom.kept.column("id").to_pylist()
    assert exact.rejected.column("reject_detail").to_pylist() == bloom.rejected.column("reject_detail").to_pylist()
    assert loose.index.bloom_false_positives > 100
    assert loose.index.bloom_positives > loose.index.bloom_false_positives


def test_drop_names_benchmark_and_items(bench_file, planted):
    docs, expected = planted
    result = _op(bench_file, mode="drop").process(_batch(docs))
    dropped = result.rejected.column("id").to_pylist()
    assert dropped == [d["id"] for d, want in zip(docs, expected) if want]
    assert set(result.rejected.column("reject_reason").to_pylist()) == {"contaminated"}
    assert set(result.rejected.column("rejected_by").to_pylist()) == {"decontaminate"}
    for detail, document in zip(result.rejected.column("reject_detail").to_pylist(), dropped):
        want = expected[int(document[1:])]
        assert detail == ", ".join(f"toyqa:{qid} (exact)" for qid in sorted(want))


def test_remove_cuts_the_copies_and_keeps_the_rest(bench_file, corpus, planted):
    items, clean = corpus
    docs, expected = planted
    op = _op(bench_file, mode="remove", min_length=500)
    short_doc = {"id": "tiny", "text": "Intro: " + _item_text(items[0]) + " The end."}
    result = op.process(_batch(docs + [short_doc]))
    kept = {r["id"]: r for r in result.kept.to_pylist()}
    for document, want in zip(docs, expected):
        assert document["id"] in kept
        text = kept[document["id"]]["text"]
        if not want:
            assert text == document["text"]
            continue
        # No item n-gram is left; the host text around the copy is.
        assert op.process(_batch([{"id": "x", "text": text}])).kept.column("contaminated_by").to_pylist() == [[]]
        assert len(text) > 0.8 * (len(document["text"]) - 400)
    assert result.rejected.column("id").to_pylist() == ["tiny"]
    assert result.rejected.column("reject_statistic").to_pylist() == ["remaining_chars"]
    assert "toyqa:q0 (exact)" in result.rejected.column("reject_detail").to_pylist()[0]


def test_an_item_copy_whole_is_cut_to_its_host_text(bench_file, corpus):
    items, clean = corpus
    host = clean[0]["text"]
    lines = host.split("\n")
    planted_text = "\n".join(lines[:5] + [_item_text(items[3])] + lines[5:])
    result = _op(bench_file, mode="remove").process(_batch([{"id": "a", "text": planted_text}]))
    assert normalize(result.kept.column("text")[0].as_py()) == normalize(host)


# -- index file and key ------------------------------------------------------------------------------


@pytest.mark.parametrize("index", ["exact", "bloom"])
def test_index_file_round_trip(bench_file, planted, tmp_path, index):
    docs, _ = planted
    built = _op(bench_file, mode="annotate", index=index)
    path = tmp_path / f"{built.index_key()}.index"
    built.build_index().save(str(path))
    loaded = Index.load(str(path))
    assert isinstance(loaded.keys, np.memmap)
    assert loaded.item_ids == built.index.item_ids and loaded.item_texts == built.index.item_texts
    reader = _op(bench_file, mode="annotate", index=index)
    reader.use_index(str(path))
    assert reader.process(_batch(docs)).kept.equals(built.process(_batch(docs)).kept)
    # An index of other parameters is refused.
    other = _op(bench_file, mode="annotate", index=index, n=8)
    other.use_index(str(path))
    with pytest.raises(ValueError, match="built for other benchmarks or parameters"):
        other.process(_batch(docs[:1]))


def test_index_key_follows_the_benchmark_files_not_the_decision(bench_file, tmp_path):
    base = _op(bench_file)
    assert base.index_key() == _op(bench_file, min_overlap=2, mode="annotate").index_key()
    assert base.index_key() != _op(bench_file, n=8).index_key()
    assert base.index_key() != _op(bench_file, index="bloom").index_key()
    changed = tmp_path / "toyqa.jsonl"
    changed.write_text(bench_file.read_text() + json.dumps({"qid": "new", "question": "x y", "answer": "z"}) + "\n")
    assert _op(changed).index_key() != base.index_key()
    provenance = _op(changed).provenance()
    assert provenance["benchmarks"]["toyqa"]["files"] == {
        str(changed): __import__("hashlib").sha256(changed.read_bytes()).hexdigest()}
    assert provenance["index_key"] == _op(changed).index_key()


# -- the report --------------------------------------------------------------------------------------


def test_report_sums_across_shards(bench_file, corpus, planted):
    docs, expected = planted
    shards = [docs[: len(docs) // 2], docs[len(docs) // 2:], docs[:3]]  # the last repeats items
    reports = []
    for shard in shards:
        op = _op(bench_file, mode="drop")
        op.process(_batch(shard))
        reports.append(op.take_report())
        assert op.take_report()["toyqa"]["documents_hit"]["any"] == 0  # taken: reset
    merged = merge_reports(reports)["toyqa"]
    hit_items = set().union(*expected)
    hit_docs = sum(1 for want in expected if want) + sum(1 for want in expected[:3] if want)
    assert merged == {
        "items": len(corpus[0]), "items_hit_exact": len(hit_items), "items_hit_paraphrase": 0,
        "items_hit": len(hit_items), "documents_hit_exact": hit_docs,
        "documents_hit_paraphrase": 0, "documents_hit": hit_docs,
    }


# -- bad benchmark files -------------------------------------------------------------------------------


def _bad(path, fields=("question",), **spec):
    return registry.get("decontaminate")(
        {"benchmarks": {"mmlu": {"path": str(path), "fields": list(fields), **spec}}})


def test_missing_file_is_an_error_naming_benchmark_and_file(tmp_path):
    with pytest.raises(BenchmarkError, match=r"benchmark 'mmlu': file '.*nope\.jsonl' does not exist"):
        _bad(tmp_path / "nope.jsonl")
    with pytest.raises(BenchmarkError, match=r"benchmark 'mmlu': no file matches"):
        _bad(tmp_path / "*.parquet")


def test_empty_file_is_an_error(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(BenchmarkError, match=r"benchmark 'mmlu': file .*empty\.jsonl is empty"):
        _bad(tmp_path / "empty.jsonl")
    (tmp_path / "blank.jsonl").write_text("\n\n")
    with pytest.raises(BenchmarkError, match=r"blank\.jsonl holds no items"):
        _bad(tmp_path / "blank.jsonl")
    (tmp_path / "nulls.jsonl").write_text('{"question": null}\n{"question": "  "}\n')
    with pytest.raises(BenchmarkError, match=r"benchmark 'mmlu': the fields question are empty in every item"):
        _bad(tmp_path / "nulls.jsonl")


def test_missing_field_is_an_error_naming_file_line_and_field(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps({"question": "a b c", "answer": "d"}) + "\n" + json.dumps({"question": "e"}) + "\n")
    with pytest.raises(BenchmarkError, match=r"benchmark 'mmlu': file .*items\.jsonl line 2 has no field 'answer'"):
        _bad(path, fields=("question", "answer"))
    table = pa.table({"question": ["a b c"], "choices": [["x", "y"]]})
    pq.write_table(table, tmp_path / "items.parquet")
    with pytest.raises(BenchmarkError, match=r"file .*items\.parquet has no field 'answer' \(its columns: question, choices\)"):
        _bad(tmp_path / "items.parquet", fields=("question", "choices", "answer"))


def test_parquet_glob_and_list_fields(tmp_path, corpus):
    items, _ = corpus
    for part in range(2):
        rows = items[part * 10:(part + 1) * 10]
        pq.write_table(pa.table({"question": [r["question"] for r in rows],
                                 "choices": [[r["answer"], "none of the above"] for r in rows]}),
                       tmp_path / f"part-{part}.parquet")
    op = _bad(tmp_path / "part-*.parquet", fields=("question", "choices"), id_field=None)
    assert op.index.items == 20 and op.index.item_ids[:2] == ["0", "1"]
    assert op.index.item_texts[0] == items[0]["question"] + "\n" + items[0]["answer"] + "\nnone of the above"
    assert len(op.provenance()["benchmarks"]["mmlu"]["files"]) == 2
    # A list of files as the lead passes a resolved ROOT@VERSION.
    listed = registry.get("decontaminate")({"benchmarks": {"mmlu": {
        "path": [str(tmp_path / "part-0.parquet"), str(tmp_path / "part-1.parquet")],
        "fields": ["question", "choices"]}}})
    assert listed.index_key() == op.index_key()


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="name at least one benchmark"):
        registry.get("decontaminate")({"benchmarks": {}})
    with pytest.raises(ValueError, match="fields"):
        registry.get("decontaminate")({"benchmarks": {"x": {"path": "a.jsonl", "fields": []}}})
    with pytest.raises(ValueError, match="only the recipeflow normalization"):
        registry.get("decontaminate")({"benchmarks": {"x": {"path": "a.jsonl", "fields": ["q"]}},
                                       "mode": "remove", "normalization": "datatrove"})


# -- paraphrases ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def paraphrase_setup(tmp_path_factory):
    pytest.importorskip("transformers")
    from recipeflow.operators.models.llm_models import ModelNotFound, bundled_smollm2_path

    try:
        bundled_smollm2_path()
    except ModelNotFound as e:
        pytest.skip(str(e))
    folder = tmp_path_factory.mktemp("paraphrase")
    items = [
        {"id": "cap", "question": "Which city is the capital of France?", "answer": "Paris"},
        {"id": "apt", "question": "Which Debian tool installs packages and resolves their dependencies?",
         "answer": "apt"},
    ]
    (folder / "items.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))
    return folder


def test_paraphrase_judge_plumbing(paraphrase_setup):
    """Prompts are sent to the real model, answers parsed, judgments cached (a second operator
    over the same cache never loads the model), and a cached 'Yes' marks a paraphrase."""
    from recipeflow.operators.decontamination.paraphrase import PROMPT_SHA256, Judge, parse_answer
    from recipeflow.operators.models.generation_cache import GenerationCache

    folder = paraphrase_setup
    cache = folder / "cache"
    config = {
        "benchmarks": {"toy": {"path": str(folder / "items.jsonl"), "fields": ["question", "answer"],
                               "id_field": "id"}},
        "mode": "annotate",
        "paraphrase_check": {"top_k": 1, "min_similarity": 0.2,
                             "judge": {"model": "smollm2-135m-instruct", "cache_dir": str(cache)}},
    }
    docs = _batch([
        {"id": "rephrased", "text": "Debian's apt is the tool that installs packages, and it resolves "
                                    "the dependencies between them for you."},
        {"id": "unrelated", "text": "The weather in the mountains was cold and windy all week."},
    ])
    op = registry.get("decontaminate")(config)
    first = op.process(docs)
    assert op._judge.usage["judged"] == 1  # the one candidate above min_similarity
    provenance = op.provenance()["paraphrase_judge"]
    assert provenance["prompt_sha256"] == PROMPT_SHA256 and provenance["model"] == "smollm2-135m-instruct"
    assert len(provenance["sha256"]) == 64
    # The answer the model gave decides, and was cached.
    entries = list(cache.rglob("*.json"))
    assert len(entries) == 1
    answer = parse_answer(json.loads(entries[0].read_text())["text"])
    want = ["toy:apt (paraphrase)"] if answer else []
    assert first.kept.column("contaminated_by").to_pylist() == [want, []]

    again = registry.get("decontaminate")(config)
    second = again.process(docs)
    assert again._judge._backend is None and again._judge.usage == {"judged": 0, "cached": 1, "unparsed": 0}
    assert second.kept.equals(first.kept)

    # A 'Yes' in the cache (as a larger judge would answer) makes the document a paraphrase hit.
    key = entries[0].stem
    GenerationCache(str(cache)).put_many({key: {"text": "Yes.", "prompt_tokens": 1, "completion_tokens": 1,
                                                "finish_reason": "stop"}})
    dropped = registry.get("decontaminate")({**config, "mode": "drop"}).process(docs)
    assert dropped.rejected.column("id").to_pylist() == ["rephrased"]
    assert dropped.rejected.column("reject_detail").to_pylist() == ["toy:apt (paraphrase)"]
    assert parse_answer(" yes, it does") is True and parse_answer("No.") is False
    assert parse_answer("maybe") is None
    assert Judge.messages("ITEM", "PASSAGE")[1]["content"].count("ITEM") == 1


def test_the_judge_on_vllm_puts_the_operator_on_the_gpu_pool(bench_file):
    from recipeflow.operators.base import Kind, Resource

    spec = {"toyqa": {"path": str(bench_file), "fields": ["question", "answer"]}}
    params = Decontaminate.Params.model_validate(
        {"benchmarks": spec, "paraphrase_check": {"judge": {"backend": "vllm", "model": "/models/judge"}}})
    assert Decontaminate.resource_for(params) == Resource.gpu
    assert Decontaminate.resource_for(Decontaminate.Params.model_validate({"benchmarks": spec})) == Resource.cpu
    assert Decontaminate.kind == Kind.filter and Decontaminate.resource == Resource.cpu


def test_embedding_nearest_items_find_a_rephrasing_that_shares_few_words(paraphrase_setup):
    """With `embedding_model`, items are found by meaning: a rephrasing with few words in
    common is a candidate for the judge, where the bag-of-n-grams cosine misses it."""
    from recipeflow.operators.decontamination.paraphrase import (
        ParaphraseParams,
        item_word_lists,
        nearest_items,
        vectors,
    )
    from recipeflow.operators.models.embedding_models import encoder

    items = ["Which city is the capital of France? Paris",
             "Which Debian tool installs packages and resolves their dependencies? apt"]
    docs = ["On Debian you fetch and set up software with apt, which also works out what else each "
            "program requires.",
            "The weather in the mountains was cold and windy all week.",
            "France's seat of government is the city of Paris."]
    params = ParaphraseParams(top_k=2, min_similarity=0.3, judge={"model": "smollm2-135m-instruct"})
    none_excluded = [set() for _ in docs]
    by_words = nearest_items(docs, vectors(item_word_lists(items)), params, none_excluded)
    assert [(c.doc, c.item) for c in by_words] == [(2, 0)]
    model = encoder("all-minilm-l6-v2")
    by_meaning = nearest_items(docs, model.encode(items), params, none_excluded, model.encode)
    assert [(c.doc, c.item) for c in by_meaning] == [(0, 1), (2, 0)]
    assert all(c.similarity >= 0.3 for c in by_meaning)

    # The encoder's files are part of the operator's identity (its cache address).
    config = {
        "benchmarks": {"toy": {"path": str(paraphrase_setup / "items.jsonl"), "fields": ["question", "answer"],
                               "id_field": "id"}},
        "paraphrase_check": {"embedding_model": "all-minilm-l6-v2",
                             "judge": {"model": "smollm2-135m-instruct"}},
    }
    embedding = registry.get("decontaminate")(config).provenance()["paraphrase_embedding"]
    assert embedding["model"] == "all-minilm-l6-v2" and len(embedding["sha256"]) == 64
    # A run with it judges the candidates the encoder found (here: the apt rephrasing).
    config["paraphrase_check"].update(top_k=1, min_similarity=0.3, judge={
        "model": "smollm2-135m-instruct", "cache_dir": str(paraphrase_setup / "embedding-cache")})
    op = registry.get("decontaminate")({**config, "mode": "annotate"})
    op.process(_batch([{"id": "apt", "text": docs[0]}, {"id": "weather", "text": docs[1]}]))
    assert op._judge.usage["judged"] + op._judge.usage["cached"] == 1
