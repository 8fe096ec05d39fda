"""The Prefect flow: one flow run per recipe run, one task per (stage, shard).

The work itself lives in :mod:`recipeflow.flows.execute` and :mod:`recipeflow.flows.commit`;
this module schedules it, shows progress and publishes artifacts.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import prefect
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import flow_run
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from recipeflow.flows import execute, history, pools, readers, refresh, storage
from recipeflow.flows.commit import NodeResult
from recipeflow.flows.publish import commit_as_asset
from recipeflow.flows.execute import ShardInput, StageOutput
from recipeflow.flows.history import HistoryTarget
from recipeflow.flows.inputs import resolve_input
from recipeflow.flows.planner import NodePlan, OpRef, Plan, Stage, plan_recipe, stable_hash
from recipeflow.flows.recipe import Recipe, RunSpec, TrainSpec, parse_recipe
from recipeflow.operators.base import Resource

CACHE_DIR = "cache"


# -- tasks: thin wrappers, so the UI shows each unit of work ---------------------------------


def _cache_key(phase: str, address: Callable[[dict[str, Any]], str]):
    """A Prefect cache key from the work's content address and where its result lives, so a
    re-run shows finished work as Cached in the UI (the stored result is a small reference)."""

    def key(_context: Any, parameters: dict[str, Any]) -> str:
        return f"recipeflow-{phase}-" + stable_hash([address(parameters), parameters["work_root"]])

    return key


def _scan_key(_context: Any, parameters: dict[str, Any]) -> str:
    """An unchanged file (same size and modification time or ETag) is not scanned again."""
    fs, path = storage.filesystem(parameters["url"])
    info = fs.info(path)
    stamp = [info.get(k) for k in ("size", "mtime", "ETag", "etag", "LastModified", "last_modified")]
    return "recipeflow-scan-" + stable_hash(
        [parameters["url"], parameters["fmt"], parameters["shard_size"], readers.__name__, stamp]
    )


# Results are persisted (small references) so re-runs show Cached; a transient storage error
# is retried: every task writes under a content address, so running it again is safe.
_CACHED = {"persist_result": True, "retries": 2, "retry_delay_seconds": 2}


@task(name="scan-input", cache_key_fn=_scan_key, **_CACHED)
def scan_task(url: str, fmt: str, shard_size: int) -> readers.FileScan:
    storage.configure_credentials()
    return readers.scan_file(url, fmt, shard_size)


@task(
    name="stage",
    cache_key_fn=_cache_key(
        "stage", lambda p: execute.stage_address(p["stage"], p["inp"], p["decision_digest"])
    ),
    **_CACHED,
)
def stage_task(
    stage: Stage,
    inp: ShardInput,
    decision: str | None,
    work_root: str,
    reuse: bool = True,
    decision_digest: str | None = None,
) -> StageOutput:
    storage.configure_credentials()
    return execute.run_stage(stage, inp, decision, work_root, reuse, decision_digest)


@task(
    name="signatures",
    cache_key_fn=_cache_key("signatures", lambda p: execute.signatures_address(p["barrier"], p["inp"])),
    **_CACHED,
)
def signatures_task(barrier: OpRef, inp: ShardInput, work_root: str, reuse: bool = True) -> str:
    storage.configure_credentials()
    return execute.compute_signatures(barrier, inp, work_root, reuse)


@task(
    name="resolve",
    cache_key_fn=_cache_key(
        "resolve", lambda p: execute.resolve_address(p["barrier"], p["signature_paths"], p["history"])
    ),
    **_CACHED,
)
def resolve_task(
    barrier: OpRef, signature_paths: list[str], work_root: str, reuse: bool = True, history: int = 0
) -> execute.Resolution:
    storage.configure_credentials()
    return execute.resolve_barrier(barrier, signature_paths, work_root, reuse, history)


@task(
    name="resolve-partition",
    cache_key_fn=_cache_key(
        "partition",
        lambda p: execute.partition_address(
            p["barrier"], p["signature_paths"], p["partition"], p["partitions"], p["history"]
        ),
    ),
    **_CACHED,
)
def resolve_partition_task(
    barrier: OpRef,
    signature_paths: list[str],
    partition: int,
    partitions: int,
    work_root: str,
    reuse: bool = True,
    history: int = 0,
) -> str:
    storage.configure_credentials()
    return execute.resolve_partition(barrier, signature_paths, partition, partitions, work_root, reuse, history)


@task(
    name="merge-partitions",
    cache_key_fn=_cache_key("merge", lambda p: execute.merge_address(p["barrier"], p["partial_paths"])),
    **_CACHED,
)
def merge_task(
    barrier: OpRef,
    partial_paths: list[str],
    signature_paths: list[str],
    work_root: str,
    reuse: bool = True,
    history: int = 0,
) -> execute.Resolution:
    storage.configure_credentials()
    return execute.merge_partitions(barrier, partial_paths, signature_paths, work_root, reuse, history)


@task(name="train")
def train_task(name: str, spec: TrainSpec, positives: list[ShardInput], negatives: list[ShardInput], run_info: dict[str, Any]) -> dict[str, Any]:
    storage.configure_credentials()
    from recipeflow.flows.train import train_and_commit

    return train_and_commit(name, spec, positives, negatives, run_info)


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
        return ProcessPoolTaskRunner(max_workers=run.workers)
    if run.executor == "ray":
        from prefect_ray import RayTaskRunner

        if run.address:
            return RayTaskRunner(address=run.address)
        return RayTaskRunner(init_kwargs={"num_cpus": run.workers, "include_dashboard": False})
    if run.executor == "dask":
        from prefect_dask import DaskTaskRunner

        if run.address:
            return DaskTaskRunner(address=run.address)
        return DaskTaskRunner(
            cluster_kwargs={"n_workers": run.workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
        )
    return ThreadPoolTaskRunner(max_workers=run.workers)


def with_absolute_paths(recipe: Recipe, base_dir: str) -> Recipe:
    """A copy of ``recipe`` whose local input and output paths are absolute (from ``base_dir``)."""

    def resolve(path: str) -> str:
        if storage.is_local(path) and not os.path.isabs(os.path.expanduser(path)):
            path = os.path.join(base_dir, path)
        return storage.absolute(path)

    inputs = {n: s.model_copy(update={"path": resolve(s.path)}) for n, s in recipe.inputs.items()}
    outputs = {n: s.model_copy(update={"path": resolve(s.path)}) for n, s in recipe.outputs.items()}
    train = {
        n: t.model_copy(update={"output": t.output.model_copy(update={"path": resolve(t.output.path)})})
        for n, t in recipe.train.items()
    }
    return recipe.model_copy(update={"inputs": inputs, "outputs": outputs, "train": train})


def slug(name: str) -> str:
    """An artifact key: lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "recipe"


