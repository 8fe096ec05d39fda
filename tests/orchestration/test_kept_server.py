"""The kept local Prefect server: the first `recipeflow run` on a Prefect home starts it, the next
reports to it, its UI outlives the runs, and it stops once no run has used it for
RECIPEFLOW_SERVER_IDLE_SECONDS (a killed run's lease does not hold it)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.servers import post


def write_recipe(tmp_path: Path, name: str) -> Path:
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"text": f"document number {i} " * 5}) + "\n" for i in range(20)))
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "name": name,
        "inputs": {"docs": {"path": str(docs), "format": "jsonl"}},
        "process": [{"text_length_filter": {"min_length": 10}}],
        "output": {"path": str(tmp_path / f"out-{name}")},
        "run": {"executor": "processes", "workers": 2},
    }))
    return path


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recipeflow.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def server_pid(home: Path) -> int | None:
    state = home / "recipeflow-server" / "server.json"
    return json.loads(state.read_text())["pid"] if state.exists() else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/status").exists() or "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()


def dead_pid() -> int:
    """The pid of a process that has ended (as a killed run's)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.fixture
def home(tmp_path: Path):
    """A Prefect home of its own; whatever server the test leaves there is stopped by its pid."""
    path = tmp_path / "prefect-home"
    started: list[int] = []
    yield path, started
    for pid in {*started, server_pid(path) or 0} - {0}:
        if alive(pid):
            os.kill(pid, signal.SIGTERM)


def user_env(home: Path, idle: str) -> dict:
    env = {**os.environ, "PREFECT_HOME": str(home), "RECIPEFLOW_SERVER_IDLE_SECONDS": idle}
    env.pop("PREFECT_API_URL", None)
    env.pop("PREFECT_UI_URL", None)
    return env


def first_run(tmp_path: Path, home, idle: str, name: str) -> tuple[dict, subprocess.CompletedProcess, int]:
    """A run on a Prefect home with no server: it starts the kept server (pid noted for teardown)."""
    path, started = home
    env = user_env(path, idle)
    done = cli(env, "run", str(write_recipe(tmp_path, name)), "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr
    pid = server_pid(path)
    assert pid is not None and alive(pid)
    started.append(pid)
    return env, done, pid


def test_runs_share_the_kept_server_and_its_ui_outlives_them(tmp_path, home):
    path, started = home
    env, first, pid = first_run(tmp_path, home, "120", "first")
    ui = re.search(r"Prefect UI: (http://127\.0\.0\.1:\d+)", first.stdout).group(1)
    assert "stops after 2 minutes without runs" in first.stdout

    second = cli(env, "run", str(write_recipe(tmp_path, "second")), "--no-progress")
    assert second.returncode == 0, second.stdout + second.stderr
    assert server_pid(path) == pid, "the second run started a server of its own"
    assert f"Prefect UI: {ui}" in second.stdout
    assert f"View at {ui}/runs/flow-run/" in second.stdout + second.stderr

    # After both runs: the server still answers, with both flow runs and the UI's page.
    flows = {run["name"].split("-")[0] for run in post(f"{ui}/api", "/flow_runs/filter", {})}
    assert {"first", "second"} <= flows
    with urllib.request.urlopen(ui, timeout=10) as page:
        assert b"<!DOCTYPE html>" in page.read()[:200]
    status = cli(env, "server", "status")
    assert f"UI {ui}" in status.stdout and "runs using it now: 0" in status.stdout

    # A run with other server settings (another Prefect, another database) does not report to
    # this server: while a run uses it, it gets a server of its own; else it replaces it.
    from recipeflow.orchestration import kept_server

    lease = path / "recipeflow-server" / "leases" / f"{os.getpid()}.test"
    lease.touch()
    saved = {k: os.environ[k] for k in ("PREFECT_HOME", "RECIPEFLOW_SERVER_IDLE_SECONDS")}
    os.environ.update(PREFECT_HOME=str(path), RECIPEFLOW_SERVER_IDLE_SECONDS="120",
                      PREFECT_SERVER_API_KEEPALIVE_TIMEOUT="7")
    try:
        assert kept_server.acquire() is None and alive(pid)
        lease.unlink()
        replaced = kept_server.acquire()
        assert replaced is not None and replaced.pid != pid and not alive(pid)
        started.append(replaced.pid)
        replaced.wait_ready()
        replaced.stop()
    finally:
        os.environ.update(saved)
        del os.environ["PREFECT_SERVER_API_KEEPALIVE_TIMEOUT"]
    pid = replaced.pid

    # A lease of a live process (a run in progress) keeps `server stop` from stopping it.
    lease = path / "recipeflow-server" / "leases" / f"{os.getpid()}.test"
    lease.touch()
    refused = cli(env, "server", "stop")
    assert refused.returncode == 1 and str(os.getpid()) in refused.stderr and alive(pid)
    lease.unlink()
    stopped = cli(env, "server", "stop")
    assert stopped.returncode == 0 and f"pid {pid}" in stopped.stdout
    assert not alive(pid) and server_pid(path) is None
    assert "no local Prefect server" in cli(env, "server", "status").stdout


def test_the_kept_server_stops_when_idle_whatever_dead_runs_left(tmp_path, home):
    path, _ = home
    _, _, pid = first_run(tmp_path, home, "3", "idle")
    # A run killed by SIGKILL leaves its lease behind: its pid is dead, so it holds nothing.
    (path / "recipeflow-server" / "leases" / f"{dead_pid()}.killed").touch()
    deadline = time.time() + 60
    while alive(pid) and time.time() < deadline:
        time.sleep(0.2)
    assert not alive(pid), "the server did not stop after 3 idle seconds"
    assert server_pid(path) is None
    assert not list((path / "recipeflow-server" / "leases").iterdir())


def test_a_bad_idle_setting_is_an_error_naming_it(tmp_path, home):
    path, _ = home
    done = cli(user_env(path, "ten minutes"), "run", str(write_recipe(tmp_path, "bad")), "--no-progress")
    assert done.returncode == 2
    assert "RECIPEFLOW_SERVER_IDLE_SECONDS='ten minutes'" in done.stderr
    assert server_pid(path) is None
