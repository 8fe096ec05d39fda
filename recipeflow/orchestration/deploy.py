"""Recipes as Prefect deployments: ``recipeflow deploy`` (run by a worker of a work pool) and
``recipeflow serve`` (run by this process, no worker), with a cron or interval schedule.

A deployment runs the flow ``recipeflow-deployment``, whose parameters hold the recipe: the
resolved recipe itself (``recipeflow deploy``/``serve``: the worker needs no recipe file), or a
recipe file's path and ``--set`` overrides (``deploy/prefect.yaml``, with the code pulled to the
worker). Each run starts the recipe's flow run (a subflow named after the recipe, with the recipe's
executor); a run whose inputs, recipe and operators did not change commits nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import httpx
from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import EntrypointType, RunnerDeployment

from recipeflow.orchestration import pools
from recipeflow.orchestration import runner
from recipeflow.engine.planner import plan_recipe
from recipeflow.recipe.models import Recipe
from recipeflow.recipe.loading import load_recipe
from recipeflow.recipe.validate import parse_recipe
from recipeflow.engine.refresh import committed
from recipeflow.recipe.paths import recipe_folder
from recipeflow.operators.base import Resource

DEPLOYMENT_FLOW = "recipeflow-deployment"
DEFAULT_POOL = "cpu"


class DeployError(ValueError):
    """A deployment that cannot be made as asked (a bad schedule, say)."""


@flow(name=DEPLOYMENT_FLOW, persist_result=False, log_prints=True)
def deployment_flow(
    recipe: str | None = None,
    recipe_data: dict[str, Any] | None = None,
    overrides: list[str] | None = None,
    recipe_source: str | None = None,
    base_dir: str | None = None,
) -> list[dict[str, Any]]:
    """A deployment's run of a recipe, scheduled or triggered: the recipe's flow run, commit
    included (or nothing, when nothing changed since the dataset's latest version).

    ``recipe``: a recipe file (with ``overrides``, ``--set`` style), or ``recipe_data``: the
    recipe itself. Relative local paths in it are taken from ``base_dir`` (default: the recipe
    file's folder; the working directory of the run for ``recipe_data``).
    """
    if (recipe is None) == (recipe_data is None):
        raise ValueError("a recipeflow deployment needs `recipe` (a recipe file) or `recipe_data`, not both")
    if recipe is not None:
        loaded = load_recipe(recipe, overrides or [])
    else:
        loaded = parse_recipe(recipe_data, source=recipe_source or "<deployment parameters>")
    results = runner.start_flow(loaded, base_dir, progress=False)
    logger = get_run_logger()
    for result in results:
        if not committed(result):
            logger.info(result["message"])
        elif "version" in result:
            logger.info("committed version %s of %s (parent %s)", result["version"], result["dataset"], result.get("parent"))
    return results


# -- schedules --------------------------------------------------------------------------------


def schedule_for(cron: str | None, interval: float | None, timezone: str | None):
    """A Prefect schedule from ``--cron`` or ``--interval`` (None: no schedule)."""
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.schedules import Cron, Interval

    if cron is not None and interval is not None:
        raise DeployError("give --cron or --interval, not both")
    if cron is not None:
        try:
            CronSchedule(cron=cron, timezone=timezone or "UTC")
        except (ValueError, TypeError) as exc:
            raise DeployError(
                f"--cron {cron!r}: not a valid cron expression or timezone ({exc}); "
                "e.g. --cron '0 2 * * *' (02:00 every day)"
            ) from exc
        return Cron(cron, timezone=timezone or "UTC")
    if interval is not None:
        if interval <= 0:
            raise DeployError(f"--interval {interval:g}: expected a number of seconds > 0")
        return Interval(interval, timezone=timezone)
    return None


def describe_schedule(cron: str | None, interval: float | None, timezone: str | None) -> str:
    if cron is not None:
        return f"cron '{cron}' ({timezone or 'UTC'})"
    if interval is not None:
        return f"every {interval:g} seconds"
    return "no schedule (runs when triggered: `prefect deployment run`)"


# -- recipeflow deploy ------------------------------------------------------------------------


@dataclass
class Deployed:
    """What ``recipeflow deploy`` made: for the terminal."""

    name: str  # "<flow>/<deployment>"
    deployment_id: str
    pool: str
    schedule: str
    created_pools: list[str] = field(default_factory=list)
    gpu_pool: str | None = None
    gpu_limit: int | None = None
    notes: list[str] = field(default_factory=list)


def deployment_parameters(recipe: Recipe, base_dir: str) -> dict[str, Any]:
    """The recipe itself (resolved), so a worker on any host needs no recipe file."""
    return {"recipe_data": recipe.resolved(), "recipe_source": recipe.source, "base_dir": base_dir}


def build_deployment(
    recipe: Recipe,
    name: str,
    *,
    schedule: Any,
    base_dir: str,
    pool: str | None,
) -> RunnerDeployment:
    """The deployment of ``recipe``: one run at a time (a refresh builds on the previous one;
    a run due while one is running waits for it)."""
    return deployment_flow.to_deployment(
        name=name,
        schedule=schedule,
        parameters=deployment_parameters(recipe, base_dir),
        work_pool_name=pool,
        entrypoint_type=EntrypointType.MODULE_PATH,
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
        description=recipe.description or f"recipeflow recipe {recipe.name} ({recipe.source})",
        tags=["recipeflow", recipe.name],
        paused=False,
    )


def deploy_recipe(
    path: str,
    overrides: Sequence[str] = (),
    *,
    name: str,
    cron: str | None = None,
    interval: float | None = None,
    timezone: str | None = None,
    pool: str | None = None,
    base_dir: str | None = None,
) -> Deployed:
    """Create or update the deployment ``recipeflow-deployment/<name>`` of the recipe at
    ``path`` on a work pool (``pool``, else ``run.pools.cpu``, else ``cpu``), with exactly the
    schedule given (none: the schedules it had are removed). Creates missing process pools; for
    GPU stages with ``run.pools.gpu``, the stage deployment on that pool; sets the GPU limit."""
    recipe = load_recipe(path, overrides)
    schedule = schedule_for(cron, interval, timezone)
    pool = pool or recipe.run.pools.cpu or DEFAULT_POOL
    base_dir = base_dir or recipe_folder(recipe.source)
    deployed = Deployed(
        name=f"{DEPLOYMENT_FLOW}/{name}", deployment_id="", pool=pool,
        schedule=describe_schedule(cron, interval, timezone),
    )
    if pools.ensure_work_pool(pool):
        deployed.created_pools.append(pool)
    deployment = build_deployment(recipe, name, schedule=schedule, base_dir=base_dir, pool=pool)
    deployed.deployment_id = str(deployment.apply())
    _keep_only_schedule(deployed.deployment_id, wanted=schedule is not None)

    gpu_stages = [s for s in plan_recipe(recipe).stages if s.resource == Resource.gpu]
    if gpu_stages:
        deployed.gpu_limit = pools.set_gpu_limit(recipe.run.gpu_concurrency, replace=True)
        gpu_pool = recipe.run.pools.gpu
        if gpu_pool:
            if pools.ensure_work_pool(gpu_pool):
                deployed.created_pools.append(gpu_pool)
            pools.ensure_stage_deployment(gpu_pool)
            deployed.gpu_pool = gpu_pool
        else:
            deployed.notes.append(
                f"{len(gpu_stages)} GPU stage(s) run on pool {pool!r} with the rest "
                "(set run.pools.gpu to run them on a GPU pool)"
            )
    elif recipe.run.pools.gpu:
        deployed.notes.append("run.pools.gpu is set but no operator of the recipe needs a GPU")
    return deployed


def _keep_only_schedule(deployment_id: str, *, wanted: bool) -> None:
    """An update sends the new schedule (replacing the old ones) but leaves old schedules in
    place when none is given: remove them then, so the deployment has exactly what was asked."""
    if wanted:
        return
    from uuid import UUID

    with get_client(sync_client=True) as client:
        for schedule in client.read_deployment_schedules(UUID(deployment_id)):
            client.delete_deployment_schedule(UUID(deployment_id), schedule.id)


# -- recipeflow serve -------------------------------------------------------------------------


def serve_recipe(
    path: str,
    overrides: Sequence[str] = (),
    *,
    name: str | None = None,
    cron: str | None = None,
    interval: float | None = None,
    timezone: str | None = None,
    base_dir: str | None = None,
    announce: Any = print,
) -> None:
    """Run the recipe's schedule in this process until interrupted: a Prefect runner starts
    each due run as a subprocess of this one; no work pool or worker is involved."""
    from prefect import serve

    recipe = load_recipe(path, overrides)
    schedule = schedule_for(cron, interval, timezone)
    if schedule is None:
        raise DeployError("recipeflow serve needs a schedule: --cron EXPR or --interval SECONDS")
    deployment = build_deployment(
        recipe, name or recipe.name, schedule=schedule, base_dir=base_dir or recipe_folder(recipe.source), pool=None
    )
    with serving_api(announce) as api:
        announce(
            f"serving {DEPLOYMENT_FLOW}/{deployment.name}: {describe_schedule(cron, interval, timezone)}; "
            f"Prefect API {api}; stop with Ctrl-C"
        )
        serve(deployment, print_starting_message=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving_api(announce: Any = print, timeout: float = 180) -> Iterator[str]:
    """The configured Prefect API, or a ``prefect server`` started for as long as this lasts.

    The embedded server of ``recipeflow run`` runs no scheduler (Prefect's ephemeral mode), so
    schedules need a real server: this one keeps its database in ``PREFECT_HOME`` and serves
    the UI on 127.0.0.1.
    """
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    # Same process group as this one: Ctrl-C (or a signal to the group) stops both.
    log = tempfile.NamedTemporaryFile(prefix="recipeflow-prefect-server-", suffix=".log", delete=False)
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        _wait_healthy(api, server, timeout, log.name)
        announce(f"no PREFECT_API_URL: started a Prefect server at http://127.0.0.1:{port} (UI and API)")
        os.environ["PREFECT_API_URL"] = api  # the runner's subprocesses report to it too
        with temporary_settings(updates={PREFECT_API_URL: api}):
            yield api
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        log.close()


def _wait_healthy(api: str, server: subprocess.Popen, timeout: float, log: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            with open(log, encoding="utf-8", errors="replace") as f:
                raise RuntimeError(f"prefect server exited (log {log}):\n{f.read()[-2000:]}")
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"prefect server at {api} did not answer within {timeout:.0f} s")
