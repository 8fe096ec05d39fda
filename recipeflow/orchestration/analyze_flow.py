"""The ``recipeflow-analyze`` flow: annotate tasks per shard, the summaries, the report and
the artifacts; :func:`analyze_recipe` is what the command line calls."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from typing import Sequence

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from recipeflow.analyze import report as analyze_report
from recipeflow.io import readers
from recipeflow.engine.shard_input import ShardInput
from recipeflow.orchestration.flow import slug, task_runner
from recipeflow.orchestration.tasks import scan_task
from recipeflow.orchestration.progress import ProgressBar
from recipeflow.recipe.paths import with_absolute_paths
from recipeflow.engine.planner import OpRef
from recipeflow.orchestration.prefect_server import prefect_api
from recipeflow.recipe.models import REJECTED_SUFFIX, InputSpec, Recipe, RouteSpec
from recipeflow.recipe.loading import load_recipe
from recipeflow.analyze.analysis import NodeWork, analysis_shard_size, check_inputs, nodes_to_annotate, result_for_stream, shard_folder, summarise_node
from recipeflow.analyze.annotate import annotate_shard
from recipeflow.analyze.model import Analysis, AnalyzeError, DEFAULT_SAMPLE, NodeAnalysis, SampleInput, ShardAnalysis
from recipeflow.analyze.sampling import InputFiles, MoreFiles, walk_sample


# ---------------------------------------------------------------------------------------------
# The Prefect flow


# Results point into a temporary folder removed after the run: never cache them.
@task(name="analyze-shard", cache_policy=NO_CACHE)
def annotate_task(
    refs: tuple[OpRef, ...], inp: ShardInput, limit: int | None, folder: str, keep_streams: bool
) -> ShardAnalysis:
    return annotate_shard(refs, inp, limit, folder, keep_streams)


def open_input(name: str, spec: InputSpec) -> InputFiles:
    urls = readers.expand_input(spec.path)
    return InputFiles(name, spec, spec.format or readers.infer_format(urls[0]), urls)


def _scan_more(files: InputFiles, need: int | None, shard_size: int, workers: int, bar: ProgressBar) -> None:
    """Scan the next files of an input, ``workers`` at a time, until they hold ``need`` more
    records (every remaining file when None)."""
    target = None if need is None else files.records + need
    while not files.complete and (target is None or files.records < target):
        group = files.urls[len(files.scans) : len(files.scans) + (len(files.urls) if target is None else workers)]
        files.scans += bar.wait(
            f"scan {files.name}",
            [
                scan_task.with_options(task_run_name=f"scan {files.name}:{os.path.basename(u)}").submit(
                    u, files.format, shard_size
                )
                for u in group
            ],
            unit="files",
        )


@dataclass
class SampleSources:
    """What nodes read: the recipe's inputs (scanned on demand) and earlier nodes' streams."""

    inputs: dict[str, InputFiles]
    streams: dict[str, list[SampleInput]]
    shard_size: int
    workers: int

    def entries(self, sources: Sequence[str], route: RouteSpec | None) -> list[SampleInput | MoreFiles]:
        """A node's shards: the union of its sources in order, each marked with the source it
        is read through and the node's route, as a run marks them."""
        entries: list[SampleInput | MoreFiles] = []
        for source in sources:
            found = self.inputs[source].entries(self.shard_size) if source in self.inputs else self.streams.get(source, [])
            entries += [
                e if isinstance(e, MoreFiles) else replace(e, shard=replace(e.shard, origin=source, route=route))
                for e in found
            ]
        return entries


def _annotate_node(work: NodeWork, sources: SampleSources, sample: int | None, work_root: str, bar: ProgressBar) -> list[ShardAnalysis]:
    """Annotate the node's sample: rounds of tasks (and scans) until the walk is settled."""
    done: dict[str, ShardAnalysis] = {}
    while True:
        entries = sources.entries(work.sources, work.route)
        walk = walk_sample(entries, sample, done)
        if walk.todo:
            shards = {e.shard.key: e.shard for e in entries if isinstance(e, SampleInput)}
            futures = [
                annotate_task.with_options(task_run_name=f"analyze {work.name} {key}").submit(
                    work.refs, shards[key], limit, shard_folder(work_root, work.name, shards[key], limit),
                    work.keep_streams,
                )
                for key, limit in walk.todo
            ]
            sizes = [shards[key].documents if limit is None else min(limit, shards[key].documents)
                     for key, limit in walk.todo]
            analyzed = bar.wait(f"analyze {work.name}", futures, sizes, unit="documents")
            for (key, _limit), result in zip(walk.todo, analyzed):
                done[key] = result
        elif walk.scan_more is not None:
            missing = None if sample is None else sample - sum(done[k].docs for k in walk.included)
            _scan_more(sources.inputs[walk.scan_more], missing, sources.shard_size, sources.workers, bar)
        else:
            return [done[key] for key in walk.included]


