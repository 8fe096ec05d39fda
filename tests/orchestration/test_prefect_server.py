"""All real: a `prefect server` on 127.0.0.1, `recipeflow run` twice against it, and the API
shows the flow runs, Cached task states on the second run, the dataset's artifacts and the
asset materialization events."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import yaml

from tests.conftest import REPO, SAMPLE_WARC


def _run_cli(recipe: Path, api: str, home: Path, *overrides: str) -> str:
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(home)}
    sets = [arg for o in overrides for arg in ("--set", o)]
    done = subprocess.run(
        [sys.executable, "-m", "recipeflow.cli", "run", str(recipe), "--no-progress", *sets],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_runs_against_a_real_prefect_server(tmp_path, prefect_server):
    api = prefect_server
    recipe = tmp_path / "ui.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "ui-check",
                "inputs": {"pages": {"path": str(SAMPLE_WARC)}},
                "process": [{"html_extract": {}}, {"text_length_filter": {"min_length": 500}}, {"exact_dedup": {}}],
                "output": {"path": str(tmp_path / "ui-dataset")},
                "run": {"executor": "processes", "workers": 2, "shard_size": 100},
            }
        )
    )
    _run_cli(recipe, api, tmp_path / "home")
    # A new version whose stages are all unchanged: every stage task is Cached.
    _run_cli(recipe, api, tmp_path / "home", "output.keep_rejected=true")

    flow_runs = httpx.post(f"{api}/flow_runs/filter", json={"sort": "START_TIME_ASC"}).json()
    runs = [r for r in flow_runs if r["name"].startswith("ui-check-")]  # renamed <recipe>-<version>
    assert len(runs) == 2 and all(r["state_type"] == "COMPLETED" for r in runs)

    def states(flow_run_id: str) -> Counter:
        task_runs = httpx.post(
            f"{api}/task_runs/filter", json={"flow_runs": {"id": {"any_": [flow_run_id]}}}
        ).json()
        return Counter(t["state_name"] for t in task_runs)

    first, second = states(runs[0]["id"]), states(runs[1]["id"])
    assert first["Cached"] == 0 and first["Completed"] >= 10
    assert second["Cached"] == 14, second  # scan, 4 stages, 4 signatures, resolve, 4 stages

    artifacts = httpx.post(f"{api}/artifacts/latest/filter", json={}).json()
    keys = {a["key"]: a["type"] for a in artifacts}
    assert keys.get("ui-dataset-versions") == "table" and keys.get("ui-dataset-lineage") == "markdown"
    assert keys.get("ui-check-operator-counts") == "table"

    ours: list = []
    dataset_key = f"file://{tmp_path / 'ui-dataset'}"
    for _ in range(60):  # the server stores events asynchronously
        events = httpx.post(
            f"{api}/events/filter",
            json={
                "filter": {"event": {"prefix": ["prefect.asset.materialization"]}, "resource": {"id": [dataset_key]}},
                "limit": 50,
            },
        ).json()["events"]
        ours = [e for e in events if e["resource"]["prefect.resource.id"] == dataset_key]
        if len(ours) >= 2:
            break
        time.sleep(0.5)
    assert len(ours) == 2
