"""The Prefect flow: one flow run per recipe run; a stage's shards run as a few batch tasks
(:mod:`.batches`), each shard under its own cache entry.

The work itself lives in :mod:`recipeflow.engine.execute` and :mod:`recipeflow.engine.commit`;
this module schedules it, shows progress and publishes artifacts.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import prefect
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.context import TagsContext
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from recipeflow.orchestration.parent_watch import kill_descendants_on_death
from recipeflow.orchestration import credentials
from recipeflow.engine import cache_address, execute, history, operator_hooks, refresh, unreadable
from recipeflow.datasets.counts import mix_lines, step_row, step_table_markdown
from recipeflow.datasets.run_summary import retried_lines
from recipeflow.engine.commit import NodeResult
from recipeflow.engine.inputs import resolve_input
from recipeflow.engine.planner import NodePlan, Plan, Stage, plan_recipe
from recipeflow.engine.shard_input import ShardInput, StageOutput, source_input
from recipeflow.io import readers, storage
from recipeflow.operators.base import Resource
from recipeflow.orchestration import attempts, batches, pools, run_view, worker_pool
from recipeflow.orchestration.publish import commit_as_asset
from recipeflow.orchestration.tasks import (
    index_task,
    merge_task,
    resolve_partition_task,
    resolve_task,
    scan_task,
    signatures_batch_task,
    stage_batch_task,
    train_head_task,
    train_task,
)
from recipeflow.orchestration.progress import ProgressBar
from recipeflow.orchestration.work import Unwalked, Work
from recipeflow.recipe.models import HeadTrainSpec, Recipe, RunSpec, resolved_sha256

CACHE_DIR = "cache"


def _upstream_urls(
    recipe: Recipe, node: str, input_files: dict[str, list[readers.FileScan]], datasets: dict[str, Any]
) -> list[str]:
    """The inputs an output is made from: dataset roots, or the files read."""
    used = {s for n in recipe.ancestors(node) for s in recipe.nodes[n].sources if s in recipe.inputs}
    urls: list[str] = []
    for name in recipe.inputs:
        if name in used:
            urls += [datasets[name].root] if name in datasets else [f.url for f in input_files[name]]
    return urls


# -- helpers --------------------------------------------------------------------------------


def task_runner(run: RunSpec):
    """The Prefect task runner for ``run.executor``. Every runner gives the same output bytes:
    tasks write content-addressed files, and the flow orders results by shard, not by finish."""
    if run.executor == "processes":
        return worker_pool.ForkedWorkerPool(max_workers=run.workers)
    if run.executor == "ray":
        from prefect_ray import RayTaskRunner

        if run.address:
            return RayTaskRunner(address=run.address)
        kill_descendants_on_death()  # the local cluster's agents outlive a killed run otherwise
        return RayTaskRunner(init_kwargs={"num_cpus": run.workers, "include_dashboard": False})
    if run.executor == "dask":
        from prefect_dask import DaskTaskRunner

        if run.address:
            return DaskTaskRunner(address=run.address)
        return DaskTaskRunner(
            cluster_kwargs={"n_workers": run.workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
        )
    return ThreadPoolTaskRunner(max_workers=run.workers)


def slug(name: str) -> str:
    """An artifact key: lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "recipe"


# -- the flow -------------------------------------------------------------------------------


def _scan_inputs(recipe: Recipe, work: Work) -> tuple[dict[str, list[readers.FileScan]], dict[str, list[ShardInput]]]:
    shard_size = recipe.run.shard_size
    files: dict[str, list[readers.FileScan]] = {}
    shards: dict[str, list[ShardInput]] = {}
    for name, spec in recipe.inputs.items():
        resolved = resolve_input(spec)
        urls, fmt = resolved.urls, resolved.format
        if resolved.dataset is not None:
            work.datasets[name] = resolved.dataset
        futures = [
            work.run(scan_task, f"scan {name}: {readers.relative_path(u, resolved.root)}").submit(u, fmt, shard_size)
            for u in urls
        ]
        scans = work.bar.wait(f"scan {name}", futures, unit="files")
        files[name] = scans
        by_url = {s.url: s for s in scans}
        cut = readers.cut_shards(name, fmt, spec.text_field, spec.id_field, resolved.root, scans, shard_size)
        shards[name] = [source_input(s, by_url) for s in cut]
    return files, shards


def _node_inputs(node: NodePlan, shards: dict[str, list[ShardInput]], results: dict[str, NodeResult]) -> list[ShardInput]:
    """The shards a node reads, in `from` order, each marked with the source it came through."""
    return _source_inputs(node.sources, shards, results, node.route)


