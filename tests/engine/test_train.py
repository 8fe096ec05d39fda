"""A recipe trains a fastText classifier (committed as a versioned model); another uses it."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from recipeflow.datasets import versions
from recipeflow.orchestration.runner import run_recipe
from tests.conftest import CORPORA


def _paragraphs(tmp_path: Path, per_language: int = 150) -> Path:
    """Paragraphs of at least 200 characters of the Debian Reference, per language."""
    import gzip

    taken: dict[str, int] = {}
    lines = []
    with gzip.open(CORPORA / "debian-reference.jsonl.gz", "rt") as f:
        for line in f:
            chapter = json.loads(line)
            for i, para in enumerate(chapter["text"].split("\n")):
                lang = chapter["lang"]
                if len(para) >= 200 and taken.get(lang, 0) < per_language:
                    taken[lang] = taken.get(lang, 0) + 1
                    lines.append({"id": f"{chapter['id']}-{i}", "text": para, "lang": lang})
    path = tmp_path / "paragraphs.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in lines))
    return path


def test_train_commit_and_use_a_classifier(tmp_path, prefect_api):
    docs = _paragraphs(tmp_path)
    train_recipe = {
        "name": "train-en-vs-rest",
        "inputs": {"docs": {"path": str(docs)}},
        "nodes": {
            "english": {"from": "docs", "route": {"field": "lang", "values": ["en"]}},
            "others": {"from": "docs", "route": {"field": "lang", "exclude": ["en"]}},
        },
        "outputs": {},
        "train": {
            "english_model": {
                "positive": "english",
                "negative": "others",
                "output": {"path": str(tmp_path / "models" / "english")},
                "holdout": 0.2,
                "epoch": 10,
                "bucket": 20000,
            }
        },
        "run": {"shard_size": 300},
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(train_recipe))
    [model] = run_recipe(str(path), progress=False)

    assert model["format"] == "recipeflow.model/1"
    assert model["training"]["positive"]["documents"] == {"english": 150}
    negatives = model["training"]["negative"]["documents"]["others"]
    assert 600 <= negatives <= 7 * 150  # CJK paragraphs are shorter: fewer reach 200 characters
    metrics = model["metrics"]
    # Translations keep some English paragraphs, so "others" holds English too: a noisy label.
    assert metrics["precision"] >= 0.6 and metrics["recall"] >= 0.6, metrics
    [listed] = versions.list_versions(str(tmp_path / "models" / "english"))
    model_file = Path(listed["path"]) / "model.bin"
    assert model_file.stat().st_size == model["model"]["bytes"]

    # Another recipe scores documents with the committed model, found by its root.
    use_recipe = {
        "name": "use-model",
        "inputs": {"docs": {"path": str(docs)}},
        "process": [
            {"fasttext_classifier": {"model": str(tmp_path / "models" / "english"),
                                     "field_prefix": "english_", "min_scores": {"hq": 0.5}}}
        ],
        "output": {"path": str(tmp_path / "scored")},
    }
    use_path = tmp_path / "use.yaml"
    use_path.write_text(yaml.safe_dump(use_recipe))
    [scored] = run_recipe(str(use_path), progress=False)
    step = next(o for o in scored["operators"] if o["operator"] == "fasttext_classifier")
    assert step["docs_out"] < step["docs_in"]
    folder = Path(versions.version_path(str(tmp_path / "scored"), scored["version"]))
    rows = [r for f in scored["files"] for r in pq.read_table(folder / f["path"]).to_pylist()]
    assert rows and all(r["english_hq"] >= 0.5 for r in rows)
    kept_english = sum(r["lang"] == "en" for r in rows)
    kept_others = len(rows) - kept_english
    assert kept_english >= 0.7 * 150
    assert kept_others <= 0.1 * negatives
    assert json.dumps(model["recipe"])  # the recipe that trained it is recorded