@dataclass
class ProgressBar:
    """A progress bar on the terminal, one line per stage."""

    progress: Progress | None

    @classmethod
    def start(cls, enabled: bool) -> "ProgressBar":
        if not enabled:
            return cls(None)
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        progress.start()
        return cls(progress)

    def wait(self, label: str, futures: Sequence[PrefectFuture]) -> list[Any]:
        """Results of ``futures`` in submission order, advancing the bar as each finishes."""
        bar = self.progress.add_task(label, total=len(futures)) if self.progress else None
        for future in as_completed(list(futures)):
            future.result()  # raises at once if a task failed
            if self.progress is not None and bar is not None:
                self.progress.advance(bar)
        return [f.result() for f in futures]

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()


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
            work.run(scan_task, f"scan {name}:{os.path.basename(u)}").submit(u, fmt, shard_size)
            for u in urls
        ]
        scans = work.bar.wait(f"scan {name}", futures)
        files[name] = scans
        by_url = {s.url: s for s in scans}
        cut = readers.cut_shards(name, fmt, spec.text_field, spec.id_field, resolved.root, scans, shard_size)
        shards[name] = [execute.source_input(s, by_url) for s in cut]
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


@dataclass
class Work:
    """Where this run's task results live, whether finished work may be reused, the progress bar."""

    root: str
    reuse: bool
    bar: ProgressBar
    datasets: dict[str, Any] = dataclasses.field(default_factory=dict)  # input name -> DatasetInput
    history: dict[str, HistoryTarget] = dataclasses.field(default_factory=dict)  # by barrier step
    reused: dict[str, bool] = dataclasses.field(default_factory=dict)  # task name -> result existed
    gpu_pool: str | None = None  # GPU stages run as flow runs there (run.pools.gpu)

    def stored(self, name: str, entry: str) -> bool:
        """Whether the work's result (cache ``entry``: ``<kind>/<address>``) exists; noted, so
        the run can say which tasks computed and which reused a result."""
        done = self.reuse and storage.exists(storage.join(self.root, entry, execute.RESULT))
        self.reused[name] = done
        return done

    def run(self, task_fn: Any, name: str, entry: str | None = None) -> Any:
        """``task_fn`` named for the UI. Prefect's cached result is used only when reuse is on
        and the work's stored result still exists — ``recipeflow cache gc`` may have removed it."""
        refresh = not self.reuse or (entry is not None and not self.stored(name, entry))
        return task_fn.with_options(task_run_name=name, refresh_cache=refresh)

    def tally(self) -> dict[str, Any]:
        """Tasks that did their work in this run, and how many reused a stored result."""
        computed = [name for name, done in self.reused.items() if not done]
        return {"computed": len(computed), "cached": len(self.reused) - len(computed), "computed_tasks": computed}