def _source_inputs(
    sources: list[str],
    shards: dict[str, list[ShardInput]],
    results: dict[str, NodeResult],
    route: Any = None,
) -> list[ShardInput]:
    """The shards of ``sources`` (inputs, nodes, `<node>.rejected`), marked with their origin."""
    inputs: list[ShardInput] = []
    for source in sources:
        if source in shards:
            found = shards[source]
        elif source.endswith(".rejected"):
            upstream = results[source.removesuffix(".rejected")]
            found = [i for outputs in upstream.stages for o in outputs if (i := o.rejected_input()) is not None]
        else:
            found = [o.as_input() for o in results[source].final]
        inputs.extend(dataclasses.replace(i, origin=source, route=route) for i in found)
    return inputs


def _resolve(
    stage: Stage, signatures: list[str], history: int, work: Work, result: NodeResult
) -> execute.Resolution:
    """Phase 2 of a barrier: one resolve task, or partition tasks in parallel and a merge.
    The first ``history`` signature files are those stored with earlier versions."""
    barrier = stage.barrier
    assert barrier is not None
    partitions = barrier.build().partitions()  # type: ignore[attr-defined]
    if partitions <= 1:
        entry = cache_address.resolve_entry(barrier, signatures, history)
        # On a worker, not in the flow run: a resolve holds every document's signature, and
        # the flow run's memory must not grow with the corpus.
        return work.run(resolve_task, f"{stage.node}: {barrier.name} resolve · {len(signatures)} signature files", entry).submit(
            barrier, signatures, entry, work.root, work.reuse, history
        ).result()
    entries = [cache_address.partition_entry(barrier, signatures, p, partitions, history) for p in range(partitions)]
    partials: list[str] = work.bar.wait(
        f"{stage.node}: {barrier.name} resolve",
        [
            work.run(resolve_partition_task, f"{stage.node}: {barrier.name} resolve · partition {p + 1}/{partitions}", entry).submit(
                barrier, signatures, p, partitions, entry, work.root, work.reuse, history
            )
            for p, entry in enumerate(entries)
        ],
        unit="partitions",
    )
    result.use_cache_files(partials)
    entry = cache_address.merge_entry(barrier, partials)
    return work.run(merge_task, f"{stage.node}: {barrier.name} merge · {partitions} partitions", entry).submit(
        barrier, partials, signatures, entry, work.root, work.reuse, history
    ).result()


def _build_indexes(stage: Stage, work: Work, result: NodeResult) -> None:
    """One task per operator index (decontaminate's benchmark n-grams), before the stage's
    shard tasks: built once under its content address, then read by every shard."""
    for ref in operator_hooks.index_refs(stage):
        entry = operator_hooks.index_entry_of(ref)
        path = work.run(index_task, f"{stage.node}: {ref.name} index · {ref.step}", entry)(ref, entry, work.root, work.reuse)
        result.use_cache_files([path])


def _run_stage(stage: Stage, inputs: list[ShardInput], work: Work, result: NodeResult) -> list[StageOutput]:
    decisions: list[str | None] = [None] * len(inputs)
    digests: list[str | None] = [None] * len(inputs)
    labels = [run_view.shard_label(inp.key) for inp in inputs]
    documents = [inp.documents for inp in inputs]
    if stage.barrier is not None:
        barrier = stage.barrier
        signature_entries = [cache_address.signatures_entry(barrier, i) for i in inputs]
        signatures = work.map_batches(
            signatures_batch_task,
            run_view.task_label(stage.node, [barrier.name], "signatures"),
            labels,
            signature_entries,
            lambda task, shards, entry, found: task.submit(
                barrier, Unwalked([inputs[i] for i in shards]), Unwalked([signature_entries[i] for i in shards]),
                Unwalked(found), entry, work.root, work.reuse,
            ),
            documents,
        )
        target = work.history.get(stage.barrier.step)
        earlier = history.earlier_signatures(target) if target is not None else []
        if target is not None:
            result.history.append(history.HistoryUse(target, earlier, signatures))
        resolution = _resolve(stage, earlier + signatures, len(earlier), work, result)
        decisions = list(resolution.paths)
        digests = list(resolution.digests) or [execute.file_digest(p) for p in decisions]
        result.use_cache_files(signatures + decisions)  # packed signatures: their packs
        if resolution.summary is not None:
            result.summaries[stage.barrier.step] = resolution.summary
    _build_indexes(stage, work, result)
    label = run_view.task_label(stage.node, stage.operator_names)
    gpu = stage.resource == Resource.gpu
    entries = [cache_address.stage_entry(stage, inp, digest) for inp, digest in zip(inputs, digests)]
    if gpu and work.gpu_pool is not None:
        return pools.run_on_pool(stage, inputs, decisions, entries, work, label)
    return work.map_batches(
        stage_batch_task,
        label,
        labels,
        entries,
        lambda task, shards, entry, found: task.submit(
            stage, Unwalked([inputs[i] for i in shards]), Unwalked([decisions[i] for i in shards]),
            Unwalked([entries[i] for i in shards]), Unwalked(found), entry, work.root, work.reuse,
        ),
        documents,
        tags=[pools.GPU_TAG] if gpu else [],
    )


