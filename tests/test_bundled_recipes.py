"""Every recipe in recipes/ runs as shipped, from another working directory, on bundled data.

Relative paths in a recipe are taken from the recipe file's folder, so the command a user types
works wherever they stand; outputs are redirected into the test's folder with ``--set``.
"""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from recipeflow.cli import main
from tests.conftest import REPO

RECIPES = REPO / "recipes"
# Run in this order: use-quality-classifier reads the model train-quality-classifier commits.
ORDER = ["train-quality-classifier", "use-quality-classifier"]
# Smaller than shipped where the shipped size tests nothing more: two pages rephrased on the CPU,
# not four (two minutes as shipped; tests/operators/test_rephrase.py checks what it writes).
TRIMMED = {"rephrase-wrap": ["nodes.synthetic.process.0.top_k.k=2"]}


def _shipped() -> list[str]:
    names = sorted(p.stem for p in RECIPES.glob("*.yaml"))
    return [n for n in names if n not in ORDER] + [n for n in ORDER if n in names]


def _redirect(recipe: dict, out) -> list[str]:
    """``--set`` arguments sending every output (and trained model) into ``out``."""
    sets = []
    if "output" in recipe:
        sets.append(f"output.path={out / 'main'}")
    for name in recipe.get("outputs") or {}:
        sets.append(f"outputs.{name}.path={out / name}")
    for name in recipe.get("train") or {}:
        sets.append(f"train.{name}.output.path={out / ('model-' + name)}")
    if "export_path" in recipe:
        sets.append(f"export_path={out / 'export' / 'result.jsonl'}")
    return sets


def test_bundled_recipes_read_only_bundled_files():
    for path in RECIPES.glob("*.yaml"):
        text = path.read_text()
        assert "../shared" not in text, f"{path.name} reads outside the project"


@pytest.mark.parametrize("name", _shipped())
def test_bundled_recipe_runs_from_another_directory(name, tmp_path, prefect_api, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the repository: paths come from the recipe's folder
    path = RECIPES / f"{name}.yaml"
    recipe = yaml.safe_load(path.read_text())
    out = tmp_path / "out"
    sets = [a for s in _redirect(recipe, out) + TRIMMED.get(name, []) for a in ("--set", s)]
    if name == "use-quality-classifier":
        model = tmp_path.parent / "trained-quality-model"
        if not model.exists():
            pytest.skip("needs the model of train-quality-classifier (run in the same session)")
        sets += ["--set", f"process.2.fasttext_classifier.model={model}"]
    result = CliRunner().invoke(main, ["run", str(path), "--no-progress", *sets])
    assert result.exit_code == 0, result.output
    if name == "train-quality-classifier":
        # Hand the model to use-quality-classifier (same session, tmp folders are siblings).
        (tmp_path.parent / "trained-quality-model").symlink_to(out / "model-quality")
    written = [p for p in out.rglob("manifest.json")]
    assert written, f"{name} committed nothing under {out}"
    for manifest in written:
        json.loads(manifest.read_text())
