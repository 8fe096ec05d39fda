"""Selectors (top_k, top_fraction, percentile_filter, sample, mix) and script_id.

Selectors are barriers: each test runs the three phases itself (signatures per shard, one
resolve, apply per shard) over several shards, then the engine runs them end to end.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from recipeflow.datasets import versions
from recipeflow.orchestration.runner import run_recipe
from recipeflow.operators import document as doc
from recipeflow.operators.base import BarrierOperator
from recipeflow.operators.mix import Mix, MixError, weight_problems
from recipeflow.operators.percentile_filter import PercentileFilter
from recipeflow.operators.sample import Sample
from recipeflow.operators.script_id import ScriptId, dominant_script
from recipeflow.operators.top_fraction import TopFraction
from recipeflow.operators.top_k import MissingField, TopK
from tests.conftest import CORPORA


# -- helpers ------------------------------------------------------------------------------------


def cut(rows: list[dict], shard_size: int) -> list[pa.Table]:
    """Rows as shards of ``shard_size`` documents, in order."""
    return [pa.Table.from_pylist(rows[i:i + shard_size]) for i in range(0, len(rows), shard_size)]


@dataclass
class BarrierRun:
    kept: list[dict]
    rejected: list[dict]

    @property
    def kept_ids(self) -> list[str]:
        return [r[doc.ID] for r in self.kept]


def run_barrier(op: BarrierOperator, shards: list[pa.Table]) -> BarrierRun:
    """The three phases, as the engine runs them."""
    signatures = [op.signatures(shard) for shard in shards]
    decisions = op.resolve(signatures)
    assert len(decisions) == len(shards)
    kept, rejected = [], []
    for shard, decision in zip(shards, decisions):
        result = op.apply(shard, decision)
        kept += result.kept.to_pylist()
        if result.rejected is not None:
            rejected += result.rejected.to_pylist()
    return BarrierRun(kept, rejected)


def scored(values: list[float | None]) -> list[dict]:
    return [{"id": f"d{i:03d}", "text": f"document {i}", "score": v} for i, v in enumerate(values)]


# -- top_k / top_fraction -----------------------------------------------------------------------


def test_top_k_is_global_and_breaks_ties_by_input_order():
    # Ties at 5.0 in shards 0, 1 and 3; the cutoff falls inside them.
    values = [1.0, 5.0, 2.0, 9.0, 5.0, 0.5, 7.0, 5.0, 3.0, 8.0, 5.0, 4.0, 6.0, None]
    shards = cut(scored(values), 3)
    assert len(shards) == 5
    run = run_barrier(TopK({"field": "score", "k": 6}), shards)
    # 9, 8, 7, 6 then the first two 5.0s in input order (d001, d004); d007 and d010 lose.
    assert run.kept_ids == ["d001", "d003", "d004", "d006", "d009", "d012"]
    reasons = {r["id"]: (r["reject_reason"], r["reject_statistic"], r["reject_value"]) for r in run.rejected}
    assert reasons["d007"] == ("not_in_top_k", "score", 5.0)
    assert reasons["d013"] == ("missing_value", "score", None)
    assert len(run.rejected) == len(values) - 6


def test_top_k_result_does_not_depend_on_sharding_and_lowest_order():
    rng = random.Random(7)
    rows = scored([float(rng.randint(0, 20)) for _ in range(200)])
    results = {
        size: run_barrier(TopK({"field": "score", "k": 25}), cut(rows, size)).kept_ids
        for size in (7, 50, 200)
    }
    assert results[7] == results[50] == results[200]
    expected = sorted(range(200), key=lambda i: (-rows[i]["score"], i))[:25]
    assert results[7] == [rows[i]["id"] for i in sorted(expected)]

    lowest = run_barrier(TopK({"field": "score", "k": 3, "order": "lowest"}), cut(rows, 7)).kept
    assert sorted(r["score"] for r in lowest) == sorted(r["score"] for r in rows)[:3]


def test_top_k_k_larger_than_dataset_and_empty_shards():
    shards = cut(scored([3.0, 1.0]), 1) + [pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())})]
    op = TopK({"field": "score", "k": 10})
    assert run_barrier(op, shards).kept_ids == ["d000", "d001"]
    assert op.last_summary["selected"] == 2 and op.last_summary["cutoff"] == 1.0


def test_top_k_missing_or_non_numeric_field_is_a_clear_error():
    shards = cut(scored([1.0, 2.0]), 2)
    with pytest.raises(MissingField, match="no field 'quality'.*score"):
        TopK({"field": "quality", "k": 1}).signatures(shards[0])
    with pytest.raises(TypeError, match="'text' holds string values"):
        TopK({"field": "text", "k": 1}).signatures(shards[0])


def test_top_fraction_rounds_half_up():
    values = [float(v) for v in (4, 8, 1, 9, 3)]
    op = TopFraction({"field": "score", "fraction": 0.5})
    run = run_barrier(op, cut(scored(values), 2))
    assert run.kept_ids == ["d000", "d001", "d003"]  # 0.5 × 5 = 2.5 -> 3: 9, 8, 4
    assert {r["reject_reason"] for r in run.rejected} == {"not_in_top_fraction"}
    assert op.last_summary["k"] == 3


# -- percentile_filter ----------------------------------------------------------------------------


def test_percentile_filter_uses_nearest_rank_over_all_shards():
    values = list(range(1, 101))
    random.Random(3).shuffle(values)
    rows = scored([float(v) for v in values])
    op = PercentileFilter({"field": "score", "min_percentile": 7, "max_percentile": 90})
    run = run_barrier(op, cut(rows, 13))
    # Nearest rank: p7 of 1..100 is the 7th value (7, not 8 through float error); p90 is 90.
    assert sorted(r["score"] for r in run.kept) == [float(v) for v in range(7, 91)]
    assert op.last_summary["lower"] == 7.0 and op.last_summary["upper"] == 90.0
    reasons = {r["score"]: r["reject_reason"] for r in run.rejected}
    assert reasons[6.0] == "below_min_percentile" and reasons[91.0] == "above_max_percentile"
    assert all(r["reject_statistic"] == "score" for r in run.rejected)


def test_percentile_filter_ties_are_kept_and_bounds_validated():
    rows = scored([1.0, 2.0, 2.0, 2.0, 3.0, None])
    run = run_barrier(PercentileFilter({"field": "score", "min_percentile": 40}), cut(rows, 4))
    # 5 values: p40 is rank 2 = 2.0, so every 2.0 is kept.
    assert run.kept_ids == ["d001", "d002", "d003", "d004"]
    assert {r["id"]: r["reject_reason"] for r in run.rejected} == {
        "d000": "below_min_percentile", "d005": "missing_value"
    }
    with pytest.raises(ValueError, match="below min_percentile"):
        PercentileFilter({"field": "score", "min_percentile": 60, "max_percentile": 50})


# -- sample ---------------------------------------------------------------------------------------


def test_sample_is_deterministic_by_seed_and_independent_of_sharding():
    rows = scored([0.0] * 500)
    first = run_barrier(Sample({"count": 50, "seed": 1}), cut(rows, 64)).kept_ids
    again = run_barrier(Sample({"count": 50, "seed": 1}), cut(rows, 500)).kept_ids
    other = run_barrier(Sample({"count": 50, "seed": 2}), cut(rows, 64)).kept_ids
    assert first == again and len(first) == 50
    assert first != other and len(set(first) & set(other)) < 25
    assert first == sorted(first)  # kept documents stay in input order

    bigger = run_barrier(Sample({"count": 80, "seed": 1}), cut(rows, 64)).kept_ids
    assert set(first) <= set(bigger)  # a larger sample contains a smaller one


def test_sample_fraction_and_count_larger_than_dataset():
    rows = scored([0.0] * 30)
    run = run_barrier(Sample({"fraction": 0.25}), cut(rows, 8))
    assert len(run.kept_ids) == 8  # 7.5 rounds half up
    assert {r["reject_reason"] for r in run.rejected} == {"not_sampled"}
    assert len(run_barrier(Sample({"count": 100}), cut(rows, 8)).kept_ids) == 30
    with pytest.raises(ValueError, match="exactly one of fraction and count"):
        Sample({"fraction": 0.5, "count": 3})
    with pytest.raises(ValueError, match="exactly one of fraction and count"):
        Sample({})


# -- mix ------------------------------------------------------------------------------------------


def sourced(origin: str, count: int, lengths: list[int] | None = None) -> list[dict]:
    lengths = lengths or [10] * count
    return [
        {"id": f"{origin}{i:03d}", "text": "x" * lengths[i % len(lengths)], doc.ORIGIN: origin}
        for i in range(count)
    ]


def by_origin(rows: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r[doc.ORIGIN]] = counts.get(r[doc.ORIGIN], 0) + 1
    return counts


def test_mix_by_documents_default_total_takes_the_largest_mix_without_repeats():
    rows = sourced("a", 60) + sourced("b", 200)
    op = Mix({"weights": {"a": 1, "b": 3}})
    run = run_barrier(op, cut(rows, 32))
    assert by_origin(run.kept) == {"a": 60, "b": 180}  # min(60 / 0.25, 200 / 0.75) = 240
    summary = op.last_summary
    assert summary["total"] == 240 and summary["by"] == "documents"
    assert summary["origins"]["b"]["available_documents"] == 200
    assert summary["origins"]["b"]["selected_documents"] == 180
    assert summary["origins"]["a"]["added_copies"] == 0
    rejected = run.rejected
    assert {r["reject_reason"] for r in rejected} == {"mix_not_selected"}
    assert "origin=b: selected 180 of 200" in rejected[0]["reject_detail"]


def test_mix_total_is_apportioned_exactly_and_selection_is_seeded():
    rows = sourced("a", 100) + sourced("b", 100) + sourced("c", 100)
    weights = {"a": 1, "b": 1, "c": 1}
    run = run_barrier(Mix({"weights": weights, "total": 100}), cut(rows, 40))
    assert sorted(by_origin(run.kept).values()) == [33, 33, 34]  # largest remainder: adds to 100
    again = run_barrier(Mix({"weights": weights, "total": 100}), cut(rows, 300))
    other = run_barrier(Mix({"weights": weights, "total": 100, "seed": 5}), cut(rows, 40))
    assert run.kept_ids == again.kept_ids
    assert run.kept_ids != other.kept_ids


def test_mix_by_characters_meets_shares_within_half_a_document():
    lengths = [50, 400, 120, 30, 900, 75, 260, 10]
    rows = sourced("a", 80, lengths) + sourced("b", 40, lengths[::-1])
    op = Mix({"weights": {"a": 2, "b": 1}, "by": "characters", "total": 12_000})
    run = run_barrier(op, cut(rows, 16))
    chars = {o: sum(len(r["text"]) for r in run.kept if r[doc.ORIGIN] == o) for o in "ab"}
    assert abs(chars["a"] - 8_000) <= max(lengths) / 2
    assert abs(chars["b"] - 4_000) <= max(lengths) / 2
    assert op.last_summary["origins"]["a"]["output_characters"] == chars["a"]

    # Default total: source b (40 docs, 9,260 chars) is used whole; a gets twice that.
    op = Mix({"weights": {"a": 2, "b": 1}, "by": "characters"})
    run = run_barrier(op, cut(rows, 16))
    chars = {o: sum(len(r["text"]) for r in run.kept if r[doc.ORIGIN] == o) for o in "ab"}
    assert chars["b"] == sum(len(r["text"]) for r in rows if r[doc.ORIGIN] == "b")
    assert abs(chars["a"] - 2 * chars["b"]) <= max(lengths) / 2


def test_mix_upsampling_repeats_documents_with_copy_ids():
    rows = sourced("a", 10) + sourced("b", 50)
    op = Mix({"weights": {"a": 1, "b": 1}, "total": 56, "upsample": True})
    run = run_barrier(op, cut(rows, 16))
    assert by_origin(run.kept) == {"a": 28, "b": 28}
    a_ids = [i for i in run.kept_ids if i.startswith("a")]
    # 28 of 10 documents: every one twice, 8 of them a third time, copies right after.
    assert sum(i.endswith("#2") for i in a_ids) == 10
    assert sum(i.endswith("#3") for i in a_ids) == 8
    assert len(set(a_ids)) == 28
    assert a_ids[:2] == ["a000", "a000#2"]
    origin = op.last_summary["origins"]["a"]
    assert (origin["selected_documents"], origin["output_documents"], origin["added_copies"]) == (10, 28, 18)
    assert origin["upsampled_documents"] == 10

    with pytest.raises(MixError, match="'a' has 10 documents, but its share .* is 28.*upsample: true"):
        run_barrier(Mix({"weights": {"a": 1, "b": 1}, "total": 56}), cut(rows, 16))


def test_mix_errors_name_the_sources():
    rows = sourced("a", 5) + sourced("b", 5)
    with pytest.raises(MixError, match="came through 'b', which `weights` does not name"):
        run_barrier(Mix({"weights": {"a": 1}}), cut(rows, 4))
    with pytest.raises(MixError, match="weights name 'c', but no document came through it"):
        run_barrier(Mix({"weights": {"a": 1, "b": 1, "c": 1}}), cut(rows, 4))
    with pytest.raises(MixError, match="needs the '__origin' column"):
        Mix({"weights": {"a": 1}}).signatures(pa.table({"id": ["x"], "text": ["y"]}))
    with pytest.raises(ValueError, match="at least one weight must be above 0"):
        Mix({"weights": {"a": 0}})
    assert weight_problems({"a": 1, "c": 1}, ["a", "b"]) == [
        "weights name 'c', which is not a source of this node (from: a, b)",
        "source 'b' has no weight; give every source of the node a weight (0 leaves it out)",
    ]
    # Weight 0 leaves a source out.
    run = run_barrier(Mix({"weights": {"a": 1, "b": 0}}), cut(rows, 4))
    assert by_origin(run.kept) == {"a": 5}


# -- script_id ------------------------------------------------------------------------------------

SENTENCES = {
    "en": ("Debian is a free operating system for your computer.", "Latn"),
    "de": ("Debian ist ein freies Betriebssystem für Ihren Computer, größtenteils.", "Latn"),
    "ru": ("Debian — это свободная операционная система для вашего компьютера.", "Cyrl"),
    "el": ("Το Debian είναι ένα ελεύθερο λειτουργικό σύστημα για τον υπολογιστή σας.", "Grek"),
    "ar": ("ديبيان هو نظام تشغيل حر لحاسوبك.", "Arab"),
    "zh": ("Debian 是一个自由的操作系统，可以安装在您的计算机上。", "Hani"),
    "ja": ("Debian はあなたのコンピューターのための自由なオペレーティングシステムです。", "Jpan"),
    "ko": ("데비안은 여러분의 컴퓨터를 위한 자유 운영 체제입니다.", "Kore"),
}


def test_script_id_on_eight_languages():
    texts = [text for text, _ in SENTENCES.values()] + ["12 345 — !!", ""]
    batch = pa.table({"id": [str(i) for i in range(len(texts))], "text": texts})
    out = ScriptId().process(batch).kept
    expected = [script for _, script in SENTENCES.values()] + ["Zyyy", "Zyyy"]
    assert out.column("script").to_pylist() == expected
    ratios = out.column("script_ratio").to_pylist()
    assert ratios[-1] == 0.0
    # "Debian" is Latin inside the Russian, Chinese, Japanese and Korean sentences.
    assert ratios[0] == 1.0 and 0.8 < ratios[2] < 1.0
    assert ScriptId({"ratio_field": None}).process(batch).kept.column_names == ["id", "text", "script"]


def test_script_id_on_real_pages():
    """Translated handbook paragraphs (without any Latin letter, since many translations keep
    English paragraphs) get their language's script."""
    with gzip.open(CORPORA / "debian-handbook.jsonl.gz", "rt") as f:
        pages = [json.loads(line) for line in f]
    expected = {"ru": "Cyrl", "el": "Grek", "ar": "Arab", "fa": "Arab", "ja": "Jpan", "ko": "Kore", "zh": "Hani"}
    for lang, script in expected.items():
        paragraphs = [
            p for page in pages if page["lang"] == lang for p in page["text"].split("\n")
            if sum(c.isalpha() for c in p) >= 20 and not re.search("[A-Za-z]", p)
        ]
        found = [dominant_script(p)[0] for p in paragraphs]
        assert len(found) >= 5, lang
        # Japanese headings can be all kanji (Hani); everything else is exact.
        assert found.count(script) >= (0.8 if lang == "ja" else 1.0) * len(found), (lang, Counter(found))


