"""``semantic_dedup`` on the bundled MiniLM's embeddings of a planted set of near copies."""

from __future__ import annotations

import pyarrow as pa
import pytest

from recipeflow.operators.embed import Embed
from recipeflow.operators.semantic_dedup import SemanticDedup
from tests.operators.corpora import planted_duplicates


def run(op, shards):
    decisions = op.resolve([op.signatures(s) for s in shards])
    return [op.apply(s, d) for s, d in zip(shards, decisions)]


@pytest.fixture(scope="module")
def planted():
    texts, groups = planted_duplicates(originals=240, copied=60, seed=3)
    table = pa.table({"id": [f"d{i}" for i in range(len(texts))], "text": texts, "group": groups})
    embedded = Embed({"max_length": 128}).process(table).kept
    return [embedded.slice(0, 100), embedded.slice(100, 120), embedded.slice(220)]


def precision_recall(results, shards):
    everything = pa.concat_tables(shards)
    group_of = dict(zip(everything.column("id").to_pylist(), everything.column("group").to_pylist()))
    rejected = pa.concat_tables([r.rejected for r in results if r.rejected is not None])
    dropped = rejected.column("id").to_pylist()
    kept_as = rejected.column("dup_cluster_id").to_pylist()
    correct = sum(group_of[d] == group_of[k] for d, k in zip(dropped, kept_as))
    planted_copies = len(group_of) - len(set(group_of.values()))
    return correct / max(len(dropped), 1), correct / planted_copies


def test_planted_near_copies_found_at_the_default_eps(planted):
    op = SemanticDedup({})
    results = run(op, planted)
    precision, recall = precision_recall(results, planted)
    assert precision >= 0.95 and recall >= 0.8, (precision, recall)
    kept = pa.concat_tables([r.kept for r in results])
    assert "__embedding" in kept.column_names  # still there for later operators
    assert op.last_summary["clusters"] == round((300) ** 0.5)
    rejected = pa.concat_tables([r.rejected for r in results if r.rejected is not None])
    assert set(rejected.column("reject_reason").to_pylist()) == {"semantic_duplicate"}
    assert min(rejected.column("reject_value").to_pylist()) >= 0.9
    # Cluster fields: every duplicate's kept document is kept, with the group's size.
    kept_ids = set(kept.column("id").to_pylist())
    assert set(rejected.column("dup_cluster_id").to_pylist()) <= kept_ids
    sizes = dict(zip(kept.column("id").to_pylist(), kept.column("dup_cluster_size").to_pylist()))
    for kept_id in rejected.column("dup_cluster_id").to_pylist():
        assert sizes[kept_id] >= 2


def test_keep_policies_and_annotate(planted):
    first = run(SemanticDedup({"keep": "first"}), planted)
    rejected = pa.concat_tables([r.rejected for r in first if r.rejected is not None])
    # Copies come after their originals: with keep first, the copies are the ones dropped.
    numbers = [int(i[1:]) for i in rejected.column("id").to_pylist()]
    kept_numbers = [int(i[1:]) for i in rejected.column("dup_cluster_id").to_pylist()]
    assert numbers and all(k < d for d, k in zip(numbers, kept_numbers))
    # keep score: the higher score wins whatever the order.
    scored = [s.append_column("q", pa.array([-float(i) for i in range(s.num_rows)], pa.float64())) for s in planted]
    by_score = run(SemanticDedup({"keep": "score", "score_field": "q"}), scored)
    assert sum(len(r.kept) for r in by_score) == sum(len(r.kept) for r in first)
    annotated = run(SemanticDedup({"mode": "annotate"}), planted)
    assert all(r.rejected is None for r in annotated)
    table = pa.concat_tables([r.kept for r in annotated])
    duplicates = sum(a != b for a, b in zip(table.column("id").to_pylist(), table.column("dup_cluster_id").to_pylist()))
    assert duplicates == sum(len(r.rejected) for r in run(SemanticDedup({}), planted) if r.rejected is not None)
    assert table.column("semantic_cluster").null_count == 0


def test_shard_layout_does_not_change_the_result(planted):
    one = run(SemanticDedup({}), [pa.concat_tables(planted)])
    three = run(SemanticDedup({}), planted)
    assert pa.concat_tables([r.kept for r in one]).column("id").equals(
        pa.concat_tables([r.kept for r in three]).column("id"))


def test_without_embeddings_is_a_clear_error_and_missing_vectors_are_kept():
    with pytest.raises(KeyError, match="put `embed` before semantic_dedup"):
        SemanticDedup({}).signatures(pa.table({"id": ["a"], "text": ["x"]}))
    vectors = pa.array([[1.0, 0.0], None, [1.0, 0.001]], pa.list_(pa.float32(), 2))
    table = pa.table({"id": ["a", "b", "c"], "text": ["x", "y", "z"], "embedding": vectors})
    (result,) = run(SemanticDedup({"keep": "first"}), [table])
    assert result.kept.column("id").to_pylist() == ["a", "b"]
    assert result.kept.column("semantic_cluster").to_pylist()[1] is None
    with pytest.raises(ValueError, match="keep: score needs score_field"):
        SemanticDedup({"keep": "score"})


def test_history_scope_published_documents_always_win(planted):
    everything = pa.concat_tables(planted)
    published, new = everything.slice(0, 240), everything.slice(240)  # originals, then copies
    for keep in ("closest", "farthest"):
        op = SemanticDedup({"scope": "history", "keep": keep})
        assert op.history_signature_params() == {"embedding_field": "embedding"}
        history = op.as_history(op.signatures(published))
        decisions = op.resolve([history, op.signatures(new)])
        assert decisions[0].drop == {}  # no published document loses to a new one
        result = op.apply(new, decisions[1])
        rejected = result.rejected
        assert rejected is not None and len(rejected) >= 50  # most of the 60 copies
        published_ids = set(published.column("id").to_pylist())
        assert set(rejected.column("dup_cluster_id").to_pylist()) <= published_ids
    # Scope run: only the new documents, which duplicate nothing among themselves.
    op = SemanticDedup({})
    assert op.history_signature_params() is None
    (alone,) = op.resolve([op.signatures(new)])
    assert len(alone.drop) <= 2
