"""A real Prefect server on PostgreSQL, as big runs should use: PostgreSQL from Debian's
package (`apt-get install postgresql`) started by the test in a temporary folder on a free port
and stopped by its PID, `prefect server start` on it, and a 5,000-shard recipe run against it.
The run's task runs land in PostgreSQL, and batching keeps them few."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from tests.postgres import postgres, psql
from tests.postgres import unavailable as postgres_unavailable
from tests.servers import post, prefect_server

REPO = Path(__file__).resolve().parents[2]
DOCS = 5_000


def test_5000_shard_run_on_a_prefect_server_backed_by_postgresql(tmp_path, monkeypatch):
    if why := postgres_unavailable():
        pytest.skip(why)
    with postgres() as url:
        monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", url)
        with prefect_server(tmp_path) as api:
            # Documents of our own: 5,000 short ones, a fifth of them too short for the filter.
            inputs = tmp_path / "docs.jsonl.gz"
            with gzip.open(inputs, "wt") as f:
                for i in range(DOCS):
                    words = 3 if i % 5 == 0 else 12
                    f.write(json.dumps({"id": f"d{i:05d}", "text": " ".join(f"word{i}-{w}" for w in range(words))}) + "\n")
            recipe = tmp_path / "recipe.yaml"
            recipe.write_text(
                f"name: postgres-5000-shards\n"
                f"inputs:\n  docs:\n    path: {inputs}\n    format: jsonl\n"
                f"process:\n  - words_num_filter:\n      min_num: 5\n"
                f"output:\n  path: {tmp_path / 'out'}\n  format: parquet\n"
                f"run:\n  executor: processes\n  workers: 2\n  shard_size: 1\n"
            )
            env = {**os.environ, "PREFECT_API_URL": api, "PYTHONPATH": str(REPO)}
            env.pop("PREFECT_API_DATABASE_CONNECTION_URL")  # the client needs only the API
            done = subprocess.run([sys.executable, "-m", "recipeflow.cli", "run", str(recipe)], env=env,
                                  capture_output=True, text=True, timeout=1500, cwd=tmp_path)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

            runs = post(api, "/flow_runs/filter", {"flow_runs": {"name": {"like_": "postgres-5000-shards-"}}})  # <recipe>-<version>
            assert [r["state_type"] for r in runs] == ["COMPLETED"]
            # 5,000 shards, yet a handful of task runs: one scan, at most 4 x workers stage
            # batches, one commit.
            task_count = httpx.post(f"{api}/task_runs/count", json={"flow_runs": {"id": {"any_": [runs[0]["id"]]}}},
                                    timeout=30).json()
            assert 3 <= task_count <= 1 + 8 + 1, task_count
            # They are stored in PostgreSQL, not in a SQLite file of the Prefect home.
            assert int(psql(url, "select count(*) from task_run")) == task_count
            assert not list(tmp_path.glob("*.db"))

    data = sorted((tmp_path / "out").rglob("data/*.parquet"))
    assert data, list((tmp_path / "out").rglob("*"))[:20]
    ids = [i for p in data for i in pq.read_table(p, columns=["id"]).column("id").to_pylist()]
    assert len(ids) == DOCS - DOCS // 5 and ids == sorted(ids)