def test_script_id_sampling_of_long_documents():
    text = ("Привет, мир. " * 2000) + ("hello world " * 100)
    full, _ = dominant_script(text)
    sampled, ratio = dominant_script(text, max_chars=500)
    assert full == sampled == "Cyrl" and ratio > 0.9


# -- end to end -----------------------------------------------------------------------------------


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def read_output(manifest: dict, root: Path) -> list[dict]:
    folder = Path(versions.version_path(str(root), manifest["version"]))
    return [r for f in manifest["files"] for r in pq.read_table(folder / f["path"]).to_pylist()]


def test_top_k_and_mix_through_the_engine(tmp_path, prefect_api):
    # 23 documents with lengths that repeat, so top_k's cutoff falls on a tie across shards.
    lengths = [30, 80, 55, 80, 12, 99, 41, 80, 63, 99, 7, 80, 25, 50, 80, 33, 90, 18, 80, 61, 44, 72, 80]
    docs = [{"id": f"w{i:02d}", "text": "y" * n} for i, n in enumerate(lengths)]
    books = [{"id": f"b{i:02d}", "text": "z" * (20 + i)} for i in range(9)]
    recipe = {
        "name": "select-and-mix",
        "inputs": {
            "web": {"path": write_jsonl(tmp_path / "web.jsonl", docs)},
            "books": {"path": write_jsonl(tmp_path / "books.jsonl", books)},
        },
        "nodes": {
            "best": {
                "from": "web",
                "process": [{"text_length_filter": {"min_length": 1}}, {"top_k": {"field": "stat_text_length", "k": 6}}],
            },
            "mixed": {"from": ["web", "books"], "process": [{"mix": {"weights": {"web": 1, "books": 1}}}]},
            "upsampled": {
                "from": ["web", "books"],
                "process": [{"mix": {"weights": {"web": 1, "books": 1}, "total": 30, "upsample": True}}],
            },
        },
        "outputs": {
            "best": {"path": str(tmp_path / "best"), "keep_rejected": True},
            "mixed": {"path": str(tmp_path / "mixed")},
            "upsampled": {"path": str(tmp_path / "upsampled")},
        },
        "run": {"executor": "threads", "workers": 2, "shard_size": 4},
    }
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    best, mixed, upsampled = run_recipe(str(path), progress=False)

    # top_k: 99, 99, 90 then the first three of the seven 80s, in input order.
    assert [r["id"] for r in read_output(best, tmp_path / "best")] == ["w01", "w03", "w05", "w07", "w09", "w16"]
    top_k = next(o for o in best["operators"] if o["operator"] == "top_k")
    assert (top_k["docs_in"], top_k["docs_out"]) == (23, 6)

    # mix: books (9) limit the mix to 9 + 9; selection is deterministic.
    rows = read_output(mixed, tmp_path / "mixed")
    assert sum(r["id"].startswith("w") for r in rows) == 9
    assert sorted(r["id"] for r in rows if r["id"].startswith("b")) == [b["id"] for b in books]
    assert "__origin" not in rows[0]

    # Upsampled: 15 + 15; books repeat (9 documents -> 15 rows, 6 copies "#2").
    rows = read_output(upsampled, tmp_path / "upsampled")
    ids = [r["id"] for r in rows]
    assert sum(i.startswith("w") for i in ids) == 15 and sum(i.startswith("b") for i in ids) == 15
    assert sum(i.startswith("b") and i.endswith("#2") for i in ids) == 6
    assert len(set(ids)) == 30


def test_mix_weights_are_checked_when_the_recipe_is_validated():
    from recipeflow.recipe.errors import RecipeInvalid
    from recipeflow.recipe.validate import parse_recipe

    data = {
        "name": "mix-check",
        "inputs": {"web": {"path": "web.jsonl"}, "books": {"path": "books.jsonl"}},
        "nodes": {"mixed": {"from": ["web", "books"], "process": [{"mix": {"weights": {"web": 1, "bokks": 1}}}]}},
        "outputs": {"mixed": {"path": "out"}},
    }
    with pytest.raises(RecipeInvalid) as error:
        parse_recipe(data, source="mix.yaml")
    assert "nodes.mixed.process[0].mix" in str(error.value) and "bokks" in str(error.value)