def _resolve(
    stage: Stage, signatures: list[str], history: int, work: Work, result: NodeResult
) -> execute.Resolution:
    """Phase 2 of a barrier: one resolve task, or partition tasks in parallel and a merge.
    The first ``history`` signature files are those stored with earlier versions."""
    barrier = stage.barrier
    assert barrier is not None
    partitions = barrier.build().partitions()  # type: ignore[attr-defined]
    if partitions <= 1:
        entry = f"decisions/{execute.resolve_address(barrier, signatures, history)}"
        return work.run(resolve_task, f"{stage.id} resolve {barrier.name}", entry)(
            barrier, signatures, work.root, work.reuse, history
        )
    partials: list[str] = work.bar.wait(
        f"{stage.id} {barrier.name}: partitions",
        [
            work.run(
                resolve_partition_task,
                f"{stage.id} {barrier.name} partition {p}/{partitions}",
                f"partitions/{execute.partition_address(barrier, signatures, p, partitions, history)}",
            ).submit(
                barrier, signatures, p, partitions, work.root, work.reuse, history
            )
            for p in range(partitions)
        ],
    )
    result.use_cache_files(partials)
    entry = f"decisions/{execute.merge_address(barrier, partials)}"
    return work.run(merge_task, f"{stage.id} merge {barrier.name}", entry)(
        barrier, partials, signatures, work.root, work.reuse, history
    )


def _run_stage(stage: Stage, inputs: list[ShardInput], work: Work, result: NodeResult) -> list[StageOutput]:
    decisions: list[str | None] = [None] * len(inputs)
    digests: list[str | None] = [None] * len(inputs)
    if stage.barrier is not None:
        signatures = work.bar.wait(
            f"{stage.id} {stage.barrier.name}: signatures",
            [
                work.run(
                    signatures_task,
                    f"{stage.id} signatures {i.key}",
                    f"signatures/{execute.signatures_address(stage.barrier, i)}",
                ).submit(
                    stage.barrier, i, work.root, work.reuse
                )
                for i in inputs
            ],
        )
        target = work.history.get(stage.barrier.step)
        earlier = history.earlier_signatures(target) if target is not None else []
        if target is not None:
            result.history.append(history.HistoryUse(target, earlier, signatures))
        resolution = _resolve(stage, earlier + signatures, len(earlier), work, result)
        decisions = list(resolution.paths)
        digests = list(resolution.digests) or [execute.file_digest(p) for p in decisions]
        result.use_cache_files(signatures + decisions)
        if resolution.summary is not None:
            result.summaries[stage.barrier.step] = resolution.summary
    label = f"{stage.id} {' → '.join(stage.operator_names) or 'pass'}"
    gpu = stage.resource == Resource.gpu
    if gpu and work.gpu_pool is not None:
        return pools.run_on_pool(stage, inputs, decisions, digests, work, label)
    futures = [
        work.run(
            stage_task, f"{stage.id} {inp.key}", f"stages/{execute.stage_address(stage, inp, digest)}"
        ).with_options(tags=[pools.GPU_TAG] if gpu else [])
        .submit(stage, inp, decision, work.root, work.reuse, digest)
        for inp, decision, digest in zip(inputs, decisions, digests)
    ]
    return work.bar.wait(label, futures)


