"""Stage cache: unchanged re-runs do no operator work and show as Cached in Prefect; a changed
parameter re-runs only the stages from it on; `run.cache: false` recomputes."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from recipeflow.orchestration.runner import run_recipe
from recipeflow.operators import registry
from recipeflow.operators.base import Mapper, OperatorParams
from tests.conftest import SAMPLE_WARC
from tests.servers import recorded_task_runs

CALLS: Counter = Counter()


class _CountingParams(OperatorParams):
    tag: str = "a"


class _CountingMapper(Mapper):
    """Test-only mapper that counts the batches it processes."""

    name = "test_counting_mapper"
    Params = _CountingParams

    def map_batch(self, batch):
        CALLS[self.params.tag] += 1
        return batch


@pytest.fixture
def counting(monkeypatch):
    monkeypatch.setitem(registry._OPERATORS, _CountingMapper.name, _CountingMapper)
    CALLS.clear()
    return CALLS


def _recipe(tmp_path, first_tag="a", min_length=500, cache=True, keep_rejected=False):
    data = {
        "name": "cache-test",
        "inputs": {"pages": {"path": str(SAMPLE_WARC)}},
        "process": [
            {"test_counting_mapper": {"tag": first_tag}},
            {"html_extract": {}},
            {"exact_dedup": {}},
            {"test_counting_mapper": {"tag": "after-dedup"}},
            {"text_length_filter": {"min_length": min_length}},
        ],
        # keep_rejected changes what a version holds, not what any stage computes.
        "output": {"path": str(tmp_path / "out"), "keep_rejected": keep_rejected},
        "run": {"shard_size": 100, "cache": cache},
    }
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _task_states(flow_run_id: str, at_least: int = 1) -> Counter:
    runs = recorded_task_runs(flow_run_id, at_least)
    return Counter(run.state.name if run.state else None for run in runs)


def test_rerun_does_no_operator_work_and_shows_cached(tmp_path, prefect_api, counting):
    [first] = run_recipe(_recipe(tmp_path), progress=False)
    assert counting["a"] == 4 and counting["after-dedup"] == 4  # 4 shards of 100 records
    counting.clear()

    # A new version (keep_rejected changed) whose stages are all unchanged.
    [second] = run_recipe(_recipe(tmp_path, keep_rejected=True), progress=False)
    assert sum(counting.values()) == 0
    assert [f["sha256"] for f in second["files"]] == [f["sha256"] for f in first["files"]]
    states = _task_states(second["run"]["flow_run_id"], at_least=15)
    # scan 1 + stage 4 + signatures 4 + resolve 1 + stage 4: all cached; commit runs.
    assert states["Cached"] == 14, states
    assert states["Completed"] == 1, states
    tasks = second["run"]["tasks"]
    assert (tasks["computed"], tasks["cached"], tasks["computed_tasks"]) == (0, 13, [])
    assert len(tasks["reused_tasks"]) == 13


def test_changed_parameter_reruns_only_the_stages_from_it(tmp_path, prefect_api, counting):
    run_recipe(_recipe(tmp_path), progress=False)
    counting.clear()
    # The length filter sits in the stage after the barrier: the first stage is reused.
    run_recipe(_recipe(tmp_path, min_length=2000), progress=False)
    assert counting["a"] == 0 and counting["after-dedup"] == 4
    counting.clear()
    # The first operator changed: everything from it runs again.
    run_recipe(_recipe(tmp_path, first_tag="b", min_length=2000), progress=False)
    assert counting["b"] == 4 and counting["after-dedup"] == 4


def test_cache_false_recomputes(tmp_path, prefect_api, counting):
    run_recipe(_recipe(tmp_path), progress=False)
    counting.clear()
    [again] = run_recipe(_recipe(tmp_path, cache=False), progress=False)
    assert counting["a"] == 4 and counting["after-dedup"] == 4
    assert "Cached" not in _task_states(again["run"]["flow_run_id"])


def test_rerun_after_the_stage_cache_is_removed(tmp_path, prefect_api, counting):
    """Prefect still remembers the old results, but their files are gone: the work runs again."""
    import shutil

    [first] = run_recipe(_recipe(tmp_path), progress=False)
    shutil.rmtree(tmp_path / "out" / "cache")
    counting.clear()
    [again] = run_recipe(_recipe(tmp_path, keep_rejected=True), progress=False)
    assert counting["a"] == 4
    assert [f["sha256"] for f in again["files"]] == [f["sha256"] for f in first["files"]]