def _publish_artifacts(analysis: Analysis) -> None:
    key = slug(analysis.recipe)
    create_table_artifact(
        table=analyze_report.table_rows(analysis),
        key=f"{key}-analyze-table",
        description=f"Statistics and what each threshold drops: {analysis.recipe}",
    )
    create_markdown_artifact(
        markdown=analyze_report.render_markdown(analysis),
        key=f"{key}-analyze-report",
        description=f"Filter analysis: {analysis.recipe}",
    )


@flow(name="recipeflow-analyze", persist_result=False, log_prints=True)
def analyze_flow(recipe: Recipe, sample: int = DEFAULT_SAMPLE, progress: bool = True) -> Analysis:
    """Annotate the first ``sample`` documents (0: all) with every filter; publish the report.
    ``recipe``: validated once by the caller, local paths absolute."""
    logger = get_run_logger()
    limit = sample or None
    works, skipped = nodes_to_annotate(recipe)
    read_inputs = {s for w in works for s in w.sources if s in recipe.inputs}
    sources = SampleSources(
        inputs={n: open_input(n, spec) for n, spec in recipe.inputs.items() if n in read_inputs},
        streams={},
        shard_size=analysis_shard_size(recipe, limit),
        workers=recipe.run.workers,
    )
    work_root = tempfile.mkdtemp(prefix="recipeflow-analyze-")
    bar = ProgressBar.start(progress)
    nodes: list[NodeAnalysis] = []
    try:
        for files in sources.inputs.values():  # one scan round covers the sample, usually
            _scan_more(files, limit, sources.shard_size, sources.workers, bar)
        for work in works:
            shards = _annotate_node(work, sources, limit, work_root, bar)
            nodes.append(summarise_node(work.name, list(work.sources), work.refs, shards))
            for stream, suffix in (("kept", ""), ("rejected", REJECTED_SUFFIX)):
                sources.streams[work.name + suffix] = [
                    s for shard in shards if (s := result_for_stream(shard, stream, work.name))
                ]
    finally:
        bar.stop()
        shutil.rmtree(work_root, ignore_errors=True)
    run_id = flow_run.get_id()
    analysis = Analysis(recipe.name, sample, nodes, skipped, str(run_id) if run_id else None)
    _publish_artifacts(analysis)
    logger.info(
        "analysed %s: %s", recipe.name,
        "; ".join(f"node {n.name}: {n.documents} documents, {n.kept_in_sequence} kept" for n in nodes),
    )
    return analysis


# ---------------------------------------------------------------------------------------------
# Running it from the command line (embedded Prefect, as `recipeflow run` does)


@dataclass
class AnalyzeResult:
    analysis: Analysis
    report: str  # where the HTML report was written


def default_report_path(recipe: Recipe) -> str:
    return os.path.abspath(f"analyze-{recipe.name}.html")


def _check_report_path(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        raise AnalyzeError(f"--report {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise AnalyzeError(f"--report {path}: cannot write in {folder}")


def analyze_recipe(
    path: str,
    overrides: Sequence[str] = (),
    *,
    sample: int = DEFAULT_SAMPLE,
    report: str | None = None,
    progress: bool = True,
    base_dir: str | None = None,
) -> AnalyzeResult:
    """Analyse the recipe at ``path`` in one Prefect flow run; write the HTML report."""
    if sample < 0:
        raise AnalyzeError(f"--sample must be 0 (all documents) or more, got {sample}")
    recipe = with_absolute_paths(load_recipe(path, overrides), base_dir)
    check_inputs(recipe)
    report = os.path.abspath(report) if report else default_report_path(recipe)
    _check_report_path(report)
    configured = analyze_flow.with_options(
        task_runner=task_runner(recipe.run), flow_run_name=f"analyze {recipe.name}"
    )
    with prefect_api():
        analysis = configured(recipe=recipe, sample=sample, progress=progress)
    with open(report, "w", encoding="utf-8") as f:
        f.write(analyze_report.render_html(analysis))
    return AnalyzeResult(analysis, report)
