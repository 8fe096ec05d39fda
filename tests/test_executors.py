"""Ray and Dask (local clusters) produce data files byte-identical to the processes executor."""

from __future__ import annotations

import pytest
import yaml

from recipeflow.flows.runner import run_recipe
from tests.conftest import SAMPLE_WARC


def _checksums(tmp_path, prefect_api, executor: str) -> list:
    recipe = {
        "name": f"executor-{executor}",
        "inputs": {"pages": {"path": str(SAMPLE_WARC)}},
        "process": [{"html_extract": {}}, {"text_length_filter": {"min_length": 1000}}, {"exact_dedup": {"partitions": 2}}],
        "output": {"path": str(tmp_path / executor), "keep_rejected": True},
        "run": {"executor": executor, "workers": 2, "shard_size": 100},
    }
    path = tmp_path / f"{executor}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    [manifest] = run_recipe(str(path), progress=False)
    return [(f["path"], f["sha256"]) for f in manifest["files"] + manifest["rejected_files"]]


@pytest.mark.parametrize("executor", ["dask", "ray"])
def test_cluster_executor_matches_processes(tmp_path, prefect_api, executor):
    expected = _checksums(tmp_path, prefect_api, "processes")
    assert _checksums(tmp_path, prefect_api, executor) == expected
    assert expected
