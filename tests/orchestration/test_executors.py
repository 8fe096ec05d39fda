"""Ray and Dask (local clusters) produce data files byte-identical to the processes executor."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from typing import Iterator

import pytest
import yaml

from recipeflow.datasets import versions
from recipeflow.orchestration.runner import run_recipe
from tests.conftest import SAMPLE_WARC
from tests.s3 import _free_port
from tests.servers import stop_process_group


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


@pytest.mark.parametrize("executor", ["dask", "ray"])
def test_cluster_executor_on_an_existing_cluster(tmp_path, prefect_api, executor):
    """`run.address`: `recipeflow run` sends the tasks to a cluster started beforehand (as on
    other machines)."""
    expected = _checksums(tmp_path, prefect_api, "processes")
    # Ray clusters require a token: this cluster's own, given to the head and to the CLI (a
    # fresh process: Ray reads the token once per process).
    token = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    with existing_cluster(executor, tmp_path, token) as address:
        root = tmp_path / f"{executor}-on-cluster"
        done = subprocess.run(
            [sys.executable, "-m", "recipeflow.cli", "run", str(tmp_path / "processes.yaml"), "--no-progress",
             "--set", f"run.executor={executor}", "--set", f"run.address={address}",
             "--set", f"output.path={root}"],
            env={**os.environ, "PREFECT_API_URL": prefect_api, **token}, capture_output=True, text=True, timeout=400,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    [version] = versions.list_versions(str(root))
    manifest = versions.read_manifest(str(root), version["version"])
    assert manifest["run"]["executor"] == executor
    assert [(f["path"], f["sha256"]) for f in manifest["files"] + manifest["rejected_files"]] == expected


@contextmanager
def existing_cluster(executor: str, tmp_path, env: dict[str, str]) -> Iterator[str]:
    """A Dask scheduler with two worker processes, or a Ray head (`ray start --head --block`,
    in its own process group, stopped by its PID)."""
    if executor == "dask":
        from distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                          host="127.0.0.1") as cluster:
            yield cluster.scheduler_address
        return
    port = _free_port()
    log = tmp_path / "ray.log"
    with open(log, "w") as out:
        head = subprocess.Popen(
            [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--port", str(port),
             "--node-ip-address", "127.0.0.1", "--num-cpus", "2", "--include-dashboard", "false",
             "--disable-usage-stats", "--temp-dir", tempfile.mkdtemp(prefix="rf-ray-")],  # short: socket paths
            env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            deadline = time.time() + 180
            while not _listening(port):
                assert time.time() < deadline and head.poll() is None, log.read_text()[-3000:]
                time.sleep(0.5)
            yield f"127.0.0.1:{port}"
        finally:
            stop_process_group(head)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
