"""`train:` with `graded:` fits a head on graded documents over frozen embeddings, commits it as
a versioned model (head.safetensors + manifest with lineage and held-out metrics), and
`model_classifier: {model: ROOT@VERSION}` scores with it. Bad configurations are refused
before any work, naming the recipe field."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import yaml

from recipeflow.datasets import versions
from recipeflow.orchestration.runner import RunRefused, run_recipe
from recipeflow.recipe.errors import RecipeInvalid
from recipeflow.recipe.validate import parse_recipe
from tests.conftest import REPO

SAMPLES = REPO / "recipes" / "samples"


def _graded_documents(tmp_path: Path) -> Path:
    """Bundled documents with grades standing in for an LLM's: the Debian Reference's chapters
    4, the handbook's sections 1 (30 of each)."""
    rows = []
    for name, grade in (("debian-reference-sample", 4), ("debian-handbook-sample", 1)):
        with gzip.open(SAMPLES / f"{name}.jsonl.gz", "rt") as f:
            for line in list(f)[:30]:
                doc = json.loads(line)
                rows.append({"id": doc["id"], "text": doc["text"][:2000], "grade": grade,
                             "grade_model": "stand-in", "grade_prompt_sha256": "0" * 64})
    path = tmp_path / "graded.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def _write(tmp_path: Path, name: str, recipe: dict) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return str(path)


def _train_recipe(tmp_path: Path, docs: Path, **train) -> dict:
    return {
        "name": "train-edu-head",
        "inputs": {"docs": {"path": str(docs)}},
        "nodes": {"graded": {"from": "docs", "process": [{"embed": {"max_length": 64}}]}},
        "outputs": {},
        "train": {"edu": {"graded": "graded", "output": {"path": str(tmp_path / "models" / "edu")},
                          "embedding_field": "embedding", **train}},
        "run": {"shard_size": 100},
    }


def test_train_a_head_commit_it_and_score_with_it(tmp_path, prefect_api):
    docs = _graded_documents(tmp_path)
    [model] = run_recipe(_write(tmp_path, "train", _train_recipe(tmp_path, docs)), progress=False)

    root = str(tmp_path / "models" / "edu")
    assert versions.latest_version(root) == model["version"]
    folder = Path(versions.version_path(root, model["version"]))
    assert sorted(p.name for p in folder.iterdir()) == ["head.safetensors", "manifest.json"]
    assert model["model"]["kind"] == "head"
    assert model["model"]["embedding"]["model"] == "all-minilm-l6-v2"
    assert model["model"]["embedding"]["max_length"] == 64  # from the embed step it read
    data = model["training"]["data"]
    assert data["graded"] == 60 and data["ungraded"] == 0 and data["sources"] == ["graded"]
    assert data["graders"] == {"grade_model": ["stand-in"], "grade_prompt_sha256": ["0" * 64]}
    assert data["train_documents"] + data["holdout_documents"] == 60 and data["holdout_documents"] == 12
    metrics = model["metrics"]
    # Two very different sources: the head separates them on held-out documents.
    assert metrics["f1_binary"] >= 0.8 and metrics["accuracy"] >= 0.5 and metrics["spearman"] >= 0.6

    use = {
        "name": "use-edu-head",
        "inputs": {"docs": {"path": str(docs)}},
        "process": [{"model_classifier": {"model": f"{root}@{model['version']}", "max_length": 64,
                                          "min_int_score": 3}}],
        "output": {"path": str(tmp_path / "scored")},
    }
    [scored] = run_recipe(_write(tmp_path, "use", use), progress=False)
    assert 20 <= scored["rows"] <= 40  # the reference chapters (30), give or take


def test_too_few_graded_documents_is_refused_before_any_work(tmp_path):
    recipe = _train_recipe(tmp_path, _graded_documents(tmp_path))
    recipe["nodes"]["graded"]["process"].insert(0, {"sample": {"count": 20}})
    with pytest.raises(RunRefused, match=r"`train\.edu\.holdout`: 20 graded documents are too few.*"
                                         r"`sample: \{count\}`"):
        run_recipe(_write(tmp_path, "few", recipe), progress=False)
    assert versions.latest_version(str(tmp_path / "models" / "edu")) is None


def test_an_encoder_that_does_not_fit_the_vectors_is_refused(tmp_path):
    other = tmp_path / "tiny-encoder"  # an encoder folder of 8 dimensions (config is enough)
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    recipe = _train_recipe(tmp_path, _graded_documents(tmp_path), embedding_model=str(other))
    with pytest.raises(RunRefused, match=r"`train\.edu\.embedding_field`.*384 dimensions.*"
                                         r"`train\.edu\.embedding_model`.*8 dimensions"):
        run_recipe(_write(tmp_path, "mismatch", recipe), progress=False)
    recipe = _train_recipe(tmp_path, _graded_documents(tmp_path), embedding_model=str(tmp_path / "none"))
    with pytest.raises(RunRefused, match=r"`train\.edu\.embedding_model`"):
        run_recipe(_write(tmp_path, "missing", recipe), progress=False)


def test_head_training_fields_are_validated_where_written():
    base = {"name": "x", "inputs": {"a": {"path": "a.jsonl"}}, "nodes": {"n": {"from": "a"}},
            "outputs": {}}
    with pytest.raises(RecipeInvalid) as error:
        parse_recipe({**base, "train": {"edu": {"graded": "nowhere", "output": {"path": "o"},
                                                "holdout": 2, "holdot": 1}}})
    message = str(error.value)
    assert "train.edu.graded: unknown reference 'nowhere'" in message
    assert "train.edu.holdout: got 2" in message
    assert 'train.edu.holdot: unknown field; did you mean "holdout"' in message
    recipe = parse_recipe({**base, "train": {"edu": {"graded": "n", "output": {"path": "o"}}}})
    assert type(recipe.train["edu"]).__name__ == "HeadTrainSpec"
    assert parse_recipe(recipe.resolved()) == recipe.model_copy(update={"source": "<recipe>"})
