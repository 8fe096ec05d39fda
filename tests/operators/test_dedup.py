"""Deduplicators: exact_dedup, url_dedup, line_dedup, minhash_dedup, document_minhash_deduplicator.

Operators run their three barrier phases in-process through the engine's own decision tables
(``run_barrier``), and end to end as real Prefect flow runs (``run_recipe``) on real pages
from the shared corpora, with near-duplicates planted in them.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from recipeflow.engine import execute
from recipeflow.io import writers
from recipeflow.datasets import versions
from recipeflow.orchestration.runner import run_recipe
from recipeflow.operators import registry
from recipeflow.operators.dedup import text as dedup_text
from recipeflow.operators.dedup.lsh import (
    bottom_k,
    bottom_k_jaccard,
    connected_components,
    legacy_minhash_values,
)
from recipeflow.operators.base import BarrierOperator, StepResult
from recipeflow.operators.document_minhash_deduplicator import optimal_bands_and_rows
from recipeflow.operators.url_dedup import normalize_url
from tests.conftest import CORPORA

# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def handbook_pages() -> tuple[dict, ...]:
    """The English pages of the Debian Administrator's Handbook (127 distinct real pages)."""
    with gzip.open(CORPORA / "debian-handbook.jsonl.gz", "rt", encoding="utf-8") as f:
        pages = [json.loads(line) for line in f]
    return tuple(p for p in pages if p["lang"] == "en")


