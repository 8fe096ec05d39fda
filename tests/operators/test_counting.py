"""Counting one mechanism: documents, rejection reasons and tokens per step (StepCounts), summed
per node (NodeResult.counts) as the manifest, summary, artifacts and diff show them."""

from __future__ import annotations

import pyarrow as pa

from recipeflow.datasets.counts import format_reasons, step_table_lines
from recipeflow.operators.chain import StepCounts, run_chain
from recipeflow.operators.rehydrate import Rehydrate, RehydrateParams
from recipeflow.operators.registry import get


def build(name: str, **params):
    cls = get(name)
    return cls(cls.Params(**params))


def batch(texts: list[str]) -> pa.Table:
    return pa.table({"id": [str(i) for i in range(len(texts))], "text": texts})


def test_steps_count_reasons_and_tokens_once_documents_have_them():
    steps = [
        ("main.process[0]", build("text_length_filter", min_length=10, max_length=60)),
        ("main.process[1]", build("tokenize", tokenizer="smollm2", add_eos=True, eos_token="<|endoftext|>")),
        ("main.process[2]", build("text_length_filter", min_length=20)),
    ]
    counts = [StepCounts(s, op.name) for s, op in steps]
    texts = ["short", "tiny", "a sentence long enough to stay", "x" * 100, "twelve chars", "another kept sentence"]
    for part in (texts[:3], texts[3:]):  # two batches: counts add up
        result = run_chain(steps, batch(part), counts)
    length, tokenize, second = counts
    assert (length.docs_in, length.docs_out, length.rejected) == (6, 3, 3)
    assert length.reasons == {"text_length_below_min": 2, "text_length_above_max": 1}
    assert length.tokens_in is None and length.tokens_out is None  # no n_tokens yet
    assert tokenize.tokens_in is None and tokenize.tokens_out > 0
    # The second filter sees n_tokens: tokens in and out, and the tokens of what it removed.
    assert second.tokens_in == tokenize.tokens_out
    assert second.reasons == {"text_length_below_min": 1}
    assert second.tokens_out < second.tokens_in
    assert "n_tokens" in result.kept.column_names


def test_copies_count_as_added_documents():
    op = Rehydrate(RehydrateParams(repeats={"2-4": 3, "5+": 0}))
    count = StepCounts("main.process[0]", "rehydrate")
    table = pa.table({"id": ["a", "b", "c"], "text": ["x"] * 3, "dup_cluster_size": [1, 2, 9], "n_tokens": [1, 2, 3]})
    run_chain([("main.process[0]", op)], table, [count])
    assert (count.docs_in, count.docs_out, count.docs_added, count.rejected) == (3, 4, 2, 1)
    assert count.reasons == {"rehydrate_zero": 1}
    assert (count.tokens_in, count.tokens_out) == (6, 1 + 2 * 3)


def test_the_terminal_table_shows_reasons_and_token_columns_only_with_tokens():
    ops = [
        {"step": "read:web", "operator": "read", "docs_in": 10, "docs_out": 9, "rejected": 1,
         "reasons": {"unreadable": 1}},
        {"step": "main.process[0]", "operator": "tokenize", "docs_in": 9, "docs_out": 9, "rejected": 0,
         "tokens_in": None, "tokens_out": 12345, "reasons": {}},
    ]
    lines = step_table_lines(ops)
    assert "tokens out" in lines[0] and "rejected by reason" in lines[0]
    assert lines[1].endswith("unreadable 1") and "12,345" in lines[2]
    assert "tokens" not in step_table_lines(ops[:1])[0]
    assert format_reasons({"a": 1, "b": 5, "c": 2, "d": 2}, top=2) == "b 5, c 2 (+2 more)"


def test_route_rows_name_the_values_they_take():
    from recipeflow.datasets.counts import step_label

    row = {"step": "route:de", "operator": "route", "route": {"field": "lang", "values": ["de"]}}
    assert step_label(row) == "route:de [lang=de]"
    other = {"step": "route:rest", "operator": "route", "route": {"field": "lang", "exclude": ["de", "en"]}}
    assert step_label(other) == "route:rest [lang=not de,en]"
    assert step_table_lines([{**row, "docs_in": 10, "docs_out": 4, "rejected": 6}])[1].split()[:3] == [
        "route:de", "[lang=de]", "route"]