def _publish_artifacts(recipe: Recipe, manifests: list[dict[str, Any]], tasks: dict[str, Any]) -> None:
    committed = [m for m in manifests if refresh.committed(m)]
    rows = [
        {k: op.get(k) for k in ("node", "step", "operator", "docs_in", "docs_out", "rejected")}
        for m in committed[:1]
        for op in m["operators"]
    ]
    key = slug(recipe.name)
    create_table_artifact(
        table=rows, key=f"{key}-operator-counts", description=f"Documents in and out per operator: {recipe.name}"
    )
    lines = [f"# {recipe.name}", ""]
    for m in manifests:
        if not refresh.committed(m):
            lines.append(f"- **{m['dataset']}**: {m['message']}")
            continue
        lines.append(
            f"- **{m['dataset']}** version `{m['version']}`: {m['rows']} documents"
            f" ({m['rejected_rows']} rejected kept), parent `{m['parent']}`"
        )
    lines += ["", f"Tasks: {tasks['computed']} computed, {tasks['cached']} reused a stored result (Cached)."]
    lines += [f"- computed: {name}" for name in tasks["computed_tasks"][:200]]
    lines += ["", "| step | operator | in | out | rejected |", "|---|---|---:|---:|---:|"]
    lines += [f"| {r['step']} | {r['operator']} | {r['docs_in']} | {r['docs_out']} | {r['rejected']} |" for r in rows]
    create_markdown_artifact(markdown="\n".join(lines), key=f"{key}-summary", description=f"Run summary: {recipe.name}")


@flow(name="recipeflow-run", persist_result=False, log_prints=True)
def recipe_flow(
    recipe_data: dict[str, Any],
    recipe_source: str | None = None,
    base_dir: str = ".",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run a recipe: scan inputs, cut shards, run every stage, commit one version per output."""
    logger = get_run_logger()
    storage.configure_credentials()
    written = parse_recipe(recipe_data, source=recipe_source or "<recipe>")
    recipe = with_absolute_paths(written, base_dir)
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
    )
    if any(s.resource == Resource.gpu for s in plan.stages):
        limit = pools.set_gpu_limit(recipe.run.gpu_concurrency, replace=False)
        logger.info("GPU tasks (tag %s) are limited to %d at once", pools.GPU_TAG, limit)
        if work.gpu_pool is not None:
            pools.ensure_stage_deployment(work.gpu_pool)
    try:
        input_files, shards = _scan_inputs(recipe, work)
        unchanged = refresh.unchanged_outputs(recipe, written.resolved(), plan, input_files, work.datasets)
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
    for node in recipe.outputs:
        if node not in unchanged and (record := refresh.nothing_new(recipe, node, results)) is not None:
            logger.info(record["message"])
            unchanged[node] = record

    run_info = {
        "cache_root": work_root,
        "recipe_name": written.name,
        "recipe_sha256": written.sha256(),
        "recipe_resolved": written.resolved(),
        "run": {
            "executor": recipe.run.executor,
            "workers": recipe.run.workers,
            "shard_size": recipe.run.shard_size,
            "cache": recipe.run.cache,
            "flow_run_id": str(flow_run.get_id()) if flow_run.get_id() else None,
            "prefect_version": prefect.__version__,
            "tasks": work.tally(),
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
        train_task.with_options(task_run_name=f"train {name}")(
            name,
            spec,
            _source_inputs(list(spec.positive), shards, results),
            _source_inputs(list(spec.negative), shards, results),
            run_info,
        )
        for name, spec in recipe.train.items()
    ]
    _publish_artifacts(recipe, manifests, run_info["run"]["tasks"])
    return manifests + models
