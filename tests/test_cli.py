"""The command line, through click's runner (in process) on real recipes."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from recipeflow.cli import main
from tests.conftest import REPO, SAMPLE_WARC


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_ops_lists_every_operator_with_kind_resource_and_summary():
    result = invoke("ops")
    assert result.exit_code == 0
    lines = {line.split()[0]: line.split()[1:3] for line in result.output.splitlines()}
    assert lines["exact_dedup"] == ["deduplicator", "cpu"]
    assert lines["text_length_filter"] == ["filter", "cpu"]
    rows = json.loads(invoke("ops", "--json").output)
    assert {r["name"] for r in rows} >= {"html_extract", "normalize_whitespace", "text_length_filter", "exact_dedup"}
    assert all(r["summary"] for r in rows)


def test_ops_name_shows_parameters_with_types_defaults_and_docs():
    result = invoke("ops", "text_length_filter")
    assert result.exit_code == 0
    assert "min_length: int = 10" in result.output
    assert "max_length" in result.output and "characters" in result.output
    info = json.loads(invoke("ops", "text_length_filter", "--json").output)
    params = {p["name"]: p for p in info["parameters"]}
    assert params["min_length"]["default"] == 10 and params["min_length"]["type"] == "int"
    assert info["kind"] == "filter" and info["version"]


def test_ops_unknown_name_suggests():
    result = CliRunner().invoke(main, ["ops", "text_lenght_filter"])
    assert result.exit_code != 0
    assert "did you mean 'text_length_filter'" in result.output


def test_validate_ok_and_errors(tmp_path):
    ok = invoke("validate", str(REPO / "recipes" / "quickstart.yaml"))
    assert ok.exit_code == 0 and "valid" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\n"
        "inputs:\n"
        "  pages: {path: x.warc.gz}\n"
        "process:\n"
        "  - html_extrct: {}\n"
        "  - text_length_filter: {min_lenght: 5}\n"
        "output: {path: out}\n"
    )
    result = CliRunner().invoke(main, ["validate", str(bad)])
    assert result.exit_code != 0
    assert f"{bad}:5" in result.output and "did you mean \"html_extract\"" in result.output
    assert f"{bad}:6" in result.output and "did you mean \"min_length\"" in result.output
    fixed = CliRunner().invoke(
        main, ["validate", str(bad), "--set", "process.0=html_extract", "--set", "run.workers=x"]
    )
    assert fixed.exit_code != 0 and "run.workers" in fixed.output


def test_schema_is_json_schema_with_operators():
    schema = json.loads(invoke("schema").output)
    text = json.dumps(schema)
    for name in ("html_extract", "exact_dedup", "min_length"):
        assert name in text


def test_run_with_set_override_and_versions(tmp_path, prefect_api, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "cli-run",
                "inputs": {"pages": {"path": str(SAMPLE_WARC)}},
                "process": [{"html_extract": {}}, {"text_length_filter": {"min_length": 100}}],
                "output": {"path": "relative/out"},
            }
        )
    )
    result = invoke("run", str(recipe), "--no-progress", "--set", "process.1.text_length_filter.min_length=5000")
    assert result.exit_code == 0, result.output
    assert "written to" in result.output and "text_length_filter" in result.output
    rows = json.loads(invoke("versions", "relative/out", "--json").output)
    [version] = rows
    assert set(version) >= {"version", "created_at", "rows", "path"}
    assert str(tmp_path / "relative" / "out" / "versions") in version["path"]
    manifest = json.loads((tmp_path / version["path"] / "manifest.json").read_text())
    step = next(o for o in manifest["operators"] if o["operator"] == "text_length_filter")
    assert step["params"]["min_length"] == 5000
    listing = invoke("versions", "relative/out")
    assert version["version"] in listing.output


def test_every_shipped_recipe_is_valid():
    recipes = sorted((REPO / "recipes").glob("*.yaml"))
    assert len(recipes) >= 4
    for recipe in recipes:
        result = CliRunner().invoke(main, ["validate", str(recipe)])
        assert result.exit_code == 0, f"{recipe.name}: {result.output}"


def test_an_embedded_run_says_how_to_see_runs_later_instead_of_a_dead_link(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_UI_URL")}
    env["PREFECT_HOME"] = str(tmp_path / "home")
    done = subprocess.run(
        [sys.executable, "-m", "recipeflow.cli", "run", str(REPO / "recipes" / "quickstart.yaml"),
         "--no-progress", "--set", f"output.path={tmp_path / 'out'}"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "written to" in output and "exact_dedup" in output  # the quickstart, as shipped
    assert "View at" not in output
    assert "embedded Prefect server that stopped with it" in output and "prefect server start" in output
