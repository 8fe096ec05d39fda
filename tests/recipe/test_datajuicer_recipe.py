"""Data-Juicer recipes run as they are: conversion, errors located where the user wrote them,
ignored settings, and a real run end to end."""

from __future__ import annotations

import gzip
import json
import logging
import re
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from recipeflow.datasets import versions
from recipeflow.cli import main as cli
from recipeflow.recipe.datajuicer import is_datajuicer_recipe, supported_operators
from recipeflow.recipe.errors import RecipeInvalid
from recipeflow.recipe.loading import load_recipe
from recipeflow.orchestration.runner import run_recipe
from tests.conftest import REPO

SAMPLE = REPO / "recipes" / "samples" / "debian-handbook-sample.jsonl.gz"
EXAMPLE = REPO / "recipes" / "datajuicer-example.yaml"


def write(tmp_path: Path, text: str, name: str = "dj.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return str(path)


def issues_of(path: str, overrides: tuple[str, ...] = ()) -> list:
    with pytest.raises(RecipeInvalid) as caught:
        load_recipe(path, overrides)
    return caught.value.issues


# --- conversion ------------------------------------------------------------------------------


def test_a_data_juicer_recipe_becomes_a_chain_recipe(tmp_path):
    path = write(tmp_path, f"""
        project_name: 'demo process'
        dataset_path: '{SAMPLE}'
        np: 3
        text_keys: ['text']
        export_path: './outputs/demo-process/demo-processed.jsonl'
        process:
          - clean_email_mapper:
          - text_length_filter:
              min_len: 100
              max_len: 5000
          - document_deduplicator:
              lowercase: true
        """)
    recipe = load_recipe(path)
    assert recipe.name == "demo-process"
    assert recipe.inputs["dataset"].path == str(SAMPLE)
    assert recipe.inputs["dataset"].text_field == "text"
    assert recipe.outputs["main"].path == "./outputs/demo-process/demo-processed"
    assert recipe.outputs["main"].format == "jsonl.gz"
    assert (recipe.run.executor, recipe.run.workers) == ("processes", 3)
    steps = [(s.operator, s.params) for s in recipe.nodes["main"].process]
    assert steps[1] == ("text_length_filter", {"min_length": 100, "max_length": 5000})
    assert steps[2][1] == {"lowercase": True, "ignore_non_character": False}
    assert "export_path './outputs/demo-process/demo-processed.jsonl'" in recipe.description


@pytest.mark.parametrize(
    ("export_path", "root", "fmt"),
    [
        ("out/x/res.parquet", "out/x/res", "parquet"),
        ("out/x/res.jsonl.gz", "out/x/res", "jsonl.gz"),
        ("./outputs/", "./outputs", "parquet"),
        ("s3://bucket/data/res.json", "s3://bucket/data/res", "jsonl.gz"),
    ],
)
def test_export_path_names_the_dataset_root_and_format(tmp_path, export_path, root, fmt):
    path = write(tmp_path, f"dataset_path: {SAMPLE}\nexport_path: {export_path}\nprocess: []\n")
    output = load_recipe(path).outputs["main"]
    assert (output.path, output.format) == (root, fmt)


def test_defaults_are_data_juicers_and_set_overrides_apply(tmp_path):
    path = write(tmp_path, f"dataset_path: {SAMPLE}\nprocess: []\n")
    recipe = load_recipe(path)
    assert recipe.name == "hello_world" and recipe.run.workers == 4
    assert recipe.outputs["main"].path == "./outputs/hello_world/hello_world"
    assert load_recipe(path, ["np=1"]).run.workers == 1


def test_folder_with_suffixes_and_unweighted_path_lists(tmp_path):
    path = write(tmp_path, f"dataset_path: '1.0 {tmp_path}/a.jsonl {tmp_path}/more'\n"
                           f"suffixes: [jsonl, '.parquet']\nprocess: []\n")
    inputs = load_recipe(path).inputs
    assert [spec.path for spec in inputs.values()] == [
        f"{tmp_path}/a.jsonl", f"{tmp_path}/more/**/*.jsonl", f"{tmp_path}/more/**/*.parquet",
    ]


def test_recognised_only_without_inputs():
    assert is_datajuicer_recipe({"dataset_path": "x", "process": []})
    assert not is_datajuicer_recipe({"inputs": {}, "dataset_path": "x"})
    assert not is_datajuicer_recipe({"name": "x"})


# --- errors, where the user wrote them --------------------------------------------------------


def test_unsupported_operator_is_named_with_the_supported_list(tmp_path):
    path = write(tmp_path, f"""
        dataset_path: {SAMPLE}
        process:
          - clean_email_mapper:
          - image_blur_mapper:
              blur_type: gaussian
          - clean_emails_mapper:
        """)
    unsupported, typo = issues_of(path)
    assert (unsupported.line, unsupported.path) == (4, "process[1].image_blur_mapper")
    assert "Data-Juicer operator 'image_blur_mapper' is not supported" in unsupported.message
    for name in ("clean_email_mapper", "document_deduplicator", "text_length_filter"):
        assert name in unsupported.expected
    assert set(supported_operators()) >= {"clean_html_mapper", "fix_unicode_mapper"}
    assert typo.line == 6 and typo.suggestion == "clean_email_mapper"
    assert "not a Data-Juicer 1.6 operator" in typo.message


def test_misspelt_parameter_has_its_line_and_a_suggestion(tmp_path):
    path = write(tmp_path, f"""
        dataset_path: {SAMPLE}
        process:
          - clean_links_mapper:
              patern: 'https?://\\S+'
          - text_length_filter:
              min_len: -1
        """)
    misspelt, negative = issues_of(path)
    assert (misspelt.line, misspelt.path) == (4, "process[0].clean_links_mapper.patern")
    assert misspelt.suggestion == "pattern"
    assert str(misspelt).startswith(f"{path}:4: process[0].clean_links_mapper.patern: unknown field")
    # reported under the Data-Juicer name, not recipeflow's min_length
    assert (negative.line, negative.path) == (6, "process[1].text_length_filter.min_len")


def test_settings_that_change_results_are_errors(tmp_path):
    path = write(tmp_path, f"""
        project_name: demo
        dataset_pth: {SAMPLE}
        dataset_path: '0.5 {SAMPLE}'
        text_keys: [text, title]
        np: 0
        export_path: out/res.csv
        custom_operator_paths: [./my_ops]
        process:
          - fix_unicode_mapper:
              text_key: content
        """)
    by_path = {issue.path: issue for issue in issues_of(path)}
    assert by_path["dataset_pth"].suggestion == "dataset_path"
    assert by_path["dataset_path"].line == 3 and "weighted mixing" in by_path["dataset_path"].message
    assert "one text field" in by_path["text_keys"].message
    assert by_path["np"].line == 5 and by_path["np"].expected == "a value >= 1"
    assert "cannot export .csv" in by_path["export_path"].message
    assert "custom Data-Juicer operators" in by_path["custom_operator_paths"].message
    assert by_path["process[0].fix_unicode_mapper.text_key"].line == 10


def test_ignored_settings_are_listed_in_one_warning(tmp_path, caplog):
    path = write(tmp_path, f"""
        project_name: demo
        dataset_path: {SAMPLE}
        open_tracer: true
        use_cache: true
        export_shard_size: 0
        process:
          - fix_unicode_mapper:
              num_proc: 4
              batch_size: 100
        """)
    with caplog.at_level(logging.WARNING, logger="recipeflow.datajuicer"):
        recipe = load_recipe(path)
    [record] = [r for r in caplog.records if r.name == "recipeflow.datajuicer"]
    assert record.getMessage().endswith(
        "open_tracer, use_cache, export_shard_size, process[0].fix_unicode_mapper.num_proc, "
        "process[0].fix_unicode_mapper.batch_size"
    )
    assert recipe.nodes["main"].process[0].params == {"normalization": None}
    assert "ignored: open_tracer" in recipe.description


def test_cli_validates_the_example_recipe():
    result = CliRunner().invoke(cli, ["validate", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "document_deduplicator" in result.output


# --- end to end ------------------------------------------------------------------------------


def sample_cut(tmp_path: Path, count: int) -> Path:
    """The first ``count`` documents of the bundled sample, as a JSONL file of their own."""
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        lines = [line for _, line in zip(range(count), f)]
    path = tmp_path / "data" / "sample.jsonl"
    path.parent.mkdir()
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_data_juicer_recipe_runs_end_to_end(tmp_path, prefect_api):
    export = tmp_path / "outputs" / "demo" / "demo-processed.jsonl"
    path = write(tmp_path, f"""
        # Process config example for dataset
        project_name: 'demo-process'
        dataset_path: '{sample_cut(tmp_path, 120)}'
        np: 2
        export_path: '{export}'
        use_cache: false
        process:
          - fix_unicode_mapper:
          - clean_links_mapper:
          - whitespace_normalization_mapper:
          - text_length_filter:
              min_len: 1000
          - document_deduplicator:
        """)
    [manifest] = run_recipe(path, progress=False, base_dir=str(tmp_path))

    root = tmp_path / "outputs" / "demo" / "demo-processed"
    assert manifest["dataset"] == str(root)
    [listed] = versions.list_versions(str(root))
    assert listed["version"] == manifest["version"] and manifest["parent"] is None
    assert manifest["run"]["executor"] == "processes" and manifest["run"]["workers"] == 2
    assert str(export) in manifest["recipe"]["description"]
    counts = {op["operator"]: op for op in manifest["operators"]}
    assert counts["text_length_filter"]["rejected"] > 0
    assert counts["document_deduplicator"]["rejected"] > 0

    [part] = manifest["files"]
    assert part["path"].endswith(".jsonl.gz")
    folder = root / "versions" / manifest["version"]
    with gzip.open(folder / part["path"], "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    assert len(docs) == manifest["rows"] == counts["document_deduplicator"]["docs_out"]
    assert not any(re.search(r"https?://[a-z]", d["text"]) for d in docs)
    assert all(len(d["text"]) >= 1000 for d in docs)
    assert len({d["text"] for d in docs}) == len(docs)
