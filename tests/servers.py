"""Real Prefect processes for the tests: a `prefect server` and process workers on 127.0.0.1,
each started in its own process group and stopped by its PID, even when the test fails."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx

from tests.s3 import _free_port

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def stop_process_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGINT (a Prefect worker ignores SIGTERM), then SIGKILL if it does not stop."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
    else:  # the leader is gone; its children may not be
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_healthy(api: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(log.read_text()[-3000:])
        time.sleep(0.5)
    raise RuntimeError(f"prefect server at {api} did not start in time")


@contextmanager
def prefect_server(home: Path) -> Iterator[str]:
    """`prefect server start` on a free port of 127.0.0.1, its database in ``home``."""
    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    log_path = home / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            api = f"http://127.0.0.1:{port}/api"
            wait_healthy(api, proc, log_path)
            yield api
        finally:
            stop_process_group(proc)


@contextmanager
def process_worker(api: str, pool: str, name: str, home: Path, **env_extra: str) -> Iterator[subprocess.Popen]:
    """`prefect worker start --pool POOL --type process`; its flow runs inherit this
    environment (the recipeflow under test, S3 credentials)."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PREFECT_API_URL": api,
        "PREFECT_HOME": str(home),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        **env_extra,
    }
    log_path = home / f"worker-{name}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process",
             "--name", name],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            yield proc
        finally:
            stop_process_group(proc)


def post(api: str, path: str, body: dict, tries: int = 5) -> list | dict:
    """POST to the API, trying again on 503, as Prefect's own client does: a SQLite-backed
    server answers 503 while its database is locked (seen once in CI as two workers started)."""
    for attempt in range(tries):
        response = httpx.post(f"{api}{path}", json=body, timeout=30)
        if response.status_code != 503 or attempt == tries - 1:
            break
        time.sleep(1 + attempt)
    response.raise_for_status()
    return response.json()


def scheduled_runs(api: str, deployment_id: str, timeout: float = 60) -> list[dict]:
    """The deployment's Scheduled flow runs (made by the server's scheduler), soonest first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = post(api, "/flow_runs/filter", {
            "deployments": {"id": {"any_": [deployment_id]}},
            "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
            "sort": "EXPECTED_START_TIME_ASC",
        })
        if runs:
            return runs
        time.sleep(1)
    raise AssertionError(f"the scheduler made no run of deployment {deployment_id} in {timeout:.0f} s")


def trigger_next_scheduled_run(api: str, deployment_id: str) -> str:
    """Make the schedule's next run due now (a worker or runner picks it up); returns its id."""
    run = scheduled_runs(api, deployment_id)[0]
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    post(api, f"/flow_runs/{run['id']}/set_state", {
        "state": {"type": "SCHEDULED", "name": "Scheduled", "state_details": {"scheduled_time": now}},
        "force": True,
    })
    return run["id"]


def wait_for_flow_run(api: str, flow_run_id: str, timeout: float = 300, logs: list[Path] = ()) -> dict:
    deadline = time.time() + timeout
    run: dict = {}
    while time.time() < deadline:
        try:
            run = httpx.get(f"{api}/flow_runs/{flow_run_id}", timeout=30).json()
        except httpx.TransportError:  # a server busy with the workers' writes: ask again
            time.sleep(1)
            continue
        if run.get("state_type") in TERMINAL:
            break
        time.sleep(1)
    if run.get("state_type") != "COMPLETED":
        tails = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in logs if p.exists())
        raise AssertionError(f"flow run {flow_run_id} ended {run.get('state_type')}: {run.get('state')}\n{tails}")
    return run


def recorded_task_runs(flow_run_id: str, at_least: int = 1, timeout: float = 60) -> list:
    """A flow run's task runs (Prefect client objects) once the server has recorded them all.

    Prefect's server writes task runs and their states from the client's events, in the
    background: read at once after a run, some may still be missing (CI once saw 10 of 15).
    Waits until at least ``at_least`` are there, each in a final state, and a second read
    half a second later finds no more."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.time() + timeout
    seen: list = []
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            settled = len(runs) >= at_least and all(r.state is not None and r.state.type.value in TERMINAL for r in runs)
            if (settled and len(runs) == len(seen)) or time.time() > deadline:
                return runs
            seen = runs
            time.sleep(0.5)


def task_runs(api: str, flow_run_id: str) -> list[dict]:
    return post(api, "/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200})


def child_flow_runs(api: str, flow_run_id: str) -> list[dict]:
    """Flow runs started from ``flow_run_id`` (subflows, run_deployment), oldest first."""
    tasks = [t["id"] for t in task_runs(api, flow_run_id)]
    if not tasks:
        return []
    return post(api, "/flow_runs/filter", {
        "flow_runs": {"parent_task_run_id": {"any_": tasks}}, "sort": "START_TIME_ASC",
    })
