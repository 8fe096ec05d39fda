"""Routing by a field value, fan-out/join, and per-language settings files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from recipeflow.datasets import versions
from recipeflow.recipe.errors import RecipeInvalid
from recipeflow.recipe.validate import parse_recipe
from recipeflow.orchestration.runner import run_recipe
from tests.conftest import CORPORA


def _documents(tmp_path: Path) -> Path:
    """Real chapters of the Debian Reference in 8 languages, with their `lang` field."""
    with gzip.open(CORPORA / "debian-reference.jsonl.gz", "rt") as f:
        docs = [json.loads(line) for line in f]
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    return path


def _graph(tmp_path: Path, docs: Path, settings: Path | None = None) -> dict:
    recipe = {
        "name": "routing",
        "inputs": {"docs": {"path": str(docs)}},
        "nodes": {
            "en": {"from": "docs", "route": {"field": "lang", "values": ["en"]}, "language": "en",
                   "process": [{"text_length_filter": {}}]},
            "de": {"from": "docs", "route": {"field": "lang", "values": ["de"]}, "language": "de",
                   "process": [{"text_length_filter": {}}]},
            "rest": {"from": "docs", "route": {"field": "lang", "exclude": ["en", "de"]}, "process": []},
            "joined": {"from": ["en", "de"], "process": []},
        },
        "outputs": {"joined": {"path": str(tmp_path / "joined")}, "rest": {"path": str(tmp_path / "rest")}},
        "run": {"shard_size": 16},
    }
    if settings is not None:
        recipe["language_settings"] = str(settings)
    return recipe


def _settings(tmp_path: Path) -> Path:
    folder = tmp_path / "settings"
    folder.mkdir()
    (folder / "en.yaml").write_text(yaml.safe_dump({"text_length_filter": {"min_length": 60000}}))
    (folder / "de.yaml").write_text(yaml.safe_dump({"text_length_filter": {"min_length": 1000}}))
    return folder


def test_route_fan_out_and_join_with_language_settings(tmp_path, prefect_api):
    docs = _documents(tmp_path)
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(yaml.safe_dump(_graph(tmp_path, docs, _settings(tmp_path))))
    joined, rest = run_recipe(str(recipe_file), progress=False)

    counts = {o["step"]: o for o in joined["operators"]}
    assert counts["route:en"]["docs_in"] == 120 and counts["route:en"]["docs_out"] == 15
    assert counts["route:de"]["docs_out"] == 15
    # Each branch took its threshold from its language's settings file.
    assert counts["en.process[0]"]["params"]["min_length"] == 60000
    assert counts["de.process[0]"]["params"]["min_length"] == 1000

    def rows(manifest, root):
        folder = Path(versions.version_path(str(tmp_path / root), manifest["version"]))
        return [r for f in manifest["files"] for r in pq.read_table(folder / f["path"]).to_pylist()]

    joined_rows = rows(joined, "joined")
    assert {r["lang"] for r in joined_rows} == {"en", "de"}
    assert all(len(r["text"]) >= 60000 for r in joined_rows if r["lang"] == "en")
    assert joined["rows"] == counts["en.process[0]"]["docs_out"] + counts["de.process[0]"]["docs_out"]
    rest_rows = rows(rest, "rest")
    assert len(rest_rows) == 90 and not {r["lang"] for r in rest_rows} & {"en", "de"}


def test_route_and_language_validation(tmp_path):
    data = _graph(tmp_path, tmp_path / "docs.jsonl", _settings(tmp_path))
    data["nodes"]["en"]["route"] = {"field": "lang", "values": ["en"], "exclude": ["de"]}
    data["nodes"]["de"]["language"] = "dee"
    with pytest.raises(RecipeInvalid) as error:
        parse_recipe(data, source="r.yaml")
    text = str(error.value)
    assert "nodes.en.route" in text and "exactly one of" in text
    assert "nodes.de.language" in text and "did you mean \"de\"" in text


def test_step_parameters_win_over_language_settings(tmp_path):
    data = _graph(tmp_path, tmp_path / "docs.jsonl", _settings(tmp_path))
    data["nodes"]["en"]["process"] = [{"text_length_filter": {"min_length": 5}}]
    recipe = parse_recipe(data)
    assert recipe.nodes["en"].process[0].params["min_length"] == 5
    assert recipe.nodes["de"].process[0].params["min_length"] == 1000
