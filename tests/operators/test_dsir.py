"""``dsir``: importance resampling toward a target, on two real text sources."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recipeflow.operators.dsir import Dsir, gumbel_noise, hashed_ngrams
from tests.operators.corpora import manual_paragraphs


def run(op, shards):
    decisions = op.resolve([op.signatures(s) for s in shards])
    return [op.apply(s, d) for s, d in zip(shards, decisions)]


@pytest.fixture(scope="module")
def mix(tmp_path_factory):
    """Two bundled corpora (tests/data): 100 paragraphs of the Debian Administrator's Handbook
    (every other one) and 300 of Debian Reference, shuffled, in 3 shards; the target is 150
    other handbook paragraphs, in a JSONL file."""
    handbook, reference = manual_paragraphs("debian-handbook"), manual_paragraphs("debian-reference")
    target_path = tmp_path_factory.mktemp("target") / "target.jsonl"
    target_path.write_text("".join(json.dumps({"text": t}) + "\n" for t in handbook[1::2][:150]))
    texts = handbook[0::2][:100] + reference[:300]
    source = ["handbook"] * 100 + ["reference"] * 300
    order = np.random.default_rng(0).permutation(len(texts))
    table = pa.table({"id": [f"d{i}" for i in order], "text": [texts[i] for i in order],
                      "source": [source[i] for i in order]})
    return [table.slice(0, 150), table.slice(150, 100), table.slice(250)], str(target_path)


def share_from_target_source(results):
    kept = pa.concat_tables([r.kept for r in results])
    return float(np.mean(np.array(kept.column("source").to_pylist()) == "handbook")), len(kept)


def test_share_from_the_targets_source_approaches_one_as_k_shrinks(mix):
    shards, target = mix
    shares = {}
    for k in (10, 25, 50, 100, 200):
        share, kept = share_from_target_source(run(Dsir({"target": target, "k": k}), shards))
        assert kept == k
        shares[k] = share
    # The raw share of handbook paragraphs is 0.25.
    assert shares[10] == 1.0 and shares[25] >= 0.95 and shares[50] >= 0.8, shares
    assert shares[10] >= shares[25] >= shares[50] >= shares[100] >= shares[200] > 0.3, shares


def test_weights_are_kept_and_sharding_does_not_matter(mix):
    shards, target = mix
    op = Dsir({"target": target, "fraction": 0.25, "seed": 7})
    three = run(op, shards)
    one = run(Dsir({"target": target, "fraction": 0.25, "seed": 7}), [pa.concat_tables(shards)])
    kept3, kept1 = pa.concat_tables([r.kept for r in three]), pa.concat_tables([r.kept for r in one])
    assert len(kept3) == 100 and kept3.column("id").equals(kept1.column("id"))
    weights = dict(zip(kept1.column("id").to_pylist(), kept1.column("dsir_log_weight").to_pylist()))
    rejected = pa.concat_tables([r.rejected for r in one if r.rejected is not None])
    assert set(rejected.column("reject_reason").to_pylist()) == {"not_resampled"}
    # Handbook paragraphs weigh more than Debian Reference ones on average.
    sources = dict(zip(kept1.column("id").to_pylist(), kept1.column("source").to_pylist()))
    by_source = {s: np.mean([w for i, w in weights.items() if sources[i] == s]) for s in set(sources.values())}
    assert by_source.get("reference", -np.inf) < by_source["handbook"]
    assert op.last_summary["target_documents"] == 150
    # Another seed, another sample (resampling, not a top-k).
    other = run(Dsir({"target": target, "fraction": 0.25, "seed": 8}), shards)
    assert pa.concat_tables([r.kept for r in other]).column("id") != kept3.column("id")


def test_parquet_and_glob_targets(mix, tmp_path):
    shards, target = mix
    texts = [json.loads(line)["text"] for line in open(target)]
    pq.write_table(pa.table({"body": texts[:70]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"body": texts[70:]}), tmp_path / "b.parquet")
    op = Dsir({"target": str(tmp_path / "*.parquet"), "text_field": "body", "k": 10})
    assert [f["path"].rsplit("/", 1)[-1] for f in op.provenance()["target_files"]] == ["a.parquet", "b.parquet"]
    assert share_from_target_source(run(op, shards))[0] == 1.0
    assert op.last_summary["target_documents"] == 150


def test_features_and_noise():
    bins, counts = hashed_ngrams("the cat the cat", 65536)
    assert counts.sum() == 4 + 3 and bins.dtype == np.uint16  # 4 words, 3 bigrams
    assert hashed_ngrams("", 1024)[0].size == 0
    noise = gumbel_noise([f"d{i}" for i in range(20000)], 0)
    assert abs(noise.mean() - 0.5772) < 0.03  # the Gumbel distribution's mean (Euler's constant)


def test_bad_parameters_and_missing_target(tmp_path):
    with pytest.raises(ValueError, match="exactly one of k and fraction"):
        Dsir({"target": "x.jsonl"})
    with pytest.raises(FileNotFoundError, match="`target`.*names no file"):
        Dsir({"target": str(tmp_path / "none*.jsonl"), "k": 1}).provenance()
