"""``decontaminate`` in the engine: its index built once (a content-addressed cache entry) for
every shard, its report in the stage outputs, the manifest, the terminal and a flow-run
artifact, benchmark files checked at validation, the GPU pool when its judge runs vLLM,
datasets as benchmark sets, ``recipeflow contamination``, and refreshes against a new benchmark
version. Real documents: the bundled Debian handbook sample."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from recipeflow.cli import main as cli
from recipeflow.datasets import versions
from recipeflow.datasets.trace import render_text, trace_document
from recipeflow.engine import execute
from recipeflow.engine.cache_address import stage_entry
from recipeflow.engine.planner import OpRef, Stage
from recipeflow.engine.shard_input import ShardInput
from recipeflow.operators.base import Resource
from recipeflow.operators.decontaminate import Decontaminate
from recipeflow.recipe.errors import RecipeInvalid
from recipeflow.recipe.loading import load_recipe
from tests.conftest import REPO

SAMPLE = REPO / "recipes" / "samples" / "debian-handbook-sample.jsonl.gz"


def _pages() -> list[dict]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _items_from(pages: list[dict]) -> list[dict]:
    """One benchmark item per page: a question and an answer, two long sentences of it."""
    items = []
    for page in pages:
        sentences = [" ".join(s.split()) for s in re.split(r"(?<=[.?!])\s+", page["text"])
                     if 16 <= len(s.split()) <= 40]
        items.append({"id": f"q-{page['id']}", "question": sentences[0], "answer": sentences[1]})
    return items


def _english_with_sentences() -> list[dict]:
    return [p for p in _pages() if p["lang"] == "en" and
            sum(16 <= len(s.split()) <= 40 for s in re.split(r"(?<=[.?!])\s+", p["text"])) >= 2]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def count_builds(monkeypatch):
    """How many times an index is built (the real build, counted)."""
    builds = []
    real = Decontaminate.build_index

    def counted(self):
        builds.append(self.index_key())
        return real(self)

    monkeypatch.setattr(Decontaminate, "build_index", counted)
    return builds


# -- the engine, called directly --------------------------------------------------------------


def test_the_index_is_built_once_for_every_shard_and_each_shard_reports(tmp_path, count_builds):
    pages = _english_with_sentences()
    bench = _write_jsonl(tmp_path / "qa.jsonl", _items_from(pages[:3]))
    ref = OpRef("main", 0, "decontaminate", {"benchmarks": {"qa": {"path": str(bench), "fields": ["question", "answer"],
                                                                    "id_field": "id"}}, "min_overlap": 3})
    stage = Stage(id="main.s0", node="main", barrier=None, ops=(ref,))
    shards = []
    for i in range(4):  # page 0..2 hold the items: shards 0 and 1 are contaminated
        rows = pages[2 * i:2 * i + 2]
        path = tmp_path / f"shard-{i}.parquet"
        pq.write_table(pa.table({"id": [r["id"] for r in rows], "text": [r["text"] for r in rows]}), path)
        shards.append(ShardInput(key=f"s{i}", fingerprint=f"shard-{i}", parquet=str(path)))
    work = str(tmp_path / "work")
    outputs = [execute.run_stage(stage, s, None, stage_entry(stage, s, None), work) for s in shards]

    assert len(count_builds) == 1  # four shards, one build
    [key] = count_builds
    assert (tmp_path / "work" / "indexes" / key / "index.bin").is_file()
    reports = [o.reports[ref.step]["qa"] for o in outputs]
    assert [r["documents_hit"]["exact"] for r in reports] == [2, 1, 0, 0]
    assert sorted(i for r in reports for i in r["items_hit"]["exact"]) == sorted(f"q-{p['id']}" for p in pages[:3])
    merged = Decontaminate.merge_reports([o.reports[ref.step] for o in outputs])
    assert merged["qa"]["items_hit"] == 3 and merged["qa"]["documents_hit"] == 3

    # Stored results carry their reports; nothing is built or computed again.
    again = [execute.run_stage(stage, s, None, stage_entry(stage, s, None), work) for s in shards]
    assert [o.reports for o in again] == [o.reports for o in outputs]
    assert len(count_builds) == 1


def test_the_planner_asks_the_operator_for_its_resource(tmp_path):
    bench = _write_jsonl(tmp_path / "qa.jsonl", _items_from(_english_with_sentences()[:1]))
    spec = {"qa": {"path": str(bench), "fields": ["question", "answer"]}}
    on_vllm = OpRef("main", 0, "decontaminate",
                    {"benchmarks": spec, "paraphrase_check": {"judge": {"backend": "vllm", "model": "/models/judge"}}})
    plain = OpRef("main", 1, "decontaminate", {"benchmarks": spec})
    assert on_vllm.resource == Resource.gpu and plain.resource == Resource.cpu
    assert Stage("main.s0", "main", None, (on_vllm,)).resource == Resource.gpu
    assert OpRef("main", 2, "normalize_whitespace", {}).resource == Resource.cpu  # the class attribute


# -- validation -------------------------------------------------------------------------------


def _recipe_with(tmp_path: Path, benchmark: dict) -> Path:
    recipe = {
        "name": "decon",
        "inputs": {"pages": {"path": str(SAMPLE), "format": "jsonl"}},
        "process": [{"normalize_whitespace": {}}, {"decontaminate": {"benchmarks": {"mmlu": benchmark}}}],
        "output": {"path": str(tmp_path / "out")},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def _only_issue(path: Path):
    with pytest.raises(RecipeInvalid) as caught:
        load_recipe(str(path))
    [issue] = caught.value.issues
    return issue, str(caught.value)


def test_a_missing_empty_or_fieldless_benchmark_is_a_recipe_error_before_any_work(tmp_path):
    missing = tmp_path / "nowhere.jsonl"
    issue, text = _only_issue(_recipe_with(tmp_path, {"path": str(missing), "fields": ["question"]}))
    assert issue.path == "process[1].decontaminate.benchmarks.mmlu.path" and issue.line is not None
    assert "'mmlu'" in issue.message and str(missing) in issue.message
    assert text.startswith(f"recipe {tmp_path / 'recipe.yaml'} is invalid")

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    issue, _ = _only_issue(_recipe_with(tmp_path, {"path": str(empty), "fields": ["question"]}))
    assert issue.path.endswith("benchmarks.mmlu.path") and str(empty) in issue.message and "empty" in issue.message

    items = _write_jsonl(tmp_path / "qa.jsonl", [{"question": "what is apt?", "answer": "a tool"}])
    issue, _ = _only_issue(_recipe_with(tmp_path, {"path": str(items), "fields": ["question", "choices"]}))
    assert issue.path == "process[1].decontaminate.benchmarks.mmlu.fields"
    assert "'choices'" in issue.message and str(items) in issue.message and "line 1" in issue.message
    issue, _ = _only_issue(_recipe_with(tmp_path, {"path": str(items), "fields": ["question"], "id_field": "uid"}))
    assert issue.path == "process[1].decontaminate.benchmarks.mmlu.id_field" and "'uid'" in issue.message

    result = CliRunner().invoke(cli, ["validate", str(tmp_path / "recipe.yaml")])
    assert result.exit_code == 1 and "benchmarks.mmlu.id_field" in result.output


# -- a recipe run, end to end -------------------------------------------------------------------


def _decontaminate_row(manifest: dict) -> dict:
    [row] = [o for o in manifest["operators"] if o["operator"] == "decontaminate"]
    return row


def _run_recipe_file(tmp_path: Path, bench: str, shard_size: int = 40) -> Path:
    recipe = {
        "name": "decon-run",
        "inputs": {"pages": {"path": str(SAMPLE), "format": "jsonl"}},
        "process": [{"decontaminate": {"benchmarks": {"qa": {"path": bench, "fields": ["question", "answer"],
                                                               "id_field": "id"}}, "min_overlap": 3}}],
        "output": {"path": str(tmp_path / "clean"), "keep_rejected": True},
        "run": {"executor": "threads", "workers": 2, "shard_size": shard_size},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def test_a_run_builds_once_reports_everywhere_and_rechecks_a_new_benchmark_version(tmp_path, prefect_api,
                                                                                     count_builds):
    from recipeflow.datasets.run_summary import result_lines
    from recipeflow.orchestration.runner import run_recipe

    pages = _english_with_sentences()
    bench = _write_jsonl(tmp_path / "qa.jsonl", _items_from(pages[:3]))
    recipe = _run_recipe_file(tmp_path, str(bench))
    [first] = run_recipe(str(recipe), progress=False)

    assert len(count_builds) == 1  # 260 documents in 7 shards: one index
    op = _decontaminate_row(first)
    sha = __import__("hashlib").sha256(bench.read_bytes()).hexdigest()
    assert op["provenance"]["benchmarks"]["qa"]["files"] == {str(bench): sha}
    table = op["summary"]["qa"]
    assert table["items"] == 3 and table["items_hit"] == table["items_hit_exact"] == 3
    assert table["documents_hit"] == op["rejected"] >= 3 and table["documents_hit_paraphrase"] == 0
    assert f"indexes/{op['provenance']['index_key']}" in first["cache_entries"]

    printed = "\n".join(result_lines([first]))
    assert "contamination found by main.process[0]" in printed
    assert re.search(r"qa\s+3\s+3\s+3\s+0\s+%d\s+%d\s+0" % (table["documents_hit"], table["documents_hit"]), printed)

    # `recipeflow trace` of a dropped document names the items it held.
    dropped = pages[1]["id"]
    text = render_text(trace_document(str(tmp_path / "clean"), dropped))
    assert f"qa:q-{dropped} (exact)" in text and "contaminated" in text

    # The flow run's table artifact.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["decon-run-contamination"])),
                                           limit=1)
    rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    assert rows == [{"step": "main.process[0]", "benchmark": "qa", **table}]

    # Unchanged recipe, input and benchmark: nothing runs again, nothing is built.
    [same] = run_recipe(str(recipe), progress=False)
    assert same["committed"] is False and same["parent"] == first["version"] and len(count_builds) == 1

    # A new version of the benchmark set (new sha256) re-checks the corpus: one new build,
    # and a version that drops the documents holding the new item too.
    _write_jsonl(bench, _items_from(pages[:3] + pages[5:6]))
    [second] = run_recipe(str(recipe), progress=False)
    assert second["parent"] == first["version"] and len(count_builds) == 2
    op2 = _decontaminate_row(second)
    assert op2["summary"]["qa"]["items"] == 4 and op2["summary"]["qa"]["items_hit"] == 4
    assert op2["rejected"] > op["rejected"]
    assert second["run"]["tasks"]["computed"] > 0


def test_stage_results_are_reused_while_the_benchmark_is_unchanged(tmp_path, prefect_api, count_builds):
    """Shards already checked against an unchanged benchmark set are not checked again when
    the input grows: only the new file's shards run."""
    from recipeflow.orchestration.runner import run_recipe

    pages = _english_with_sentences()
    bench = _write_jsonl(tmp_path / "qa.jsonl", _items_from(pages[:2]))
    inputs = tmp_path / "in"
    inputs.mkdir()
    all_pages = _pages()
    _write_jsonl(inputs / "a.jsonl", all_pages[:100])
    recipe = _run_recipe_file(tmp_path, str(bench))
    data = yaml.safe_load(recipe.read_text())
    data["inputs"]["pages"]["path"] = str(inputs / "*.jsonl")
    recipe.write_text(yaml.safe_dump(data))
    [first] = run_recipe(str(recipe), progress=False)
    computed_first = first["run"]["tasks"]["computed"]
    _write_jsonl(inputs / "b.jsonl", all_pages[100:140])
    [second] = run_recipe(str(recipe), progress=False)
    tasks = second["run"]["tasks"]
    stage_tasks = [t for t in tasks["computed_tasks"] if t.startswith("main: ") and " signatures" not in t]
    assert stage_tasks and all("b.jsonl" in t or "pages" in t for t in stage_tasks)
    assert tasks["cached"] > 0 and len(stage_tasks) < computed_first
    assert len(count_builds) == 1  # the index of the unchanged benchmark set is reused


