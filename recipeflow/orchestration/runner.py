"""Run a recipe file: validate, check inputs and outputs before any work, then run the flow."""

from __future__ import annotations

import gc
import os
from typing import Any, Sequence

from recipeflow.orchestration import credentials, fork_server
from recipeflow.orchestration.prefect_server import (
    no_lasting_server, prefect_api, start_embedded_server, stop_embedded_server,
)
from recipeflow.engine import token_reach
from recipeflow.engine.inputs import resolve_input
from recipeflow.io import readers, storage
from recipeflow.recipe.loading import load_recipe
from recipeflow.recipe.model_files import fetch_models
from recipeflow.recipe.models import HeadTrainSpec, Recipe
from recipeflow.recipe.overlap import first_overlap
from recipeflow.recipe.paths import with_absolute_paths


class RunRefused(ValueError):
    """The recipe is valid but cannot run: an input matches nothing, an output is not writable."""


def preflight(runnable: Recipe) -> None:
    """Clear errors before any work starts (and before Prefect starts); ``runnable``: the
    recipe with absolute local paths."""
    recipe = runnable
    where = recipe.source or "<recipe>"
    credentials.configure_credentials()
    for name, spec in runnable.inputs.items():
        try:
            resolve_input(spec)
        except (readers.InputNotFound, FileNotFoundError) as exc:
            raise RunRefused(f"{where}: inputs.{name}.path: {exc}") from exc
        except ValueError as exc:
            raise RunRefused(f"{where}: inputs.{name}.format: {exc}") from exc
        except Exception as exc:  # a refused or unauthenticated object store: say who and what
            if not storage.is_access_error(exc):
                raise
            raise RunRefused(f"{where}: inputs.{name}.path: {storage.access_problem(spec.path, exc)}") from None
    if (overlap := first_overlap(runnable)) is not None:
        raise RunRefused(f"{where}: {overlap}")
    token_reach.check_budgets(runnable)  # RecipeInvalid, with the field's line
    roots = [
        ("output.path" if node == "main" else f"outputs.{node}.path", spec)
        for node, spec in runnable.outputs.items()
    ] + [(f"train.{name}.output.path", spec.output) for name, spec in runnable.train.items()]
    for field, output in roots:
        try:
            storage.check_writable(output.path, recipe=where, field=field,
                                   create_bucket=output.create_bucket)
        except storage.OutputNotWritable as exc:
            raise RunRefused(str(exc)) from exc
    missing_models = fetch_models(runnable)  # fetched now, as Data-Juicer does on first use
    if missing_models:
        raise RunRefused(
            f"{where}: model files the recipe needs cannot be had:\n  " + "\n  ".join(missing_models)
        )
    if any(isinstance(spec, HeadTrainSpec) for spec in runnable.train.values()):
        from recipeflow.engine.head_training import HeadTrainingError, check_head_training

        try:  # too few graded documents, an encoder that does not fit: before any GPU work
            check_head_training(runnable)
        except HeadTrainingError as exc:
            raise RunRefused(f"{where}: {exc}") from exc
    if recipe.run.pools.gpu and no_lasting_server():
        # The embedded server lives in this process: no worker of the GPU pool can reach it.
        raise RunRefused(
            f"{where}: run.pools.gpu: GPU stages on work pool {recipe.run.pools.gpu!r} need a Prefect "
            "server that the pool's workers reach; set PREFECT_API_URL, or leave run.pools.gpu "
            "unset to run GPU stages in this run"
        )


def run_recipe(
    path: str, overrides: Sequence[str] = (), *, progress: bool = True, base_dir: str | None = None
) -> list[dict[str, Any]]:
    """Run the recipe at ``path``; returns, per output, the manifest of the version committed
    (or, when nothing changed, what the latest version is: see ``refresh``)."""
    # The embedded server first: its start-up (seconds) overlaps loading and checking the
    # recipe and importing Prefect and the flow.
    server = start_embedded_server()
    try:
        recipe = load_recipe(path, overrides)  # validated here, once for the whole run
        runnable = prepare(recipe, base_dir)
        if recipe.run.executor == "processes":
            fork_server.start_fork_server()  # the workers' imports overlap the rest too
        configured = configured_flow(runnable)
    except BaseException:
        stop_embedded_server(server)  # without waiting for it to answer
        raise
    from prefect import tags

    from recipeflow.orchestration import run_view

    # What is loaded now (Prefect, the flow, the recipe) lives as long as the run: out of the
    # garbage collector's sight during it, full collections do not walk it again and again
    # (0.2 s of a 5,000-shard run's flow process, 0.08 s so). Given back after the run, so a
    # process running many recipes still collects what they leave.
    gc.freeze()
    try:
        with prefect_api(server), tags(*run_view.run_tags(runnable, run_view.MANUAL)):
            return configured(recipe=runnable, as_written=recipe.resolved(), progress=progress)
    finally:
        gc.unfreeze()


def prepare(recipe: Recipe, base_dir: str | None = None) -> Recipe:
    """Credentials for this process and its workers, and the checks before any work; returns
    the recipe with its local paths made absolute from ``base_dir`` (default: the recipe file's
    folder)."""
    if recipe.run.aws_credentials_block:
        os.environ[credentials.AWS_BLOCK_ENV] = recipe.run.aws_credentials_block
    runnable = with_absolute_paths(recipe, base_dir)
    preflight(runnable)
    return runnable


def configured_flow(recipe: Recipe) -> Any:
    """The recipe's flow: named after the recipe (each recipe is its own flow in the UI), with
    its executor; its run is named ``<recipe>-<start time>`` until the commit renames it
    ``<recipe>-<version>`` (see ``run_view``)."""
    from recipeflow.orchestration import run_view
    from recipeflow.orchestration.flow import recipe_flow, task_runner

    return recipe_flow.with_options(
        name=recipe.name, task_runner=task_runner(recipe.run), flow_run_name=run_view.start_name(recipe)
    )


def start_flow(recipe: Recipe, base_dir: str | None = None, *, progress: bool = True) -> list[dict[str, Any]]:
    """The recipe's flow run, where a Prefect API is set up already (a subflow when called in a
    flow run, as a deployment's run does)."""
    from prefect import tags
    from prefect.runtime import flow_run

    from recipeflow.orchestration import run_view

    runnable = prepare(recipe, base_dir)
    trigger = run_view.trigger_of(flow_run.get_tags())  # the deployment's run: scheduled or not
    with tags(*run_view.run_tags(runnable, trigger)):
        return configured_flow(runnable)(recipe=runnable, as_written=recipe.resolved(), progress=progress)
