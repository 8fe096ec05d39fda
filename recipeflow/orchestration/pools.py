"""Work pools: GPU stages as their own flow runs on the GPU pool, bounded by a tag limit.

When ``run.pools.gpu`` names a pool, a stage whose operators need a GPU is not run by the
recipe's flow run: the flow run starts a run of the ``recipeflow-stage`` deployment on that
pool (``run_deployment``, a subflow in the UI) with the shards still to compute, and waits.
The stage run writes its results under the same content addresses as any stage task, in the
run's cache (so the pools' hosts must share it: S3 or a shared folder); the recipe's flow run
reads them from there. Without a GPU pool, GPU stages run in the recipe's flow run like the
others.

Every GPU task carries the tag ``recipeflow-gpu``; a Prefect tag concurrency limit on it
(``run.gpu_concurrency``) bounds how many run at once across all runs and hosts.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.runtime import flow_run

from recipeflow.orchestration import attempts, credentials, run_view
from recipeflow.engine import execute
from recipeflow.engine.cache_address import CacheEntry
from recipeflow.engine.planner import OpRef, Stage
from recipeflow.engine.shard_input import ShardInput, StageOutput
from recipeflow.engine.stored_results import StoredResults
from recipeflow.io import readers
from recipeflow.orchestration.tasks import stage_task
from recipeflow.orchestration.work import Work
from recipeflow.recipe.models import RouteSpec

GPU_TAG = "recipeflow-gpu"
STAGE_FLOW = "recipeflow-stage"
POLL_SECONDS = 2


class StageRunFailed(RuntimeError):
    """A stage's flow run on a work pool did not complete."""


# -- what a stage run is asked to do, as JSON (flow run parameters) -----------------------------


def stage_to_json(stage: Stage) -> dict[str, Any]:
    return dataclasses.asdict(stage)


def stage_from_json(data: dict[str, Any]) -> Stage:
    barrier = OpRef(**data["barrier"]) if data["barrier"] else None
    return Stage(data["id"], data["node"], barrier, tuple(OpRef(**o) for o in data["ops"]))


def shard_to_json(inp: ShardInput) -> dict[str, Any]:
    data = dataclasses.asdict(dataclasses.replace(inp, route=None))
    data["route"] = inp.route.model_dump(mode="json") if inp.route is not None else None
    return data


def shard_from_json(data: dict[str, Any]) -> ShardInput:
    source = data["source"]
    if source is not None:
        slices = tuple(readers.FileSlice(**s) for s in source["slices"])
        source = readers.SourceShard(**{**source, "slices": slices})
    route = RouteSpec(**data["route"]) if data["route"] is not None else None
    return ShardInput(**{**data, "source": source, "route": route})


# -- the stage flow, run by a worker of the pool ------------------------------------------------


# Threads share the process's loaded model; the tag limit, not this pool, bounds GPU tasks.
@flow(name=STAGE_FLOW, persist_result=False, task_runner=ThreadPoolTaskRunner(max_workers=4))
def stage_flow(
    stage: dict[str, Any],
    shards: list[dict[str, Any]],
    decisions: list[str | None],
    addresses: list[str],
    work_root: str,
    reuse: bool = True,
    aws_credentials_block: str | None = None,
) -> int:
    """Run one stage of a recipe on the given shards; results go to the run's stage cache.

    GPU tasks are tagged ``recipeflow-gpu``: the tag's concurrency limit decides how many run
    at once. Returns the number of shards processed. ``addresses``: each shard's stage cache
    address, computed by the recipe's flow run (the same task and cache keys as in-process).
    """
    if aws_credentials_block:
        os.environ[credentials.AWS_BLOCK_ENV] = aws_credentials_block  # inherited by task processes
    credentials.configure_credentials()
    plan = stage_from_json(stage)
    logger = get_run_logger()
    logger.info("stage %s (%s) on %d shards", plan.id, " → ".join(plan.operator_names), len(shards))
    futures = [
        stage_task.with_options(
            task_run_name=run_view.task_name(plan.node, plan.operator_names, inp.key), tags=[GPU_TAG], refresh_cache=not reuse
        )
        .submit(plan, inp, decision, CacheEntry("stages", address), work_root, reuse)
        for inp, decision, address in zip(map(shard_from_json, shards), decisions, addresses)
    ]
    for future in futures:
        future.result()
    for note in attempts.retried(work_root, str(flow_run.get_id())):  # the recipe's run reads only its own
        logger.warning("task %r started %d times: it raised and was retried", note["task"], note["attempts"])
    return len(futures)


