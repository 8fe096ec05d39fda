"""SIGKILL of `recipeflow run` alone (not its process group) leaves no child running: not the
embedded Prefect server, not a worker process, on every executor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.conftest import REPO, SAMPLE_WARC


def recipe(tmp_path: Path, executor: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({
        "name": "killed",
        "inputs": {"pages": {"path": str(SAMPLE_WARC), "format": "warc"}},
        "process": [{"html_extract": {}}, {"text_length_filter": {"min_length": 1500}},
                    {"exact_dedup": {}}],
        "output": {"path": str(tmp_path / "dataset")},
        "run": {"executor": executor, "workers": 2, "shard_size": 10},
    }))
    return path


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory) -> Path:
    """One Prefect home for every executor: its database is made once, as on a user's machine."""
    return tmp_path_factory.mktemp("prefect-home")


@pytest.mark.parametrize("executor", ["threads", "processes", "dask", "ray"])
def test_children_die_with_a_killed_run(tmp_path: Path, prefect_home: Path, executor: str) -> None:
    if executor in ("dask", "ray"):
        pytest.importorskip({"dask": "prefect_dask", "ray": "prefect_ray"}[executor])
    env = {**os.environ, "PREFECT_HOME": str(prefect_home)}
    env.pop("PREFECT_API_URL", None)
    run = subprocess.Popen(
        [sys.executable, "-m", "recipeflow.cli", "run", str(recipe(tmp_path, executor)), "--no-progress"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # away from pytest's group; only the run itself is killed
    )
    parent = psutil.Process(run.pid)
    packs = tmp_path / "dataset" / "cache" / "packs"  # a batch's shards' results: its pack's
    children: dict[int, psutil.Process] = {}
    deadline = time.time() + 180
    try:
        while time.time() < deadline and not list(packs.glob("*/result.json")):
            children.update({c.pid: c for c in parent.children(recursive=True)})
            time.sleep(0.05)
        children.update({c.pid: c for c in parent.children(recursive=True)})
        assert run.poll() is None, "the run ended before it could be killed"
        assert children, "the run started no child process"
        run.send_signal(signal.SIGKILL)
        run.wait()
        _, alive = psutil.wait_procs(list(children.values()), timeout=10)
        survivors = [" ".join(p.cmdline()[:6]) for p in alive if p.is_running()]
        assert not survivors, f"still running 10 s after the run was killed: {survivors}"
    finally:
        for child in children.values():  # never leave a process behind, even when failing
            try:
                child.kill()
            except psutil.Error:
                pass
        if run.poll() is None:
            run.kill()
            run.wait()