# -- datasets as benchmark sets; recipeflow contamination ----------------------------------------


def test_contamination_checks_a_committed_version_and_a_dataset_can_be_a_benchmark(tmp_path, prefect_api):
    from recipeflow.orchestration.runner import run_recipe

    pages = _english_with_sentences()
    # The benchmark items are themselves a recipeflow dataset, named ROOT@VERSION.
    items_recipe = {
        "name": "items",
        "inputs": {"items": {"path": str(_write_jsonl(tmp_path / "items.jsonl",
                                                       [{"id": i["id"], "text": i["question"], "answer": i["answer"]}
                                                        for i in _items_from(pages[:3])])), "format": "jsonl"}},
        "process": [{"normalize_whitespace": {}}],
        "output": {"path": str(tmp_path / "items-ds"), "format": "jsonl.gz"},
    }
    (tmp_path / "items.yaml").write_text(yaml.safe_dump(items_recipe))
    [items] = run_recipe(str(tmp_path / "items.yaml"), progress=False)
    ref = f"{tmp_path / 'items-ds'}@{items['version']}"

    corpus_recipe = {
        "name": "corpus",
        "inputs": {"pages": {"path": str(SAMPLE), "format": "jsonl"}},
        "process": [{"normalize_whitespace": {}}],
        "output": {"path": str(tmp_path / "corpus")},
    }
    (tmp_path / "corpus.yaml").write_text(yaml.safe_dump(corpus_recipe))
    [corpus] = run_recipe(str(tmp_path / "corpus.yaml"), progress=False)

    spec = json.dumps({"qa": {"path": ref, "fields": ["text", "answer"], "id_field": "id"}, })
    result = CliRunner().invoke(cli, ["contamination", str(tmp_path / "corpus"), "--benchmarks", spec, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["version"] == corpus["version"] and report["documents"] == corpus["rows"] == 260
    qa = report["benchmarks"]["qa"]
    assert qa["items"] == 3 and qa["items_hit"] == qa["items_hit_exact"] == 3 and qa["documents_hit"] >= 3

    # The same from a YAML file with decontaminate's parameters; the table on the terminal.
    spec_file = tmp_path / "benchmarks.yaml"
    spec_file.write_text(yaml.safe_dump({"benchmarks": {"qa": {"path": ref, "fields": ["text", "answer"]}},
                                          "min_overlap": 3}))
    result = CliRunner().invoke(cli, ["contamination", f"{tmp_path / 'corpus'}@{corpus['version']}",
                                      "--benchmarks", str(spec_file)])
    assert result.exit_code == 0, result.output
    assert "260 documents checked" in result.output and "min_overlap=3" in result.output
    assert re.search(r"qa\s+3\s+3\s+3\s+0\s+%d\s+%d\s+0" % (qa["documents_hit"], qa["documents_hit"]), result.output)

    # A version of the items that does not exist: an error naming the versions there are.
    result = CliRunner().invoke(cli, ["contamination", str(tmp_path / "corpus"), "--benchmarks",
                                      json.dumps({"qa": {"path": f"{tmp_path / 'items-ds'}@nope", "fields": ["text"]}})])
    assert result.exit_code == 1 and "'qa'" in result.output and "nope" in result.output
    assert items["version"] in result.output


def test_relative_benchmark_paths_are_taken_from_the_recipe_folder(tmp_path, monkeypatch):
    from recipeflow.recipe.paths import with_absolute_paths

    folder = tmp_path / "recipes"
    folder.mkdir()
    _write_jsonl(folder / "qa.jsonl", [{"question": "what is apt?", "answer": "a tool"}])
    recipe = _recipe_with(folder, {"path": "qa.jsonl", "fields": ["question", "answer"]})
    monkeypatch.chdir(tmp_path)  # elsewhere: qa.jsonl is not in the working directory
    runnable = with_absolute_paths(load_recipe(str(recipe)))
    [step] = [s for s in runnable.nodes["main"].process if s.operator == "decontaminate"]
    assert step.params["benchmarks"]["mmlu"]["path"] == str(folder / "qa.jsonl")
    issue, _ = _only_issue(_recipe_with(folder, {"path": "other.jsonl", "fields": ["question"]}))
    assert issue.path.endswith("benchmarks.mmlu.path") and "'other.jsonl'" in issue.message
