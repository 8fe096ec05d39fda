"""What the Prefect UI shows of a recipe's runs, read back from a real Prefect server (the
embedded one): the flow is the recipe, runs are named after the version they committed and
tagged, tasks say what they do, and each run publishes a lineage graph (Mermaid) under the
dataset's artifact key and a summary with drop reasons and reused tasks."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowFilter,
    FlowFilterName,
)
from prefect.client.schemas.sorting import FlowRunSort

from recipeflow.orchestration import run_view
from recipeflow.orchestration.runner import run_recipe
from tests.servers import recorded_task_runs


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _page(i: int) -> dict:
    return {"id": f"p{i}", "text": f"Page {i}. " + " ".join(f"w{i}x{j}" for j in range(40))}


def test_runs_are_named_tagged_and_show_lineage(tmp_path, prefect_api):
    crawl = tmp_path / "crawl"
    crawl.mkdir()
    _write(crawl / "a.jsonl", [_page(i) for i in range(12)] + [{"id": "tiny", "text": "short"}])
    recipe = {
        "name": "ui-corpus",
        "inputs": {"crawl": {"path": str(crawl / "*.jsonl")}},
        "process": [{"text_length_filter": {"min_length": 40}}, {"exact_dedup": {"scope": "history"}}],
        "output": {"path": str(tmp_path / "ui-corpus"), "keep_rejected": True},
        "run": {"shard_size": 10, "workers": 1},
    }
    path = tmp_path / "ui.yaml"
    path.write_text(yaml.safe_dump(recipe))
    [v1] = run_recipe(str(path), progress=False)
    _write(crawl / "b.jsonl", [_page(i) for i in range(12, 15)])
    [v2] = run_recipe(str(path), progress=False)  # a refresh: old shards reused
    [same] = run_recipe(str(path), progress=False)  # nothing changed
    assert same["committed"] is False

    with get_client(sync_client=True) as client:
        [flow] = client.read_flows(flow_filter=FlowFilter(name=FlowFilterName(any_=["ui-corpus"])))
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["ui-corpus"])),
                                     sort=FlowRunSort.START_TIME_ASC)
        assert [r.name for r in runs] == [f"ui-corpus-{v1['version']}", f"ui-corpus-{v2['version']}", "ui-corpus-unchanged"]
        assert {r.flow_id for r in runs} == {flow.id}
        assert set(runs[0].tags) == {"recipeflow", "ui-corpus", "output:ui-corpus", "manual"}
        assert set(runs[1].tags) == {"recipeflow", "ui-corpus", "output:ui-corpus", "manual", "refresh"}

        tasks = recorded_task_runs(runs[1].id)
        names = {t.name for t in tasks}
        assert "main: text_length_filter · crawl/a.jsonl [rows 0–10]" in names
        assert "main: exact_dedup signatures · crawl/b.jsonl [rows 0–3]" in names
        assert "scan crawl: b.jsonl" in names

        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["ui-corpus-lineage", "ui-corpus-summary"])))
    by_run = {(a.key, a.flow_run_id): a.data for a in artifacts}
    lineage = by_run[("ui-corpus-lineage", runs[1].id)]
    assert "```mermaid\nflowchart TB" in lineage
    graph = lineage.split("```mermaid")[1].split("```")[0]
    assert f"ui-corpus @ {v2['version']}<br/>15 documents" in graph
    assert f"ui-corpus @ {v1['version']}<br/>12 documents" in graph
    assert "12 documents shared (snapshot)" in graph and "crawl: b.jsonl" in graph
    assert ("ui-corpus-lineage", runs[0].id) in by_run  # one per run, under the dataset's key

    summary = by_run[("ui-corpus-summary", runs[1].id)]
    assert "a snapshot: 3 new, 12 shared with the parent" in summary
    assert "- reused: main: text_length_filter · crawl/a.jsonl [rows 0–10]" in summary
    assert "- computed: main: text_length_filter · crawl/b.jsonl [rows 0–3]" in summary
    first = by_run[("ui-corpus-summary", runs[0].id)]
    assert "text_length_below_min 1" in first  # the top drop reasons of the step


def test_trigger_and_names():
    assert run_view.trigger_of(["auto-scheduled", "recipeflow"]) == "scheduled"
    assert run_view.trigger_of([]) == "manual"
    assert run_view.shard_label("in/x.jsonl:0-10.rejected") == "in/x.jsonl [rows 0–10] rejected"
    assert run_view.final_name(type("R", (), {"name": "r"})(), [{"dataset": "d", "version": "v1"},
                                                              {"dataset": "e", "version": "v2"}]) == "r-v1+1"
