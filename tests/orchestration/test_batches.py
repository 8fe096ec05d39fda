"""Shards batched into few Prefect tasks: the same bytes as one task per shard, per-shard
reuse across different batchings, and few task runs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml

from recipeflow.orchestration.batches import batch_name, spans
from recipeflow.orchestration.runner import run_recipe
from tests.conftest import SAMPLE_WARC
from tests.servers import recorded_task_runs


def test_spans_cover_every_shard_once_in_order_and_taper():
    for count in (0, 1, 7, 16, 5000):
        for batches in (1, 3, 8, 16, 10_000):
            cut = spans([2500] * count, batches)
            assert [i for start, end in cut for i in range(start, end)] == list(range(count))
            assert len(cut) == min(batches, count)
            sizes = [end - start for start, end in cut]
            # Largest first, within a shard: the workers' last runs are the small ones.
            assert all(b <= a + 1 for a, b in zip(sizes, sizes[1:])), sizes
    # 5,000 equal shards in 8 runs: shares 8/36, 7/36, ..., 1/36 of the documents.
    runs = [end - start for start, end in spans([2500] * 5000, 8)]
    assert all(abs(n - 5000 * (8 - k) / 36) <= 1 for k, n in enumerate(runs)), runs


def test_spans_follow_documents_when_shards_differ():
    # A resumed run's work left: big shards with each file's small last shard between them.
    sizes = [2500, 262, 2500, 2500, 262, 2500, 2500, 2500, 262, 2500, 2500, 2500, 258]
    cut = spans(sizes, 4)
    assert [i for start, end in cut for i in range(start, end)] == list(range(len(sizes)))
    assert len(cut) == 4
    work = [sum(sizes[start:end]) for start, end in cut]
    total = sum(sizes)
    shares = [4 / 10 * total, 3 / 10 * total, 2 / 10 * total, 1 / 10 * total]
    assert all(abs(w - s) <= max(sizes) for w, s in zip(work, shares)), work  # within a shard of its share
    # Documents, not shard counts: a huge shard stands alone, its small neighbours share runs.
    assert spans([10, 10, 10, 1000, 10, 10], 2) == [(0, 4), (4, 6)]
    assert spans([1000, 10, 10, 10, 10, 10], 2) == [(0, 1), (1, 6)]
    # Empty shards still count, so no batch is left without a shard.
    assert len(spans([0, 0, 0, 0], 3)) == 3


def test_batch_names_say_which_shards():
    assert batch_name("main: clean", ["a"]) == "main: clean · a"
    assert batch_name("main: clean", ["a", "b", "c"]) == "main: clean · a … c (3 shards)"


def _recipe(tmp_path: Path, out: str, tasks_per_stage: int, keep_rejected: bool = True) -> str:
    path = tmp_path / f"{out}-{tasks_per_stage}-{keep_rejected}.yaml"
    path.write_text(yaml.safe_dump({
        "name": "batched",
        "inputs": {"pages": {"path": str(SAMPLE_WARC), "format": "warc"}},
        "process": [{"html_extract": {}}, {"text_length_filter": {"min_length": 1500}}, {"exact_dedup": {}}],
        "output": {"path": str(tmp_path / out), "keep_rejected": keep_rejected},
        "run": {"executor": "threads", "workers": 2, "shard_size": 20, "tasks_per_stage": tasks_per_stage},
    }))
    return str(path)


def _task_names(flow_run_id: str) -> Counter:
    runs = recorded_task_runs(flow_run_id, at_least=10)  # 9 batch tasks and the commit, at least
    return Counter(run.name.split(" ")[0] + (" batch" if "shards)" in run.name else "") for run in runs)


def test_batched_run_is_byte_identical_to_a_task_per_shard_and_reuses_per_shard(tmp_path, prefect_api):
    # 308 records in shards of 20: 16 shards.
    [per_shard] = run_recipe(_recipe(tmp_path, "per-shard", 16), progress=False)
    [batched] = run_recipe(_recipe(tmp_path, "batched", 3), progress=False)
    assert [f["sha256"] for f in batched["files"]] == [f["sha256"] for f in per_shard["files"]]
    assert batched["rows"] == per_shard["rows"] and batched["rejected_rows"] == per_shard["rejected_rows"]
    # Every shard's unit of work counted by its own name, as with one task per shard.
    assert batched["run"]["tasks"]["computed"] == per_shard["run"]["tasks"]["computed"] == 16 * 3 + 1

    names = _task_names(batched["run"]["flow_run_id"])
    # stage before the barrier, its signatures, the stage after: 3 batch tasks each.
    assert sum(n for name, n in names.items() if name.endswith("batch")) == 9, names
    assert sum(names.values()) <= 1 + 9 + 1 + 1, names  # + scan, resolve, commit

    # A new version (keep_rejected changed, stages unchanged) batched otherwise: every shard's
    # stored result is reused although no batch is the same.
    [again] = run_recipe(_recipe(tmp_path, "batched", 5, keep_rejected=False), progress=False)
    assert again["parent"] == batched["version"]
    assert again["run"]["tasks"]["computed"] == 0
    assert [f["sha256"] for f in again["files"]] == [f["sha256"] for f in batched["files"]]
