"""mix by tokens: target_tokens, max_epochs, on_short, phases; determinism and refreshes."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from pydantic import ValidationError

from recipeflow.operators import document as doc
from recipeflow.operators.mix import Mix, MixError, MixParams
from recipeflow.recipe.errors import RecipeInvalid
from recipeflow.recipe.loading import load_recipe


def source(origin: str, n: int, tokens, prefix: str | None = None) -> pa.Table:
    tokens = [tokens] * n if isinstance(tokens, int) else list(tokens)
    return pa.table({
        doc.ID: [f"{prefix or origin}{i}" for i in range(n)],
        doc.TEXT: ["x" * t for t in tokens],
        doc.ORIGIN: [origin] * n,
        "n_tokens": tokens,
    })


def run_mix(params: dict, *batches: pa.Table):
    mix = Mix(MixParams(**params))
    decisions = mix.resolve([mix.signatures(b) for b in batches])
    outputs = [mix.apply(b, d) for b, d in zip(batches, decisions)]
    return mix.last_summary, outputs


def test_sources_give_their_token_shares_of_the_target():
    summary, outputs = run_mix(
        {"by": "tokens", "weights": {"web": 0.7, "books": 0.3}, "target_tokens": "1e3"},
        source("web", 200, 10), source("books", 100, 10),
    )
    assert summary["origins"]["web"]["tokens_taken"] == 700
    assert summary["origins"]["books"]["tokens_taken"] == 300
    assert summary["tokens"] == 1000
    assert sum(len(o.kept) for o in outputs) == 100
    assert summary["origins"]["web"]["epochs"] == pytest.approx(0.35)
    rejected = outputs[0].rejected.column(doc.REJECT_REASON).to_pylist()
    assert set(rejected) == {"mix_not_selected"} and len(rejected) == 130


def test_a_small_source_repeats_whole_documents_up_to_max_epochs():
    summary, outputs = run_mix(
        {"by": "tokens", "weights": {"web": 0.5, "books": 0.5}, "target_tokens": 1000},
        source("web", 100, 10), source("books", 20, 10),  # books: 200 tokens, asked 500
    )
    books = summary["origins"]["books"]
    assert books["tokens_taken"] == 500 and books["epochs"] == pytest.approx(2.5)
    assert books["documents_selected"] == 20 and books["documents_output"] == 50
    ids = outputs[1].kept.column(doc.ID).to_pylist()
    assert len(ids) == len(set(ids)) == 50  # copies get ids <id>#2, <id>#3
    assert any(i.endswith("#3") for i in ids)


def test_a_share_over_max_epochs_is_an_error_naming_the_source_and_its_tokens():
    with pytest.raises(MixError) as error:
        run_mix({"by": "tokens", "weights": {"web": 0.5, "books": 0.5}, "target_tokens": 2000},
                source("web", 200, 10), source("books", 20, 10))
    message = str(error.value)
    assert "'books'" in message and "200 tokens" in message and "50.0%" in message
    assert "max_epochs 4" in message and "on_short: rescale" in message


def test_on_short_rescale_caps_the_short_source_and_the_manifest_says_so():
    summary, _ = run_mix(
        {"by": "tokens", "weights": {"web": 0.5, "books": 0.5}, "target_tokens": 2000,
         "max_epochs": {"books": 2}, "on_short": "rescale"},
        source("web", 200, 10), source("books", 20, 10),
    )
    assert summary["origins"]["books"]["tokens_taken"] == 400  # 2 epochs of 200
    assert summary["origins"]["web"]["tokens_taken"] == 1600  # fills the rest of the target
    assert summary["rescaled"]["short_sources"] == ["books"]
    assert summary["rescaled"]["reached_target"] is True


def test_phases_split_the_budget_and_repeat_across_phases_only_when_asked():
    params = {
        "by": "tokens", "weights": {"web": 0.7, "books": 0.3}, "target_tokens": 1000,
        "phases": [{"name": "stable", "tokens": "90%"},
                   {"name": "anneal", "tokens": "10%", "weights": {"books": 1}}],
    }
    summary, outputs = run_mix(params, source("web", 200, 10), source("books", 100, 10))
    stable, anneal = summary["phases"]
    assert (stable["name"], stable["tokens"], anneal["tokens"]) == ("stable", 900, 100)
    assert anneal["sources"] == {"web": {"tokens": 0, "documents": 0, "target_tokens": 0.0},
                                 "books": {"tokens": 100, "documents": 10, "target_tokens": 100.0}}
    # books has 1,000 tokens, asked 370: no document repeats, in a phase or across phases.
    assert summary["origins"]["books"]["documents_in_several_phases"] == 0
    phases = [p for o in outputs for p in o.kept.column("phase").to_pylist()]
    assert phases.count("stable") == 90 and phases.count("anneal") == 10

    # A small books source: its stream wraps, and only then documents appear in both phases.
    summary, _ = run_mix(params, source("web", 200, 10), source("books", 30, 10))
    assert summary["origins"]["books"]["documents_in_several_phases"] > 0


def test_same_seed_same_choice_and_a_refresh_changes_only_what_it_must():
    params = {"by": "tokens", "weights": {"web": 1.0}, "target_tokens": 500, "seed": 3}
    _, [first] = run_mix(params, source("web", 100, 10))
    _, [again] = run_mix(params, source("web", 100, 10))
    assert first.kept.column(doc.ID).to_pylist() == again.kept.column(doc.ID).to_pylist()
    # 5 new documents (a refresh): the chosen set moves by at most about that many documents.
    grown = pa.concat_tables([source("web", 100, 10), source("web", 5, 10, prefix="new")])
    _, [after] = run_mix(params, grown)
    before_ids = set(first.kept.column(doc.ID).to_pylist())
    after_ids = set(after.kept.column(doc.ID).to_pylist())
    assert len(before_ids ^ after_ids) <= 2 * 5
    assert len(after_ids) == 50


def test_mix_by_tokens_needs_n_tokens():
    mix = Mix(MixParams(by="tokens", weights={"web": 1}, target_tokens=10))
    with pytest.raises(MixError, match="tokenize"):
        mix.signatures(source("web", 3, 1).drop_columns(["n_tokens"]))


def test_parameter_errors():
    with pytest.raises(ValidationError, match="over target_tokens"):
        MixParams(by="tokens", weights={"a": 1}, target_tokens=100,
                  phases=[{"name": "x", "tokens": "80%"}, {"name": "y", "tokens": 30}])
    with pytest.raises(ValidationError, match="needs by: tokens"):
        MixParams(weights={"a": 1}, target_tokens=100)
    with pytest.raises(ValidationError, match="needs target_tokens"):
        MixParams(by="tokens", weights={"a": 1}, phases=[{"name": "x", "tokens": "80%"}])
    assert MixParams(by="tokens", weights={"a": 1}, target_tokens="1.2e12").target_tokens == 1.2e12


RECIPE = """\
name: bad-mix
inputs:
  web: {path: %(data)s}
  books: {path: %(data)s}
nodes:
  both:
    from: [web, books]
    process:
      - mix:
          by: tokens
          weights: {web: 1, books: 1}
          target_tokens: 1000
          phases:
            - {name: stable, tokens: 900}
            - {name: anneal, tokens: 200, weights: {wikipedia: 1}}
outputs:
  both: {path: %(out)s}
"""


def test_recipe_errors_name_file_line_and_field_before_any_work(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"id": "1", "text": "a"}) + "\n")
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE % {"data": data, "out": tmp_path / "out"})
    with pytest.raises(RecipeInvalid) as error:
        load_recipe(str(path))
    text = str(error.value)
    assert "over target_tokens" in text
    assert f"{path}:13: nodes.both.process[0].mix.phases" in text  # file, line, field
    # Fixed budgets: the unknown source in a phase's weights is then reported.
    path.write_text((RECIPE % {"data": data, "out": tmp_path / "out"}).replace("tokens: 200", "tokens: 100"))
    with pytest.raises(RecipeInvalid) as error:
        load_recipe(str(path))
    assert "phase 'anneal': weights name 'wikipedia'" in str(error.value)
