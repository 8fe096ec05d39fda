"""The run's checks before any work: an output overlapping an input once paths are absolute."""

from __future__ import annotations

from pathlib import Path

import pytest

from recipeflow.orchestration.runner import RunRefused, prepare
from recipeflow.recipe.loading import load_recipe


def test_relative_input_and_absolute_output_that_overlap_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl").write_text('{"text": "hello"}\n')
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(
        "name: overlap\ninputs:\n  docs: {path: data, format: jsonl}\n"
        f"process: [{{text_length_filter: {{min_length: 1}}}}]\noutput: {{path: {data}/out}}\n")
    recipe = load_recipe(str(recipe_file))  # one relative, one absolute: valid as written

    with pytest.raises(RunRefused) as refused:
        prepare(recipe, str(tmp_path))

    message = str(refused.value)
    assert f"inputs.docs.path ({data})" in message and f"output.path ({data}/out)" in message
    assert not (data / "out").exists()  # refused before the output root was created