def _publish_artifacts(recipe: Recipe, manifests: list[dict[str, Any]], tasks: dict[str, Any]) -> None:
    committed = [m for m in manifests if refresh.committed(m)]
    rows = [step_row(op) for m in committed[:1] for op in m["operators"]]
    key = slug(recipe.name)
    create_table_artifact(
        table=rows, key=f"{key}-operator-counts", description=f"Documents in and out per operator: {recipe.name}"
    )
    contamination = [
        {"step": op["step"], "benchmark": name, **table}
        for m in committed[:1]
        for op in m["operators"]
        if op["operator"] == "decontaminate" and op.get("summary")
        for name, table in op["summary"].items()
    ]
    if contamination:
        create_table_artifact(
            table=contamination, key=f"{key}-contamination",
            description=f"Benchmark contamination (items and documents hit, exact and paraphrase): {recipe.name}",
        )
    lines = [f"# {recipe.name}", ""]
    for m in manifests:
        if not refresh.committed(m):
            lines.append(f"- **{m['dataset']}**: {m['message']}")
            continue
        tokens = f", {m['tokens']:,} tokens" if m.get("tokens") is not None else ""
        lines.append(
            f"- **{m['dataset']}** version `{m['version']}`: {m['rows']} documents{tokens}"
            f" ({m['rejected_rows']} rejected kept), parent `{m['parent']}`"
            + (f"; a snapshot: {m['snapshot']['new_rows']} new, {m['snapshot']['parent_rows']} shared with the parent"
               if (m.get("snapshot") or {}).get("stacked") else "")
        )
        lines += [f"  - {line}" for line in mix_lines(m)]
    lines += [""] + step_table_markdown([op for m in committed[:1] for op in m["operators"]])
    lines += ["", f"## Tasks: {tasks['computed']} computed, {tasks['cached']} reused a stored result (Cached)", ""]
    lines += [f"- computed: {name}" for name in tasks["computed_tasks"][:100]]
    lines += [f"- reused: {name}" for name in tasks.get("reused_tasks", [])[:100]]
    lines += [f"- {line}" for line in retried_lines(tasks)]
    create_markdown_artifact(markdown="\n".join(lines), key=f"{key}-summary", description=f"Run summary: {recipe.name}")


@flow(name="recipeflow-run", persist_result=False, log_prints=True)
def recipe_flow(recipe: Recipe, as_written: dict[str, Any], progress: bool = True) -> list[dict[str, Any]]:
    """Run a recipe: scan inputs, cut shards, run every stage, commit one version per output.

    ``recipe`` is validated once by the caller, its local paths made absolute
    (:func:`recipeflow.recipe.paths.with_absolute_paths`); ``as_written`` is
    ``Recipe.resolved()`` of the recipe before that, what manifests record and compare.

    The run's tags (recipe, outputs, trigger) are the flow run's; its task runs carry only
    their own (the GPU tag). Prefect asks the server for a concurrency slot of every tag a task
    run carries before it starts, each a round trip that waited 2 s and more for a busy server
    on a loaded machine, between every two tasks of a worker.
    """
    with TagsContext(current_tags=set()):
        return _run_recipe(recipe, as_written, progress)


