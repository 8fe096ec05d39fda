"""language_id writes where it is told, and a run says which input fields it overwrote."""

from __future__ import annotations

import json

import yaml

from recipeflow.orchestration.runner import run_recipe


def _run(tmp_path, params: dict) -> tuple[dict, list[dict]]:
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(
        json.dumps({"id": str(i), "text": "This is an English sentence about package management.", "lang": "ar-MA"}) + "\n"
        for i in range(5)
    ))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "lid-fields",
        "inputs": {"docs": {"path": str(docs)}},
        "process": [{"language_id": params}],
        "output": {"path": str(tmp_path / "out"), "format": "jsonl.gz"},
        "run": {"executor": "threads", "workers": 1},
    }))
    [manifest] = run_recipe(str(recipe), progress=False)
    import gzip

    [data] = list((tmp_path / "out").rglob("data/*.jsonl.gz"))
    with gzip.open(data, "rt") as f:
        rows = [json.loads(line) for line in f]
    return manifest, rows


def test_overwriting_an_input_field_is_recorded(tmp_path, prefect_api):
    manifest, rows = _run(tmp_path, {})
    [step] = [o for o in manifest["operators"] if o["operator"] == "language_id"]
    assert step["overwrote"] == ["lang", ]
    assert {r["lang"] for r in rows} == {"en"}


def test_a_field_of_its_own_keeps_the_input_label(tmp_path, prefect_api):
    manifest, rows = _run(tmp_path, {"field": "detected_lang", "score_field": "detected_lang_score"})
    [step] = [o for o in manifest["operators"] if o["operator"] == "language_id"]
    assert "overwrote" not in step
    assert {r["lang"] for r in rows} == {"ar-MA"} and {r["detected_lang"] for r in rows} == {"en"}
