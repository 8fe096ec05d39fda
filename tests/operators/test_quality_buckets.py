"""``quality_buckets``: several scores -> one bucket by dataset-wide percentiles."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from recipeflow.operators.quality_buckets import QualityBuckets


def run(op, shards):
    decisions = op.resolve([op.signatures(s) for s in shards])
    return [op.apply(s, d) for s, d in zip(shards, decisions)]


def shards_of(a, b, cut=4):
    ids = [f"d{i}" for i in range(len(a))]
    table = pa.table({"id": ids, "text": ["x"] * len(a), "a": a, "b": b})
    return [table.slice(0, cut), table.slice(cut)]


def test_max_of_percentiles_cut_into_equal_buckets():
    a = [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    b = [100.0, 90, 80, 70, 60, 50, 40, 30, 20, 10]  # opposite order, another scale
    results = run(QualityBuckets({"fields": ["a", "b"], "buckets": 5, "score_field": "q"}),
                  shards_of(a, b))
    kept = pa.concat_tables([r.kept for r in results])
    # max(percentile of a, percentile of b) is high at both ends, lowest in the middle.
    assert kept.column("quality_bucket").to_pylist() == [4, 3, 2, 1, 0, 0, 1, 2, 3, 4]
    q = kept.column("q").to_pylist()
    assert q[0] == pytest.approx(0.95) and q[4] == pytest.approx(0.55)


def test_mean_combination_and_shard_layout_does_not_matter():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=200).tolist(), rng.normal(size=200).tolist()
    op = QualityBuckets({"fields": ["a", "b"], "combine": "mean", "buckets": 4})
    one = pa.concat_tables([r.kept for r in run(op, shards_of(a, b, cut=0))])
    two = pa.concat_tables([r.kept for r in run(op, shards_of(a, b, cut=77))])
    assert one.column("quality_bucket").equals(two.column("quality_bucket"))
    assert np.bincount(one.column("quality_bucket").to_numpy()).tolist() == [50, 50, 50, 50]
    mean_rank = (np.argsort(np.argsort(a)) + np.argsort(np.argsort(b))) / 2
    buckets = one.column("quality_bucket").to_numpy()
    assert mean_rank[buckets == 3].min() > mean_rank[buckets == 0].max()


def test_missing_scores_and_min_bucket():
    a = [1.0, None, 3, 4, None, 6]
    b = [None, None, 1.0, 2, 5, 0]
    op = QualityBuckets({"fields": ["a", "b"], "buckets": 2, "min_bucket": 1})
    results = run(op, shards_of(a, b, cut=3))
    kept = pa.concat_tables([r.kept for r in results])
    rejected = pa.concat_tables([r.rejected for r in results if r.rejected is not None])
    assert "d1" in rejected.column("id").to_pylist()  # no score at all
    reasons = dict(zip(rejected.column("id").to_pylist(), rejected.column("reject_reason").to_pylist()))
    assert reasons["d1"] == "missing_value"
    assert set(kept.column("quality_bucket").to_pylist()) == {1}
    assert op.last_summary["without_score"] == 1


def test_unknown_field_is_a_clear_error():
    op = QualityBuckets({"fields": ["nope"]})
    with pytest.raises(KeyError, match="no field 'nope'"):
        op.signatures(pa.table({"id": ["a"], "text": ["x"]}))
    with pytest.raises(ValueError, match="twice"):
        QualityBuckets({"fields": ["a", "a"]})
