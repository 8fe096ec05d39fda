"""Unreadable records: counted per input with their reasons; a wrong text_field is an error."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from recipeflow.cli import main


def _recipe(tmp_path, text_field: str) -> str:
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(
        json.dumps({"text": f"document number {i} " * 5, "lang": "en", "source": "t", "url": f"u{i}"}) + "\n"
        for i in range(30)
    ) + "{not json\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "unreadable",
        "inputs": {"docs": {"path": str(docs), "format": "jsonl", "text_field": text_field}},
        "process": [{"normalize_whitespace": {}}],
        "output": {"path": str(tmp_path / "out")},
        "run": {"executor": "threads", "workers": 1},
    }))
    return str(recipe)


def test_a_wrong_text_field_fails_before_committing(tmp_path, prefect_api):
    recipe = _recipe(tmp_path, "body")
    # The one malformed line has a reason of its own: the 30 others all lack `body`.
    docs = tmp_path / "docs.jsonl"
    docs.write_text("\n".join(docs.read_text().splitlines()[:-1]) + "\n")
    result = CliRunner().invoke(main, ["run", recipe, "--no-progress"])
    assert result.exit_code == 2, result.output
    message = result.output
    assert "inputs.docs" in message and "no 'body' field" in message
    assert "text, lang, source, url" in message and "text_field: 'body'" in message
    assert not (tmp_path / "out" / "versions").exists() or not any(
        (tmp_path / "out" / "versions").rglob("manifest.json")
    )
    checked = CliRunner().invoke(main, ["validate", recipe, "--check-inputs"])
    assert checked.exit_code == 1 and "no 'body' field" in checked.output


def test_unreadable_records_are_counted_with_their_reasons(tmp_path, prefect_api):
    recipe = _recipe(tmp_path, "text")
    result = CliRunner().invoke(main, ["run", recipe, "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "input docs: 1 of 31 records unreadable (1× malformed JSON" in result.output
    [manifest] = list((tmp_path / "out").rglob("manifest.json"))
    read = json.loads(manifest.read_text())["unreadable"]["docs"]
    assert read["records"] == 31 and read["unreadable"] == 1
    assert read["top_reasons"][0][0].startswith("malformed JSON")
    checked = CliRunner().invoke(main, ["validate", recipe, "--check-inputs"])
    assert checked.exit_code == 0 and "30 of the first 31 records readable" in checked.output
