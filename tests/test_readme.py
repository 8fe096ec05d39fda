"""What the README says a user can type works: its `recipeflow` commands run, and every file of
the project it names exists."""

from __future__ import annotations

import re
import shlex
import shutil

from click.testing import CliRunner

from recipeflow.cli import main
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def _recipeflow_commands() -> list[list[str]]:
    """Every `recipeflow run|analyze|validate ...` command of the README's bash blocks."""
    commands = []
    for block in _bash_blocks():
        # A line ending in a backslash goes on on the next line, as in bash.
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part.split("#", 1)[0])
                if words[:1] == ["recipeflow"] and words[1:2] and words[1] in ("run", "analyze", "validate"):
                    commands.append(words[1:])
    return commands


def test_the_readme_names_only_files_that_exist():
    named = set(re.findall(r"`((?:recipes|tests|bench|deploy|docs)/[\w./-]+\.(?:py|yaml|yml|md|json))`", README))
    named |= set(re.findall(r"\b((?:recipes|tests)/[\w/-]+\.(?:py|yaml))\b", README))
    missing = sorted(p for p in named if not (REPO / p).exists())
    assert not missing, f"README names files that do not exist: {missing}"


def test_the_readme_recipeflow_commands_run(tmp_path, monkeypatch, prefect_api):
    commands = _recipeflow_commands()
    assert any(c[0] == "run" for c in commands) and any(c[0] == "analyze" for c in commands)
    # A copy of the recipes: outputs land beside the copy (paths are relative to the recipe).
    shutil.copytree(REPO / "recipes", tmp_path / "recipes")
    monkeypatch.chdir(tmp_path)
    for command in commands:
        result = CliRunner().invoke(main, [*command, "--no-progress"] if command[0] != "validate" else command)
        assert result.exit_code == 0, f"{' '.join(command)}:\n{result.output}"
    assert (tmp_path / "out" / "quickstart" / "versions").is_dir()
