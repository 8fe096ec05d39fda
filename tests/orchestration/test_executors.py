"""Ray and Dask produce data files byte-identical to the processes executor: on the local
clusters a run starts itself, and on multi-node clusters started beforehand, one of whose nodes
dies in the middle of a run."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from recipeflow.datasets import versions
from recipeflow.orchestration import attempts
from recipeflow.orchestration.runner import run_recipe
from tests.clusters import Cluster, dask_cluster, ray_cluster
from tests.conftest import REPO, SAMPLE_WARC

SAMPLES = REPO / "recipes" / "samples"
FINEWEB = REPO / "recipes" / "fineweb-en.yaml"


def _warc_recipe(folder: Path, executor: str) -> Path:
    path = folder / f"{executor}.yaml"
    path.write_text(yaml.safe_dump({
        "name": f"executor-{executor}",
        "inputs": {"pages": {"path": str(SAMPLE_WARC)}},
        "process": [{"html_extract": {}}, {"text_length_filter": {"min_length": 1000}}, {"exact_dedup": {"partitions": 2}}],
        "output": {"path": str(folder / executor), "keep_rejected": True},
        "run": {"executor": executor, "workers": 2, "shard_size": 100},
    }))
    return path


@pytest.fixture(scope="module")
def by_processes(tmp_path_factory, prefect_api) -> dict[str, tuple[Path, list]]:
    """Each recipe of this module and the data files `processes` writes for it (paths relative
    to the output root), computed once for the module."""
    folder = tmp_path_factory.mktemp("by-processes")
    recipes = {"warc": _warc_recipe(folder, "processes"), "fineweb": FINEWEB, "minhash": _minhash_recipe(folder)}
    return {
        name: (recipe, _files(run_recipe(str(recipe), overrides=[f"output.path={folder / name}"], progress=False)[0]))
        for name, recipe in recipes.items()
    }


@pytest.mark.parametrize("executor", ["dask", "ray"])
def test_cluster_executor_matches_processes(tmp_path, by_processes, executor):
    """Ray and Dask on the local cluster a run starts for itself."""
    [manifest] = run_recipe(str(_warc_recipe(tmp_path, executor)), progress=False)
    assert _files(manifest) == by_processes["warc"][1]
    assert _files(manifest)



def _minhash_recipe(folder: Path) -> Path:
    path = folder / "minhash.yaml"
    path.write_text(yaml.safe_dump({
        "name": "minhash-on-cluster",
        "inputs": {name: {"path": str(SAMPLES / f"{name}.jsonl.gz")}
                   for name in ("debian-handbook-sample", "debian-reference-sample", "debian-handbook-multilingual")},
        "process": [{"minhash_dedup": {"partitions": 2}}],
        "output": {"path": str(folder / "minhash"), "keep_rejected": True},
        "run": {"executor": "processes", "workers": 2, "shard_size": 60},
    }))
    return path


def _files(manifest: dict) -> list:
    return [(f["path"], f["sha256"]) for f in manifest["files"] + manifest["rejected_files"]]


def _run_on(cluster: Cluster, executor: str, recipe: Path, root: Path, env: dict, kill_a_busy_node: bool = False) -> dict:
    """`recipeflow run` of ``recipe`` on the cluster; ``kill_a_busy_node``: SIGKILL the worker
    node that runs a task first (found by the task's start note under the cache root)."""
    run = subprocess.Popen(
        [sys.executable, "-m", "recipeflow.cli", "run", str(recipe), "--no-progress",
         "--set", f"run.executor={executor}", "--set", f"run.address={cluster.address}", "--set", f"output.path={root}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        if kill_a_busy_node:
            deadline = time.time() + 300
            while (busy := _busy_node(cluster, root)) is None:
                assert run.poll() is None and time.time() < deadline, "no task started on a worker node"
                time.sleep(0.02)
            cluster.kill_node(busy)
        out, _ = run.communicate(timeout=400)
    finally:
        run.kill()
    assert run.returncode == 0, out[-5000:]
    [version] = versions.list_versions(str(root))
    return {**versions.read_manifest(str(root), version["version"]), "stdout": out}


def _busy_node(cluster: Cluster, root: Path) -> int | None:
    """The worker node running a task now: a task notes its start (its pid) as it begins."""
    for note in (root / "cache" / attempts.ATTEMPTS_DIR).glob("*/*.json"):
        try:
            pid = json.loads(note.read_text())["pid"]
        except (ValueError, FileNotFoundError):  # being written
            continue
        if (node := cluster.node_of(pid)) is not None:
            return node
    return None


@pytest.mark.parametrize("executor", ["dask", "ray"])
def test_a_multi_node_cluster_matches_processes_even_when_a_node_dies(tmp_path, prefect_api, by_processes, executor):
    """`run.address`: the FineWeb chain and MinHash run on a cluster of separate nodes started
    beforehand (as on other machines), byte-identical to `processes`. One worker node is killed
    while it runs a task of the FineWeb run: the task runs again on the other node, the run
    commits one version, byte-identical, and says what it retried."""
    # Ray clusters require a token: this cluster's own, given to the nodes and to the CLI (a
    # fresh process: Ray reads the token once per process).
    token = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)} if executor == "ray" else {}
    env = {**os.environ, "PREFECT_API_URL": prefect_api, **token}
    with ray_cluster(tmp_path, token) if executor == "ray" else dask_cluster(tmp_path) as cluster:
        minhash = _run_on(cluster, executor, by_processes["minhash"][0], tmp_path / "minhash-on-cluster", env)
        fineweb = _run_on(cluster, executor, FINEWEB, tmp_path / "fineweb-on-cluster", env, kill_a_busy_node=True)
    assert _files(minhash) == by_processes["minhash"][1] and minhash["run"]["executor"] == executor
    assert _files(fineweb) == by_processes["fineweb"][1]
    retried = fineweb["run"]["tasks"]["retried"]
    assert retried and all(note["attempts"] >= 2 for note in retried), fineweb["stdout"][-3000:]
    assert f"retried {len(retried)} task" in fineweb["stdout"] and retried[0]["task"] in fineweb["stdout"]
    assert not list((tmp_path / "fineweb-on-cluster" / "cache" / attempts.ATTEMPTS_DIR).glob("*/*.json"))
