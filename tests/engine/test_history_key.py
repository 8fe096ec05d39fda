"""semantic_dedup's `scope: history` keys its stored signatures by the encoder that made the
vectors (the upstream `embed` step's model sha256): a changed encoder starts a new history
instead of comparing vectors across models."""

from __future__ import annotations

import json

from recipeflow.engine.history import history_key, history_targets
from recipeflow.engine.planner import plan_recipe
from recipeflow.recipe.validate import parse_recipe


def _key(steps: list[dict]) -> str:
    recipe = parse_recipe({"name": "x", "inputs": {"a": {"path": "a.jsonl"}}, "process": steps,
                           "output": {"path": "out"}})
    [target] = history_targets(recipe, plan_recipe(recipe)).values()
    return target.key


def _encoder_folder(path, dim: int) -> str:
    """An encoder folder as far as planning reads one (config.json: its dimension)."""
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": dim}))
    return str(path)


def test_the_encoders_sha256_is_part_of_the_history_key(tmp_path):
    dedup = {"semantic_dedup": {"scope": "history"}}
    bundled = _key([{"embed": {}}, dedup])
    assert _key([{"embed": {"batch_size": 8}}, dedup]) == bundled  # same model: same history
    other = _encoder_folder(tmp_path / "other", 384)
    assert _key([{"embed": {"model": other}}, dedup]) != bundled
    # Another field: that embed step's vectors are not the ones compared.
    assert _key([{"embed": {"model": other, "field": "other"}}, {"embed": {}}, dedup]) == bundled
    # In an upstream node too.
    recipe = parse_recipe({
        "name": "x", "inputs": {"a": {"path": "a.jsonl"}},
        "nodes": {"embedded": {"from": "a", "process": [{"embed": {"model": other, "keep": True}}]},
                  "deduped": {"from": "embedded", "process": [dedup]}},
        "outputs": {"deduped": {"path": "out"}}})
    [target] = history_targets(recipe, plan_recipe(recipe)).values()
    assert target.key == _key([{"embed": {"model": other, "keep": True}}, dedup])


def test_keys_of_other_deduplicators_do_not_change():
    recipe = parse_recipe({"name": "x", "inputs": {"a": {"path": "a.jsonl"}},
                           "process": [{"embed": {}}, {"minhash_dedup": {"scope": "history"}}],
                           "output": {"path": "out"}})
    plan = plan_recipe(recipe)
    [target] = history_targets(recipe, plan).values()
    barrier = next(s.barrier for n in plan.nodes for s in n.stages if s.barrier is not None)
    assert target.key == history_key(barrier)  # no upstream facts: the key stored versions have