def _parquet_roundtrip(table: pa.Table) -> pa.Table:
    """What the engine does to every intermediate table: write it as Parquet, read it back."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return pq.read_table(io.BytesIO(buffer.getvalue()))


def run_barrier(op: BarrierOperator, shards: list[pa.Table], batch_size: int = 50) -> list[StepResult]:
    """The engine's phases in-process: signatures per shard (in batches), one resolve or
    ``partitions()`` partition results (each from its columns only) and a merge, then each
    shard's decision applied batch by batch through the engine's decision tables."""
    signatures = []
    for shard in shards:
        parts = [op.signatures(shard.slice(o, batch_size)) for o in range(0, max(len(shard), 1), batch_size)]
        signatures.append(_parquet_roundtrip(pa.concat_tables(parts)))
    partitions = op.partitions()
    sizes = [len(s) for s in signatures]
    if partitions <= 1:
        decisions = op.resolve(signatures)
    else:
        partials = []
        for p in range(partitions):
            columns = op.partition_columns(p, partitions)
            selected = [s.select(columns) if columns else s for s in signatures]
            partials.append(_parquet_roundtrip(op.resolve_partition(selected, p, partitions)))
        decisions = op.merge(partials, sizes)
    results = []
    for shard, decision, size in zip(shards, decisions, sizes):
        table = _parquet_roundtrip(execute.decision_table(decision, size))
        kept, rejected = [], []
        for offset in range(0, len(shard), batch_size):
            batch = shard.slice(offset, batch_size)
            result = op.apply(batch, execute.decision_slice(table, offset, len(batch)))
            kept.append(result.kept)
            if result.rejected is not None:
                rejected.append(result.rejected)
        results.append(
            StepResult(
                kept=pa.concat_tables(kept, promote_options="permissive") if kept else shard,
                rejected=pa.concat_tables(rejected, promote_options="permissive") if rejected else None,
            )
        )
    return results


def dedup(name: str, params: dict, docs: list[dict], shard_size: int = 40) -> tuple[list[dict], list[dict]]:
    """(kept rows, rejected rows) of an operator over documents cut into shards."""
    op = registry.get(name)(params)
    table = pa.Table.from_pylist(docs)
    shards = [table.slice(o, shard_size) for o in range(0, len(table), shard_size)]
    results = run_barrier(op, shards)
    kept = [row for r in results for row in r.kept.to_pylist()]
    rejected = [row for r in results if r.rejected is not None for row in r.rejected.to_pylist()]
    return kept, rejected


def ids(rows: list[dict]) -> list[str]:
    return [r["id"] for r in rows]


def edit_words(text: str, count: int, seed: int) -> str:
    """``count`` words of ``text`` replaced by others (a small edit, as a re-crawl makes)."""
    rng = random.Random(seed)
    words = text.split(" ")
    for index in rng.sample(range(len(words)), count):
        words[index] = f"edited{rng.randrange(10**6)}"
    return " ".join(words)


def long_pages(count: int, min_chars: int = 3000) -> list[dict]:
    return [dict(p) for p in handbook_pages() if len(p["text"]) >= min_chars][:count]


# ----------------------------------------------------------------------------------------------
# exact_dedup
# ----------------------------------------------------------------------------------------------


def test_exact_dedup_default_compares_texts_as_they_are():
    docs = [
        {"id": "a", "text": "Hello, World!"},
        {"id": "b", "text": "Hello, World!"},
        {"id": "c", "text": "hello world"},
        {"id": "d", "text": "Hello,  World!"},
    ]
    kept, rejected = dedup("exact_dedup", {}, docs)
    assert ids(kept) == ["a", "c", "d"]
    [dropped] = rejected
    assert dropped["id"] == "b" and dropped["reject_reason"] == "exact_duplicate"
    assert dropped["reject_detail"] == "duplicate_of=a"


@pytest.mark.parametrize(
    "params, duplicates",
    [
        ({"lowercase": True}, {"upper"}),
        ({"normalize_whitespace": True}, {"spaced"}),
        ({"remove_punctuation": True}, {"unpunctuated", "guillemets"}),
        (
            {"lowercase": True, "normalize_whitespace": True, "remove_punctuation": True},
            {"upper", "spaced", "unpunctuated", "guillemets", "everything"},
        ),
    ],
)
def test_exact_dedup_normalisation(params, duplicates):
    docs = [
        {"id": "original", "text": "Debian is «free», stable software."},
        {"id": "upper", "text": "DEBIAN IS «FREE», STABLE SOFTWARE."},
        {"id": "spaced", "text": "  Debian is\t«free»,\nstable   software. "},
        {"id": "unpunctuated", "text": "Debian is free stable software"},
        {"id": "guillemets", "text": "Debian is \"free\", stable software!"},
        {"id": "everything", "text": "DEBIAN  is free,\n\nSTABLE software"},
    ]
    kept, rejected = dedup("exact_dedup", params, docs)
    assert set(ids(rejected)) == duplicates
    assert "original" in ids(kept)


def test_exact_dedup_partitions_give_the_same_result():
    pages = list(handbook_pages()[:60])
    docs = pages + [dict(p, id=p["id"] + "-copy") for p in pages[::3]]
    results = [dedup("exact_dedup", {"partitions": n}, docs, shard_size=17) for n in (1, 3, 7)]
    assert results[0] == results[1] == results[2]
    assert len(results[0][1]) == 20


# ----------------------------------------------------------------------------------------------
# url_dedup
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b",
    [
        ("http://example.com/page", "https://example.com/page"),
        ("https://www.example.com/page", "https://example.com/page"),
        ("https://EXAMPLE.com/page", "https://example.com/page"),
        ("https://example.com/page/", "https://example.com/page"),
        ("https://example.com/page#section-2", "https://example.com/page"),
        ("http://example.com:80/page", "https://example.com:443/page"),
        ("https://example.com", "https://example.com/"),
        ("example.com/page", "https://example.com/page"),
    ],
)
def test_urls_that_name_the_same_page(a, b):
    assert normalize_url(a) == normalize_url(b)


@pytest.mark.parametrize(
    "a, b",
    [
        ("https://example.com/Page", "https://example.com/page"),  # paths are case-sensitive
        ("https://example.com/page?id=1", "https://example.com/page?id=2"),
        ("https://example.com:8080/page", "https://example.com/page"),
        ("https://docs.example.com/page", "https://example.com/page"),
    ],
)
def test_urls_that_name_different_pages(a, b):
    assert normalize_url(a) != normalize_url(b)


def test_url_normalisation_can_drop_the_query():
    assert normalize_url("https://example.com/p?utm_source=x", drop_query=True) == normalize_url(
        "https://example.com/p"
    )
    assert normalize_url("") is None and normalize_url(None) is None


def _url_docs() -> list[dict]:
    return [
        {"id": "a", "text": "short", "url": "https://www.example.com/x/", "score": 0.2},
        {"id": "b", "text": "the longest text", "url": "http://example.com/x", "score": 0.9},
        {"id": "c", "text": "longer one", "url": "https://example.com/x#top", "score": 0.9},
        {"id": "d", "text": "another page", "url": "https://example.com/y", "score": 0.1},
        {"id": "e", "text": "no url", "url": None, "score": 0.5},
        {"id": "f", "text": "no url either", "url": "", "score": 0.5},
        {"id": "g", "text": "same as y, no score", "url": "https://example.com/y/", "score": None},
    ]


@pytest.mark.parametrize(
    "params, kept_ids",
    [
        ({}, ["a", "d", "e", "f"]),
        ({"keep": "longest"}, ["b", "e", "f", "g"]),
        ({"keep": "score", "score_field": "score"}, ["b", "d", "e", "f"]),  # b and c tie: b first
    ],
)
def test_url_dedup_keep_policies(params, kept_ids):
    kept, rejected = dedup("url_dedup", params, _url_docs(), shard_size=3)
    assert ids(kept) == kept_ids
    assert {r["reject_reason"] for r in rejected} == {"url_duplicate"}
    assert all(r["reject_detail"].startswith("duplicate_of=") for r in rejected)


def test_url_dedup_field_and_partitions():
    docs = [dict(d, link=d.pop("url")) for d in _url_docs()]
    expected = dedup("url_dedup", {"url_field": "link", "keep": "longest"}, docs, shard_size=2)
    assert dedup("url_dedup", {"url_field": "link", "keep": "longest", "partitions": 3}, docs) == expected
    with pytest.raises(KeyError, match="url_field 'url' is not a field"):
        dedup("url_dedup", {}, docs)


def test_keep_policy_parameters_are_checked():
    with pytest.raises(ValueError, match="keep: score needs score_field"):
        registry.get("url_dedup")({"keep": "score"})
    with pytest.raises(ValueError, match="only used with keep: score"):
        registry.get("minhash_dedup")({"score_field": "quality"})
    with pytest.raises(TypeError, match="must be numeric"):
        dedup("url_dedup", {"keep": "score", "score_field": "text"}, _url_docs())


# ----------------------------------------------------------------------------------------------
# line_dedup
# ----------------------------------------------------------------------------------------------

NAV = "Home | Products | About us | Contact"
FOOTER = "Copyright 2024 Example Corp. All rights reserved."


def _boilerplate_docs() -> list[dict]:
    pages = long_pages(6, min_chars=800)
    docs = []
    for i, page in enumerate(pages):
        body = page["text"]
        if i < 4:  # four pages share the footer; three of them the navigation bar
            body = (NAV + "\n" if i < 3 else "") + body + "\n" + FOOTER
        docs.append({"id": page["id"], "text": body})
    docs.append({"id": "only-boilerplate", "text": NAV + "\n\n" + FOOTER + "\n" + FOOTER})
    return docs


def test_line_dedup_removes_lines_found_in_min_count_documents():
    docs = _boilerplate_docs()
    kept, rejected = dedup("line_dedup", {"min_count": 4}, docs, shard_size=2)
    texts = {d["id"]: d["text"] for d in kept}
    # The footer is in 5 documents (counted once in the one that repeats it): removed.
    assert all(FOOTER not in t for t in texts.values())
    # The navigation bar is in 4 documents: removed too; a page's own lines stay.
    assert all(NAV not in t for t in texts.values())
    for page in docs[:6]:
        first_line = next(line for line in page["text"].split("\n") if line not in (NAV, FOOTER))
        assert first_line in texts[page["id"]]
    [emptied] = rejected
    assert emptied["id"] == "only-boilerplate" and emptied["reject_reason"] == "empty_after_line_dedup"
    assert emptied["reject_statistic"] == "removed_units" and emptied["reject_value"] == 3
    assert FOOTER in emptied["text"]  # rejected with its original text


def test_line_dedup_counts_each_document_once():
    docs = _boilerplate_docs()
    kept, _ = dedup("line_dedup", {"min_count": 5}, docs)
    texts = {d["id"]: d["text"] for d in kept}
    assert all(FOOTER not in t for t in texts.values())  # 5 documents
    assert sum(NAV in t for t in texts.values()) == 4  # only 4: it stays
    kept, _ = dedup("line_dedup", {"min_count": 6}, docs)
    assert sum(FOOTER in d["text"] for d in kept) == 5  # repeated twice in one, but 5 documents


def test_line_dedup_min_length_protects_short_lines():
    docs = [{"id": str(i), "text": f"}}\nline of page {i}\nA shared sentence that is long enough."} for i in range(3)]
    kept, _ = dedup("line_dedup", {"min_length": 10}, docs)
    assert all(d["text"] == f"}}\nline of page {i}" for i, d in enumerate(kept))
    kept, _ = dedup("line_dedup", {}, docs)
    assert all(d["text"] == f"line of page {i}" for i, d in enumerate(kept))


def test_line_dedup_paragraphs():
    shared = "This paragraph\nis repeated on every page."
    docs = [
        {"id": str(i), "text": f"Intro of {i}.\n\n{shared}\n\n\nBody of page {i},\nin two lines."} for i in range(3)
    ]
    docs.append({"id": "x", "text": "This paragraph\nis different."})
    kept, _ = dedup("line_dedup", {"unit": "paragraph", "min_count": 3}, docs)
    assert [d["text"] for d in kept][:3] == [f"Intro of {i}.\n\n\nBody of page {i},\nin two lines." for i in range(3)]
    assert kept[3]["text"] == "This paragraph\nis different."  # its first line alone is no unit
    lines, _ = dedup("line_dedup", {"unit": "line", "min_count": 3}, docs)
    assert lines[3]["text"] == "is different."


def test_line_dedup_partitions_give_the_same_result():
    docs = _boilerplate_docs()
    expected = dedup("line_dedup", {"min_count": 3}, docs, shard_size=3)
    for partitions in (2, 3, 5):
        assert dedup("line_dedup", {"min_count": 3, "partitions": partitions}, docs, shard_size=2) == expected


# ----------------------------------------------------------------------------------------------
# minhash_dedup
# ----------------------------------------------------------------------------------------------


def _near_duplicate_docs() -> list[dict]:
    """Real pages, and near-duplicates of some: a changed header, an inserted line, a footer,
    a few edited words (all well above Jaccard 0.8)."""
    pages = long_pages(30)
    docs = [{"id": p["id"], "text": p["text"], "quality": 0.5} for p in pages]
    lines = lambda t: t.split("\n")  # noqa: E731
    variants = {
        0: "Skip to main content\n" + pages[0]["text"],
        1: "\n".join(lines(pages[1]["text"])[:5] + ["Advertisement: try our hosting!"] + lines(pages[1]["text"])[5:]),
        2: pages[2]["text"] + "\nShare this page on social media. Terms of use. Privacy.",
        3: edit_words(pages[3]["text"], 3, seed=3),
        4: edit_words(pages[4]["text"], 2, seed=4).upper(),  # case does not matter either
    }
    for index, text in variants.items():
        docs.append({"id": f"{pages[index]['id']}-variant", "text": text, "quality": 0.9})
    docs.append({"id": f"{pages[3]['id']}-variant2", "text": edit_words(pages[3]["text"], 2, seed=33), "quality": 0.1})
    return docs


def test_minhash_dedup_finds_planted_near_duplicates():
    docs = _near_duplicate_docs()
    kept, rejected = dedup("minhash_dedup", {}, docs)
    originals = [d["id"] for d in docs[:30]]
    assert ids(kept) == originals
    assert sorted(ids(rejected)) == sorted(d["id"] for d in docs[30:])
    by_id = {d["id"]: d for d in kept + rejected}
    for row in rejected:
        original = row["id"].rsplit("-variant", 1)[0]
        assert row["reject_reason"] == "near_duplicate"
        assert row["reject_detail"] == f"duplicate_of={original}"
        assert row["dup_cluster_id"] == original
    # Cluster fields: the kept id and the cluster size; unique documents are clusters of 1.
    sizes = {d["id"]: d["dup_cluster_size"] for d in kept}
    assert sizes[originals[3]] == 3 and sizes[originals[0]] == 2 and sizes[originals[10]] == 1
    assert all(by_id[i]["dup_cluster_id"] == i for i in originals)


def test_minhash_dedup_keep_policies():
    docs = _near_duplicate_docs()
    longest, _ = dedup("minhash_dedup", {"keep": "longest"}, docs)
    kept_ids = set(ids(longest))
    assert {f"{docs[i]['id']}-variant" for i in (0, 1, 2)} <= kept_ids  # they added text
    scored, _ = dedup("minhash_dedup", {"keep": "score", "score_field": "quality"}, docs)
    variants = {d["id"] for d in docs[30:35]}
    assert variants <= set(ids(scored))
    assert {d["dup_cluster_id"] for d in scored if d["id"] in variants} == variants


def test_minhash_dedup_annotate_mode_drops_nothing():
    docs = _near_duplicate_docs()
    kept, rejected = dedup("minhash_dedup", {"mode": "annotate"}, docs)
    assert rejected == [] and ids(kept) == ids(docs)
    dropped_in_drop_mode = set(ids(dedup("minhash_dedup", {}, docs)[1]))
    would_drop = {d["id"] for d in kept if d["dup_cluster_id"] != d["id"]}
    assert would_drop == dropped_in_drop_mode
    assert all(d["dup_cluster_size"] >= 2 for d in kept if d["id"] in would_drop)


def test_minhash_dedup_same_result_whatever_partitions_and_shards():
    docs = _near_duplicate_docs()
    expected = dedup("minhash_dedup", {"keep": "longest"}, docs, shard_size=40)
    for partitions, shard_size in ((3, 7), (14, 40), (2, 1000)):
        got = dedup("minhash_dedup", {"keep": "longest", "partitions": partitions}, docs, shard_size)
        assert got == expected


def test_minhash_dedup_verification_and_character_shingles():
    docs = _near_duplicate_docs()
    verified, rejected = dedup("minhash_dedup", {"jaccard_threshold": 0.8}, docs)
    assert sorted(ids(rejected)) == sorted(d["id"] for d in docs[30:])
    # Pairs well below the threshold (a third of the words edited: Jaccard ~0.2-0.5) are
    # never verified duplicates, whatever their buckets say.
    pages = long_pages(40)[30:40]
    distant = [{"id": p["id"], "text": p["text"]} for p in pages]
    distant += [{"id": p["id"] + "-far", "text": edit_words(p["text"], len(p["text"].split(" ")) // 6, i)}
                for i, p in enumerate(pages)]
    kept, rejected = dedup("minhash_dedup", {"jaccard_threshold": 0.8}, distant)
    assert rejected == []
    chars, rejected = dedup("minhash_dedup", {"tokens": "char", "ngram_size": 12}, docs)
    assert sorted(ids(rejected)) == sorted(d["id"] for d in docs[30:])


def test_bottom_k_sketches_estimate_jaccard():
    pages = [p["text"] for p in handbook_pages()]
    k = 256
    pairs = [(pages[i], edit_words(pages[i], 1 + i % 40, seed=i)) for i in range(0, 120, 4)]
    for original, variant in pairs:
        a = np.unique(dedup_text.shingle_hashes(original, 5))
        b = np.unique(dedup_text.shingle_hashes(variant, 5))
        exact = len(np.intersect1d(a, b)) / len(np.union1d(a, b))
        sketches = [bottom_k(a, k), bottom_k(b, k)]
        matrix = np.full((2, k), 0xFFFFFFFF, dtype=np.uint32)
        for row, sketch in enumerate(sketches):
            matrix[row, : len(sketch)] = sketch
        estimate = bottom_k_jaccard(matrix[:1], matrix[1:], k)[0]
        if max(len(a), len(b)) < k:  # the sketches are the whole sets: exact
            assert estimate == pytest.approx(exact)
        else:
            assert abs(estimate - exact) < 0.08


def test_minhash_dedup_short_and_empty_documents():
    docs = [
        {"id": "e1", "text": ""},
        {"id": "e2", "text": "  ...  "},  # nothing left after simplification
        {"id": "s1", "text": "Install it!"},
        {"id": "s2", "text": "install   IT"},
        {"id": "s3", "text": "Remove it"},
    ]
    kept, rejected = dedup("minhash_dedup", {}, docs)
    assert ids(kept) == ["e1", "e2", "s1", "s3"] and ids(rejected) == ["s2"]


def test_minhash_index_stays_small():
    op = registry.get("minhash_dedup")({})
    table = pa.Table.from_pylist([{"id": d["id"], "text": d["text"]} for d in long_pages(20)])
    signatures = op.signatures(table)
    bands = [c for c in signatures.column_names if c.startswith("band_")]
    assert len(bands) == 14
    band_bytes = sum(signatures.column(c).nbytes for c in bands) / len(table)
    assert band_bytes <= 14 * 8 + 14  # 8 bytes a band (plus validity bits)
    assert "text" not in signatures.column_names
    assert op.provenance()["minhash"]["permutation_scheme"] == "legacy"


def test_legacy_minhash_values_are_datasketchs_bit_for_bit():
    """The batch computation of the legacy scheme equals datasketch's MinHash.bulk: documents
    of every length (one longer than a block), none, and shingles at the 32-bit extremes."""
    import operator

    from datasketch import MinHash

    op = registry.get("minhash_dedup")({"seed": 7})
    texts = [d["text"] for d in long_pages(30)] + ["", "one two", " ".join(["word"] * 9000)]
    inputs = op.shingle_sets(texts).minhash_inputs
    inputs.append(np.array([0, 1, 2**32 - 1, 2**31], dtype=np.uint32))
    assert max(map(len, inputs)) > 2048 and min(map(len, inputs)) == 0
    ours = legacy_minhash_values(inputs, op.lsh_config())
    theirs = MinHash.bulk([list(map(int, s)) for s in inputs], num_perm=112, seed=7, scheme="legacy",
                          hashfunc=operator.index)
    assert np.array_equal(ours, np.stack([m.hashvalues for m in theirs]).astype(np.uint32))


def test_connected_components_match_a_plain_union_find():
    rng = np.random.default_rng(7)
    a = rng.integers(0, 400, 300)
    b = rng.integers(0, 400, 300)
    nodes, root = connected_components(a, b)
    parent = {int(n): int(n) for n in nodes}

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for x, y in zip(a.tolist(), b.tolist()):
        rx, ry = find(x), find(y)
        parent[max(rx, ry)] = min(rx, ry)
    assert [int(nodes[r]) for r in root] == [find(int(n)) for n in nodes]


def test_simplified_text_is_the_same_on_the_ascii_and_unicode_paths():
    ascii_text = "Version 2.6.32, e.g. apt-get install foo_bar (50% off!) x86 1..2 \t tabs\n"
    assert dedup_text.simplify(ascii_text).split() == dedup_text.simplify(ascii_text + "\u2014").split()
    assert dedup_text.simplify("Ünïcödé ÉTÉ naïve café\u00ad-au-lait 3,14").split() == [
        b"unicode", b"ete", b"naive", b"cafe", b"au", b"lait", b"0"
    ]


# ----------------------------------------------------------------------------------------------
# document_minhash_deduplicator (Data-Juicer's)
# ----------------------------------------------------------------------------------------------


def test_data_juicer_parameters_map_onto_minhash():
    op = registry.get("document_minhash_deduplicator")({})
    # Data-Juicer's defaults: 256 permutations tuned for 0.7 give 25 bands of 10 rows.
    assert op.params.bands_and_rows() == (25, 10) == optimal_bands_and_rows(0.7, 256)
    given = registry.get("document_minhash_deduplicator")({"num_bands": 20, "num_rows_per_band": 5})
    assert given.lsh_config().num_perm == 100
    with pytest.raises(ValueError, match="sentencepiece"):
        registry.get("document_minhash_deduplicator")({"tokenization": "sentencepiece"})
    with pytest.raises(ValueError, match="more than num_permutations"):
        registry.get("document_minhash_deduplicator")({"num_bands": 30, "num_rows_per_band": 10})
    with pytest.raises(ValueError, match="Extra inputs"):
        registry.get("document_minhash_deduplicator")({"ngram_size": 5})


def test_data_juicer_minhash_decisions():
    planted = _near_duplicate_docs()
    docs = planted[:12] + [{"id": "tiny1", "text": "two words"}, {"id": "tiny2", "text": "other three words"}]
    docs += planted[30:]
    kept, rejected = dedup("document_minhash_deduplicator", {}, docs)
    # As in Data-Juicer, documents with fewer than window_size tokens all collide (the first
    # is kept); the planted near-duplicates are found, the first of each cluster kept.
    assert "tiny1" in ids(kept) and "tiny2" in ids(rejected)
    assert {f"{docs[i]['id']}-variant" for i in (0, 2, 3, 4)} <= set(ids(rejected))
    assert set(ids(kept)) >= {d["id"] for d in docs[:12]}
    assert "dup_cluster_id" not in kept[0]  # Data-Juicer adds no fields
    assert dedup("document_minhash_deduplicator", {"partitions": 5}, docs, shard_size=9) == (kept, rejected)
    few = docs[:5] + planted[30:35]
    chars, rejected = dedup("document_minhash_deduplicator", {"tokenization": "character", "window_size": 10}, few)
    assert f"{docs[3]['id']}-variant" in ids(rejected)


# ----------------------------------------------------------------------------------------------
# End to end: real Prefect flow runs
# ----------------------------------------------------------------------------------------------


def _write_corpus(path: Path) -> list[dict]:
    """Real pages (English and German handbook pages) with planted duplicates of every kind."""
    pages = [dict(p) for p in long_pages(40)]
    records = []
    for i, page in enumerate(pages):
        text = page["text"]
        if i % 4 == 0:  # boilerplate that line_dedup removes
            text = "Debian Handbook mirror - navigation\n" + text + "\nMirror hosted by example.org"
        records.append({"id": page["id"], "text": text, "url": "https://" + page["url"], "lang": "en"})
    planted = [
        {"id": "exact", "text": records[5]["text"], "url": "https://mirror.example/a"},
        {"id": "url-variant", "text": "A different text at the same address.", "url": "http://www." + pages[6]["url"] + "/#top"},
        {"id": "near", "text": edit_words(records[7]["text"], 3, seed=7), "url": "https://mirror.example/b"},
        {"id": "near-header", "text": "Skip navigation\n" + records[9]["text"], "url": "https://mirror.example/c"},
    ]
    records += [dict(r, lang="en") for r in planted]
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    return records


def _dedup_recipe(tmp_path: Path, data: Path, name: str, run: dict, partitions: int) -> Path:
    recipe = {
        "name": "dedup-chain",
        "inputs": {"docs": {"path": str(data), "format": "jsonl"}},
        "process": [
            {"exact_dedup": {"partitions": partitions}},
            {"url_dedup": {"keep": "longest", "partitions": partitions}},
            {"line_dedup": {"min_count": 5, "partitions": partitions}},
            {"minhash_dedup": {"partitions": partitions}},
        ],
        "output": {"path": str(tmp_path / name), "keep_rejected": True},
        "run": {"shard_size": 23, **run},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def test_dedup_chain_end_to_end_same_bytes_on_any_executor_and_partitions(tmp_path, prefect_api):
    data = tmp_path / "docs.jsonl"
    _write_corpus(data)
    # One worker on threads with one partition, against two worker processes with three.
    configurations = [
        ("threads-1", {"executor": "threads", "workers": 1}, 1),
        ("processes-2", {"executor": "processes", "workers": 2}, 3),
    ]
    outputs = []
    for name, run, partitions in configurations:
        [manifest] = run_recipe(str(_dedup_recipe(tmp_path, data, name, run, partitions)), progress=False)
        outputs.append(manifest)
    checksums = [
        ([f["sha256"] for f in m["files"]], [f["sha256"] for f in m["rejected_files"]]) for m in outputs
    ]
    assert checksums[0] == checksums[1]

    manifest = outputs[0]
    folder = Path(versions.version_path(str(tmp_path / "threads-1"), manifest["version"]))
    rejected = [r for f in manifest["rejected_files"] for r in pq.read_table(folder / f["path"]).to_pylist()]
    reasons = {r["id"]: (r["rejected_by"], r["reject_reason"]) for r in rejected}
    assert reasons == {
        "exact": ("exact_dedup", "exact_duplicate"),
        "url-variant": ("url_dedup", "url_duplicate"),
        "near": ("minhash_dedup", "near_duplicate"),
        "near-header": ("minhash_dedup", "near_duplicate"),
    }
    kept = [r for f in manifest["files"] for r in pq.read_table(folder / f["path"]).to_pylist()]
    assert len(kept) == 40
    assert not any("Mirror hosted by example.org" in r["text"] for r in kept)  # 10 pages had it
    sizes = {r["id"]: r["dup_cluster_size"] for r in kept}
    assert sorted(sizes.values())[-2:] == [2, 2] and set(sizes.values()) == {1, 2}
    ops = {o["operator"]: o for o in manifest["operators"]}
    minhash = ops["minhash_dedup"]
    # The permutation scheme is recorded: in the version, and in the provenance beside it.
    assert minhash["version"] == "2+datasketch2-legacy"
    assert minhash["params"]["num_bands"] == 14
    assert minhash["provenance"]["minhash"]["permutation_scheme"] == "legacy"
    assert minhash["summary"]["duplicates"] == 2 and minhash["summary"]["largest_cluster"] == 2
    assert ops["line_dedup"]["summary"]["documents_with_repeated_units"] >= 10


# ----------------------------------------------------------------------------------------------
# scope: history — a refresh deduplicates against what earlier versions published
# ----------------------------------------------------------------------------------------------


def _write_jsonl(path: Path, records: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")


def _history_recipe(tmp_path: Path, data_dir: Path, keep: str, partitions: int) -> Path:
    recipe = {
        "name": "history-dedup",
        "inputs": {"crawl": {"path": str(data_dir / "*.jsonl"), "format": "jsonl"}},
        "process": [
            {"exact_dedup": {"scope": "history"}},
            {"url_dedup": {"scope": "history", "keep": keep}},
            {"minhash_dedup": {"scope": "history", "keep": keep, "partitions": partitions}},
        ],
        "output": {"path": str(tmp_path / "corpus"), "keep_rejected": True},
        "run": {"shard_size": 20, "executor": "threads", "workers": 2},
    }
    path = tmp_path / "history.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def _version_rows(root: Path, manifest: dict, key: str = "files", new_only: bool = True) -> list[dict]:
    """Rows of the files the version wrote (``new_only``), or of its whole snapshot."""
    return [
        r for f in manifest[key] if f.get("new", True) or not new_only
        for r in pq.read_table(versions.entry_url(str(root), manifest["version"], f)).to_pylist()
    ]


def _stored_signatures(cache: Path) -> set[str]:
    """Each stored shard's signatures (a part of a pack), from the packs' result files."""
    return {result["path"] for f in cache.glob("packs/*/result.json")
            for result in json.loads(f.read_text()).get("results", {}).values() if set(result) == {"path"}}


@pytest.mark.parametrize("keep, partitions", [("first", 1), ("longest", 3)])
def test_history_scope_publishes_only_documents_new_to_the_corpus(tmp_path, prefect_api, keep, partitions):
    pages = long_pages(36)
    first = [{"id": p["id"], "text": p["text"], "url": "https://" + p["url"]} for p in pages[:30]]
    data_dir = tmp_path / "crawl"
    data_dir.mkdir()
    _write_jsonl(data_dir / "day1.jsonl", first)
    recipe = _history_recipe(tmp_path, data_dir, keep, partitions)
    root = tmp_path / "corpus"
    [v1] = run_recipe(str(recipe), progress=False)
    assert v1["rows"] == 30 and v1["parent"] is None
    signatures_before = _stored_signatures(tmp_path / "corpus" / "cache")

    # The next day's crawl: the same pages again, an exact copy under a new URL, a longer
    # near-duplicate (it would win `keep: longest` within one run), a page under an old
    # URL, and new pages, one of them twice.
    second = [
        {"id": "copy", "text": first[3]["text"], "url": "https://mirror.example/copy"},
        {"id": "near-longer", "text": "Skip to main content\n" + edit_words(first[7]["text"], 2, seed=7) + "\nFooter: all rights reserved.", "url": "https://mirror.example/near"},
        {"id": "moved", "text": "This page moved to a new address.", "url": first[11]["url"].replace("https://", "http://www.")},
    ] + [{"id": p["id"], "text": p["text"], "url": "https://" + p["url"]} for p in pages[30:36]]
    second.append({"id": "new-again", "text": second[-1]["text"], "url": "https://mirror.example/again"})
    _write_jsonl(data_dir / "day2.jsonl", second)
    [v2] = run_recipe(str(recipe), progress=False)

    assert v2["parent"] == v1["version"]
    # Only the new pages are added; every old page and every duplicate of one is not. The
    # version is the whole corpus: the parent's files (shared) plus the new ones.
    assert sorted(ids(_version_rows(root, v2))) == sorted(p["id"] for p in pages[30:36])
    assert sorted(ids(_version_rows(root, v2, new_only=False))) == sorted(p["id"] for p in pages[:36])
    reasons = {r["id"]: (r["rejected_by"], r["reject_detail"]) for r in _version_rows(root, v2, "rejected_files")}
    assert reasons["copy"] == ("exact_dedup", f"duplicate_of={first[3]['id']}")
    assert reasons["near-longer"] == ("minhash_dedup", f"duplicate_of={first[7]['id']}")
    assert reasons["moved"] == ("url_dedup", f"duplicate_of={first[11]['id']}")
    assert reasons["new-again"] == ("exact_dedup", f"duplicate_of={pages[35]['id']}")
    # Re-crawled pages are published already (the snapshot holds them): not rejections too.
    assert not any(p["id"] in reasons for p in first)
    minhash = next(o for o in v2["operators"] if o["operator"] == "minhash_dedup")
    assert minhash["summary"]["history_documents"] == 30

    # Old documents were not hashed again: the old file's shards hit the cache at the first
    # operator and reach the later ones empty (history dropped them).
    new_signatures = _stored_signatures(tmp_path / "corpus" / "cache") - signatures_before
    hashed = [i for part in new_signatures for i in writers.read_table(part).column("id").to_pylist()]
    assert hashed and set(hashed) <= {r["id"] for r in second}

    # The history holds what each version published, and nothing else.
    for entry in v2["history"].values():
        assert len(entry["files"]) == 2
        stored = [pq.read_table(root / f).column("id").to_pylist() for f in entry["files"]]
        assert sorted(stored[0]) == sorted(p["id"] for p in first)
        assert sorted(stored[1]) == sorted(p["id"] for p in pages[30:36])

    # A day whose crawl holds nothing new commits nothing, and says why.
    _write_jsonl(data_dir / "day3.jsonl", [dict(r, id=f"again-{r['id']}") for r in first[:5]])
    [v3] = run_recipe(str(recipe), progress=False)
    assert v3["committed"] is False and v3["parent"] == v2["version"]
    assert "no document of this run is new" in v3["message"]
    assert [v["version"] for v in versions.list_versions(str(root))] == [v1["version"], v2["version"]]