def _run_recipe(recipe: Recipe, as_written: dict[str, Any], progress: bool) -> list[dict[str, Any]]:
    logger = get_run_logger()
    credentials.configure_credentials()
    plan: Plan = plan_recipe(recipe)
    logger.info("plan:\n%s", plan.describe())
    roots = [o.path for o in recipe.outputs.values()] + [t.output.path for t in recipe.train.values()]
    work_root = storage.join(roots[0], CACHE_DIR)  # the stage cache lives beside the first output

    work = Work(
        root=work_root,
        reuse=recipe.run.cache,
        bar=ProgressBar.start(progress),
        history=history.history_targets(recipe, plan),
        gpu_pool=recipe.run.pools.gpu,
        tasks_per_stage=batches.tasks_per_stage(recipe.run),
    )
    if any(s.resource == Resource.gpu for s in plan.stages):
        limit = pools.set_gpu_limit(recipe.run.gpu_concurrency, replace=False)
        logger.info("GPU tasks (tag %s) are limited to %d at once", pools.GPU_TAG, limit)
        if work.gpu_pool is not None:
            pools.ensure_stage_deployment(work.gpu_pool)
    try:
        input_files, shards = _scan_inputs(recipe, work)
        unchanged = refresh.unchanged_outputs(recipe, as_written, plan, input_files, work.datasets)
        for record in unchanged.values():
            logger.info(record["message"])
        results: dict[str, NodeResult] = {}
        # Nothing to commit (and no model to train): no stage needs to run.
        for node in plan.nodes if len(unchanged) < len(recipe.outputs) or recipe.train else []:
            result = NodeResult(plan=node)
            inputs = _node_inputs(node, shards, results)
            for stage in node.stages:
                outputs = _run_stage(stage, inputs, work, result)
                result.stages.append(outputs)
                inputs = [o.as_input() for o in outputs]
            results[node.name] = result
    finally:
        work.bar.stop()
    read = unreadable.summarize([o for r in results.values() for outputs in r.stages[:1] for o in outputs])
    for name, row in read.items():
        if row["unreadable"]:
            logger.warning("input %s: %d of %d records unreadable (%s)", name, row["unreadable"], row["records"],
                           "; ".join(f"{n}× {reason}" for reason, n in row["top_reasons"]))
    unreadable.check_readable(recipe, read)  # a configuration error: stop before committing
    for node in recipe.outputs:
        if node not in unchanged and (record := refresh.nothing_new(recipe, node, results)) is not None:
            logger.info(record["message"])
            unchanged[node] = record

    tasks = work.tally()
    tasks["retried"] = attempts.retried(work_root, str(flow_run.get_id())) if flow_run.get_id() else []
    for note in tasks["retried"]:
        logger.warning("task %r started %d times: its worker was lost in the middle of it, or it raised and was retried",
                       note["task"], note["attempts"])
    run_info = {
        "cache_root": work_root,
        "recipe_name": recipe.name,
        "recipe_sha256": resolved_sha256(as_written),
        "recipe_resolved": as_written,
        "unreadable": read,
        "run": {
            "executor": recipe.run.executor,
            "workers": recipe.run.workers,
            "shard_size": recipe.run.shard_size,
            "cache": recipe.run.cache,
            "flow_run_id": str(flow_run.get_id()) if flow_run.get_id() else None,
            "prefect_version": prefect.__version__,
            "tasks": tasks,
        },
    }
    manifests = [
        {**unchanged[node], "run": run_info["run"]}
        if node in unchanged
        else commit_as_asset(
            f"commit {node}",
            _upstream_urls(recipe, node, input_files, work.datasets),
            recipe=recipe,
            plan=plan,
            node=node,
            output=output,
            results=results,
            input_files=input_files,
            input_datasets=work.datasets,
            run_info=run_info,
        )
        for node, output in recipe.outputs.items()
    ]
    models = [
        _train_head(recipe, name, spec, _source_inputs(list(spec.graded), shards, results), run_info)
        if isinstance(spec, HeadTrainSpec)
        else train_task.with_options(task_run_name=f"train {name}")(
            name,
            spec,
            _source_inputs(list(spec.positive), shards, results),
            _source_inputs(list(spec.negative), shards, results),
            run_info,
        )
        for name, spec in recipe.train.items()
    ]
    _publish_artifacts(recipe, manifests, run_info["run"]["tasks"])
    run_view.rename_run(run_view.final_name(recipe, manifests))
    return manifests + models


def _train_head(
    recipe: Recipe, name: str, spec: HeadTrainSpec, graded: list[ShardInput], run_info: dict[str, Any]
) -> dict[str, Any]:
    """Train a head on the graded documents, over the encoder the recipe's `embed` used."""
    from recipeflow.engine.head_training import with_encoder  # numpy and the encoder's files

    return train_head_task.with_options(task_run_name=f"train {name}")(
        name, with_encoder(recipe, spec), graded, run_info
    )
