"""Data-Juicer recipe forms beyond dataset_path: YAML 1.1 numbers (`2e5`), `dataset:` configs,
export_path written as Data-Juicer's JSONL file, and model files checked before any work."""

from __future__ import annotations

import gzip
import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from recipeflow.cli import main as cli
from recipeflow.recipe.errors import RecipeInvalid
from recipeflow.recipe.loading import load_recipe
from tests.conftest import REPO

SAMPLE = REPO / "recipes" / "samples" / "debian-handbook-sample.jsonl.gz"


def write(tmp_path: Path, text: str, name: str = "dj.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return str(path)


def messages(path: str) -> list[str]:
    with pytest.raises(RecipeInvalid) as caught:
        load_recipe(path)
    return [str(issue) for issue in caught.value.issues]


def test_exponent_numbers_are_numbers_ints_where_the_parameter_is_int(tmp_path):
    path = write(tmp_path, f"""
        dataset_path: {SAMPLE}
        export_path: {tmp_path}/out/result.jsonl
        np: 2
        process:
          - text_length_filter:
              max_len: 2e5
          - words_num_filter:
              max_num: 1e5
          - alphanumeric_filter:
              max_ratio: 9e-1
          - remove_long_words_mapper:
              max_len: 1.5e1
        """)
    params = [step.params for step in load_recipe(path).nodes["main"].process]
    assert params[0]["max_length"] == 200000 and isinstance(params[0]["max_length"], int)
    assert params[1]["max_num"] == 100000 and isinstance(params[1]["max_num"], int)
    assert params[2]["max_ratio"] == 0.9
    assert params[3]["max_len"] == 15


def test_a_fractional_exponent_for_an_int_parameter_is_still_an_error(tmp_path):
    path = write(tmp_path, f"""
        dataset_path: {SAMPLE}
        process:
          - text_length_filter:
              max_len: 25e-1
        """)
    assert any("max_len" in m and "integer" in m for m in messages(path))


def test_string_parameters_keep_numeric_looking_strings(tmp_path):
    path = write(tmp_path, f"""
        dataset_path: {SAMPLE}
        process:
          - specified_field_filter:
              field_key: meta.version
              target_value: ['1e5']
        """)
    [step] = load_recipe(path).nodes["main"].process
    assert step.params["target_value"] == ["1e5"]


def test_dataset_configs_of_local_files_become_inputs(tmp_path):
    path = write(tmp_path, f"""
        project_name: configs
        dataset:
          configs:
            - type: local
              path: {SAMPLE}
            - type: local
              path: {SAMPLE}
              weight: 1.0
        export_path: {tmp_path}/out/result.jsonl
        process:
          - text_length_filter:
        """)
    recipe = load_recipe(path)
    assert [spec.path for spec in recipe.inputs.values()] == [str(SAMPLE), str(SAMPLE)]


@pytest.mark.parametrize(
    "dataset, located, said",
    [
        ("{configs: [{type: remote, source: arxiv}]}", "dataset.configs[0].type", "dataset type 'remote' is not supported"),
        ("{configs: [{type: local, path: SAMPLE, weight: 0.5}]}", "dataset.configs[0].weight", "weight 0.5 samples the dataset"),
        ("{configs: [{type: local, path: SAMPLE}], max_sample_num: 1000}", "dataset.max_sample_num", "sampling is not supported"),
        ("{configs: []}", "dataset", "expected `configs:`"),
    ],
)
def test_dataset_configs_that_cannot_be_honoured_are_clear_errors(tmp_path, dataset, located, said):
    path = write(tmp_path, f"""
        dataset: {dataset.replace('SAMPLE', str(SAMPLE))}
        process:
          - text_length_filter:
        """)
    [message] = messages(path)
    assert f": {located}: " in message and said in message


def test_dataset_path_wins_over_dataset_configs_as_in_data_juicer(tmp_path):
    path = write(tmp_path, f"""
        dataset_path: {SAMPLE}
        dataset: {{configs: [{{type: local, path: /nowhere.jsonl}}]}}
        process:
          - text_length_filter:
        """)
    assert [spec.path for spec in load_recipe(path).inputs.values()] == [str(SAMPLE)]


def test_export_path_is_also_written_as_data_juicer_s_jsonl_file(tmp_path, prefect_api):
    export = tmp_path / "out" / "refined.jsonl"
    path = write(tmp_path, f"""
        project_name: export
        dataset_path: {SAMPLE}
        export_path: {export}
        np: 1
        process:
          - text_length_filter:
              min_len: 2e3
        """)
    result = CliRunner().invoke(cli, ["run", path, "--no-progress"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in export.read_text(encoding="utf-8").splitlines()]
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        source = [json.loads(line) for line in handle]
    assert [r["id"] for r in records] == [s["id"] for s in source if len(s["text"]) >= 2000]
    assert records and all(r["text"] == next(s["text"] for s in source if s["id"] == r["id"]) for r in records)
    text = export.read_text(encoding="utf-8")
    assert "\\u" not in text and any(ord(c) > 127 for c in text)  # non-ASCII written as it is
    # The committed version is there too, beside the file.
    assert list((tmp_path / "out" / "refined").rglob("manifest.json"))


def test_validate_names_missing_model_files_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_JUICER_MODELS_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("RECIPEFLOW_OFFLINE", "1")
    monkeypatch.delenv("DATA_JUICER_EXTERNAL_MODELS_HOME", raising=False)
    path = write(tmp_path, f"""
        dataset_path: {SAMPLE}
        process:
          - perplexity_filter:
              lang: en
              max_ppl: 1500
          - words_num_filter:
              tokenization: true
        """)
    result = CliRunner().invoke(cli, ["validate", path])
    assert result.exit_code == 1
    assert "process[0].perplexity_filter.model_path: model file 'en.arpa.bin' is missing" in result.output
    assert "process[0].perplexity_filter.sp_model_path: model file 'en.sp.model' is missing" in result.output
    assert str(tmp_path / "empty-cache" / "en.arpa.bin") in result.output
    assert result.output.count("en.sp.model' is missing") == 1  # one file, reported once


def test_run_refuses_before_any_work_when_a_model_cannot_be_had(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_JUICER_MODELS_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("RECIPEFLOW_OFFLINE", "1")
    path = write(tmp_path, f"""
        dataset_path: {SAMPLE}
        export_path: {tmp_path}/out/result.jsonl
        process:
          - perplexity_filter:
              lang: en
        """)
    result = CliRunner().invoke(cli, ["run", path, "--no-progress"])
    assert result.exit_code == 2
    assert "en.arpa.bin" in result.output and "downloads are off" in result.output
    assert not list(tmp_path.rglob("manifest.json"))  # nothing ran


def test_ops_lists_supported_and_most_used_data_juicer_operators():
    result = CliRunner().invoke(cli, ["ops", "--datajuicer", "--json"])
    listing = json.loads(result.output)
    assert "document_simhash_deduplicator" in listing["supported"]
    assert len(listing["most_used"]) == 30
    missing = {row["name"]: row["why"] for row in listing["most_used"] if not row["supported"]}
    assert set(missing) <= {"human_preference_annotation_mapper", "optimize_prompt_mapper"}
