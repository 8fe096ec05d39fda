"""The run's checks before any work: an output overlapping an input once paths are absolute."""

from __future__ import annotations

from pathlib import Path

import pytest

from recipeflow.orchestration.runner import RunRefused, prepare
from recipeflow.recipe.loading import load_recipe


def overlapping_recipe(tmp_path: Path, run: str = "") -> tuple[Path, Path]:
    """A recipe whose output lies inside its input folder (one path relative, one absolute),
    and that folder."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl").write_text('{"text": "hello"}\n')
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(
        "name: overlap\ninputs:\n  docs: {path: data, format: jsonl}\n"
        f"process: [{{text_length_filter: {{min_length: 1}}}}]\noutput: {{path: {data}/out}}\n" + run)
    return recipe_file, data


def test_relative_input_and_absolute_output_that_overlap_are_refused(tmp_path: Path) -> None:
    recipe_file, data = overlapping_recipe(tmp_path)
    recipe = load_recipe(str(recipe_file))  # one relative, one absolute: valid as written

    with pytest.raises(RunRefused) as refused:
        prepare(recipe, str(tmp_path))

    message = str(refused.value)
    assert f"inputs.docs.path ({data})" in message and f"output.path ({data}/out)" in message
    assert not (data / "out").exists()  # refused before the output root was created


def test_a_refused_run_stops_the_embedded_server_it_started(tmp_path: Path, monkeypatch) -> None:
    """The embedded server starts before the recipe is loaded; a refusal must not leave it (nor
    start the fork server of ``processes`` workers)."""
    import os

    import psutil

    from recipeflow.orchestration.runner import run_recipe

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    recipe_file, _ = overlapping_recipe(tmp_path, "run: {executor: processes}\n")
    before = {p.pid for p in psutil.Process().children()}

    with pytest.raises(RunRefused):
        run_recipe(str(recipe_file))

    started = [p for p in psutil.Process().children() if p.pid not in before and p.is_running()
               and p.status() != psutil.STATUS_ZOMBIE]
    assert started == [] and "PREFECT_API_URL" not in os.environ