# -- the recipe's flow run, dispatching a stage ------------------------------------------------


def run_on_pool(
    stage: Stage,
    inputs: list[ShardInput],
    decisions: list[str | None],
    entries: list[CacheEntry],
    work: Work,
    label: str,
) -> list[StageOutput]:
    """Run ``stage`` as a flow run on ``work.gpu_pool`` for the shards whose result is not
    stored yet, wait for it, and read every shard's result from the stage cache."""
    logger = get_run_logger()
    found = work.locate([f"{stage.id} {inp.key}" for inp in inputs], entries)
    todo = [i for i, where in enumerate(found) if where is None]
    if todo:
        pool = work.gpu_pool
        warn_if_no_worker(pool)
        logger.info("%s: %d of %d shards run on work pool %r", label, len(todo), len(inputs), pool)
        child = run_deployment(
            f"{STAGE_FLOW}/{pool}",
            parameters={
                "stage": stage_to_json(stage),
                "shards": [shard_to_json(inputs[i]) for i in todo],
                "decisions": [decisions[i] for i in todo],
                "addresses": [entries[i].address for i in todo],
                "work_root": work.root,
                "reuse": work.reuse,
                "aws_credentials_block": os.environ.get(credentials.AWS_BLOCK_ENV),
            },
            flow_run_name=f"{stage.id} on {pool}",
            timeout=None,
            poll_interval=POLL_SECONDS,
        )
        if child.state is None or not child.state.is_completed():
            state = child.state.name if child.state else "unknown"
            raise StageRunFailed(
                f"stage {stage.id} ({' → '.join(stage.operator_names)}) ended {state} in flow run "
                f"{child.name} ({child.id}) on work pool {pool!r}; see that flow run's logs"
            )
    else:
        logger.info("%s: every shard's result is stored; nothing to run on the GPU pool", label)
    stored = StoredResults(work.root)  # found again: the pool's tasks stored the shards they did
    outputs = [execute.stage_output(stored.read(e, where)) for e, where in zip(entries, stored.locate(entries))]
    for inp, output in zip(inputs, outputs):
        if output is None:
            raise StageRunFailed(f"stage {stage.id}: shard {inp.key} has no stored result after its run on {work.gpu_pool!r}")
    return outputs  # type: ignore[return-value]


def warn_if_no_worker(pool: str) -> None:
    """Say so when no worker polls ``pool``: the stage's flow run would wait for one."""
    with get_client(sync_client=True) as client:
        try:
            status = client.read_work_pool(pool).status
        except ObjectNotFound:
            raise StageRunFailed(
                f"work pool {pool!r} (run.pools.gpu) does not exist; create it with "
                f"`recipeflow deploy` or `prefect work-pool create {pool} --type process`"
            ) from None
    if status is not None and str(getattr(status, "value", status)).upper() != "READY":
        get_run_logger().warning(
            "no worker is polling work pool %r: the GPU stage waits until one starts "
            "(`prefect worker start --pool %s` on a GPU host)", pool, pool
        )


# -- set-up: pools, the stage deployment, the GPU limit ----------------------------------------


def ensure_work_pool(name: str, pool_type: str = "process") -> bool:
    """Create work pool ``name`` (of ``pool_type``, with its default job template) if missing;
    returns whether it was created."""
    from prefect.client.schemas.actions import WorkPoolCreate

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type=pool_type))
            return True


def ensure_stage_deployment(pool: str) -> None:
    """The ``recipeflow-stage/<pool>`` deployment that GPU stages are run through (and its pool,
    a process pool, if missing)."""
    from prefect.deployments.runner import EntrypointType

    ensure_work_pool(pool)
    stage_flow.to_deployment(
        name=pool,
        work_pool_name=pool,
        entrypoint_type=EntrypointType.MODULE_PATH,
        description=f"GPU stages of recipeflow recipes, on work pool {pool!r}",
        tags=["recipeflow"],
    ).apply()


def set_gpu_limit(limit: int, *, replace: bool) -> int:
    """The tag concurrency limit on ``recipeflow-gpu``: set to ``limit`` (``replace``) or
    created with it if missing. Returns the limit in force."""
    with get_client(sync_client=True) as client:
        try:
            current = client.read_concurrency_limit_by_tag(GPU_TAG).concurrency_limit
        except ObjectNotFound:
            current = None
        if current is None or (replace and current != limit):
            client.create_concurrency_limit(tag=GPU_TAG, concurrency_limit=limit)  # an upsert
            return limit
        return current
