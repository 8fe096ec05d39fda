"""The ``recipeflow`` command line.

One module because it is the table of contents of every command: each parses its options,
calls one function of the layers below and prints, so splitting it would scatter that list."""

from __future__ import annotations

import json
import os
import sys
from typing import NoReturn

import click

# Prefect's server must not phone home; set before Prefect is imported anywhere.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _echo_lines(lines: list[str]) -> None:
    for line in lines:
        click.echo(line)


@click.group()
@click.version_option(package_name="recipeflow")
def main() -> None:
    """recipeflow: declarative data recipes for LLM training corpora, run as Prefect flows."""


overrides_option = click.option(
    "--set", "overrides", multiple=True, metavar="PATH=VALUE",
    help="Override a recipe field, e.g. --set run.workers=4 (repeatable).",
)


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@overrides_option
@click.option("--no-progress", is_flag=True, help="Do not draw a progress bar.")
def run(recipe: str, overrides: tuple[str, ...], no_progress: bool) -> None:
    """Run RECIPE and commit a new version of each output dataset (none for an output whose
    inputs, recipe and operators did not change since its latest version)."""
    if not no_progress:
        # One line per finished task would scroll the progress bar away; the UI still has them.
        os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "WARNING")
    from recipeflow.recipe.errors import RecipeInvalid
    from recipeflow.engine.unreadable import InputUnreadable
    from recipeflow.orchestration.kept_server import ServerSettingInvalid
    from recipeflow.orchestration.runner import RunRefused, run_recipe

    embedded = not os.environ.get("PREFECT_API_URL")
    try:
        manifests = run_recipe(recipe, overrides, progress=not no_progress)
    except (RecipeInvalid, RunRefused, InputUnreadable, ServerSettingInvalid) as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    from recipeflow.datasets.run_summary import result_lines

    _echo_lines(result_lines(manifests))
    if embedded:
        from recipeflow.orchestration.prefect_server import closing_note

        click.echo(f"\n{closing_note()}")


schedule_options = [
    click.option("--cron", default=None, metavar="EXPR", help="Cron schedule, e.g. '0 2 * * *' (02:00 daily)."),
    click.option("--interval", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
                 help="Run every SECONDS seconds."),
    click.option("--timezone", default=None, metavar="TZ", help="IANA timezone of the schedule [default: UTC]."),
]


def _with_schedule_options(command):
    for option in reversed(schedule_options):
        command = option(command)
    return command


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--name", required=True, help="Deployment name (recipeflow-deployment/NAME); an existing one is updated.")
@_with_schedule_options
@click.option("--pool", default=None, help="Work pool of its runs [default: run.pools.cpu, else cpu]; created (process) if missing.")
@overrides_option
def deploy(recipe: str, name: str, cron: str | None, interval: float | None, timezone: str | None,
           pool: str | None, overrides: tuple[str, ...]) -> None:
    """Create or update a Prefect deployment of RECIPE with its schedule, run by a worker.

    Each run is a refresh: only new or changed input files are computed, a version is committed
    whose parent is the previous one, and nothing is committed when nothing changed. Needs a
    Prefect server (PREFECT_API_URL) and a worker: `prefect worker start --pool POOL`.
    """
    from recipeflow.recipe.errors import RecipeInvalid

    if not os.environ.get("PREFECT_API_URL"):
        _fail("recipeflow deploy needs a Prefect server for its deployment: set PREFECT_API_URL "
              "(e.g. http://127.0.0.1:4200/api after `prefect server start`), or use `recipeflow serve`")
    from recipeflow.orchestration.deploy import DeployError, deploy_recipe

    try:
        done = deploy_recipe(recipe, overrides, name=name, cron=cron, interval=interval, timezone=timezone, pool=pool)
    except (RecipeInvalid, DeployError) as exc:
        _fail(str(exc))
    for created in done.created_pools:
        click.echo(f"created work pool {created!r} (process)")
    click.echo(f"deployment {done.name} ({done.deployment_id}) on work pool {done.pool!r}: {done.schedule}")
    if done.gpu_pool:
        click.echo(f"GPU stages run as flow runs of recipeflow-stage/{done.gpu_pool} on work pool {done.gpu_pool!r}")
    if done.gpu_limit is not None:
        click.echo(f"GPU tasks (tag recipeflow-gpu) limited to {done.gpu_limit} at once")
    for note in done.notes:
        click.echo(f"note: {note}")
    click.echo(f"start a worker: prefect worker start --pool {done.pool}")
    click.echo(f"run it now:     prefect deployment run '{done.name}'")


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@_with_schedule_options
@click.option("--name", default=None, help="Deployment name [default: the recipe's name].")
@overrides_option
def serve(recipe: str, cron: str | None, interval: float | None, timezone: str | None, name: str | None,
          overrides: tuple[str, ...]) -> None:
    """Run RECIPE on a schedule in this process (no work pool, no worker) until Ctrl-C.

    Uses PREFECT_API_URL's server, or starts a local `prefect server` (UI included) for as long
    as it runs.
    """
    from recipeflow.recipe.errors import RecipeInvalid

    from recipeflow.orchestration.deploy import DeployError, serve_recipe

    try:
        serve_recipe(recipe, overrides, name=name, cron=cron, interval=interval, timezone=timezone,
                     announce=lambda line: click.echo(line))
    except (RecipeInvalid, DeployError) as exc:
        _fail(str(exc))


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@overrides_option
@click.option("--check-inputs", is_flag=True,
              help="Also read the first records of each input, as a run would, and report records it cannot read.")
def validate(recipe: str, overrides: tuple[str, ...], check_inputs: bool) -> None:
    """Check RECIPE without running it; list every error."""
    from recipeflow.engine import operator_hooks  # noqa: F401  (benchmark sets may be datasets)
    from recipeflow.engine.planner import plan_recipe
    from recipeflow.engine.unreadable import InputUnreadable, check_readable, probe
    from recipeflow.recipe.errors import RecipeInvalid
    from recipeflow.recipe.loading import load_recipe
    from recipeflow.recipe.model_files import check_models
    from recipeflow.recipe.paths import with_absolute_paths
    from recipeflow.engine.token_reach import check_budgets

    try:
        parsed = load_recipe(recipe, overrides)
        check_models(with_absolute_paths(parsed))  # every model file it will load is there
        if check_inputs:
            runnable = with_absolute_paths(parsed)
            read = probe(runnable)
            for name, row in read.items():
                reasons = "; ".join(f"{n}× {reason}" for reason, n in row["top_reasons"])
                click.echo(f"input {name}: {row['records'] - row['unreadable']} of the first {row['records']} "
                           f"records readable" + (f" (unreadable: {reasons})" if reasons else ""))
            check_readable(runnable, read)
            check_budgets(runnable)
    except (RecipeInvalid, InputUnreadable) as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    except (OSError, ValueError) as exc:  # an input path that names nothing, an unknown format
        click.echo(f"{recipe}: inputs: {exc}", err=True)
        sys.exit(1)
    click.echo(f"{recipe}: valid")
    click.echo(plan_recipe(parsed).describe())


@main.command()
def schema() -> None:
    """Print the JSON Schema of recipes (operator parameters included), for editors."""
    from recipeflow.recipe.schema import recipe_json_schema

    _echo_json(recipe_json_schema())


@main.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--datajuicer", is_flag=True,
              help="List the Data-Juicer operators recipeflow runs, and Data-Juicer's 30 most used text operators.")
def ops(name: str | None, as_json: bool, datajuicer: bool) -> None:
    """List operators, or show one operator's parameters."""
    from recipeflow.recipe.operator_docs import describe_operator, list_operators
    from recipeflow.operators.registry import UnknownOperator

    if datajuicer:
        _datajuicer_ops(as_json)
        return
    if name is None:
        rows = list_operators()
        if as_json:
            _echo_json(rows)
            return
        for r in rows:
            click.echo(f"{r['name']:<28} {r['kind']:<13} {r['resource']:<4} {r['summary']}")
        return
    try:
        info = describe_operator(name)
    except UnknownOperator as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    if as_json:
        _echo_json(info)
        return
    click.echo(f"{info['name']} ({info['kind']}, {info['resource']}, version {info['version']})\n")
    click.echo(info["doc"] + "\n")
    click.echo("parameters:")
    for p in info["parameters"]:
        click.echo(f"  {p['name']}: {p['type']} = {json.dumps(p['default'])}")
        if p["description"]:
            click.echo(f"      {p['description']}")


def _datajuicer_ops(as_json: bool) -> None:
    from recipeflow.recipe.datajuicer import most_used_operators, supported_operators

    supported, most_used = supported_operators(), most_used_operators(30)
    if as_json:
        _echo_json({"supported": supported, "most_used": most_used})
        return
    click.echo(f"Data-Juicer operators recipeflow runs ({len(supported)}), under their Data-Juicer names:")
    for name in supported:
        click.echo(f"  {name}")
    missing = [row for row in most_used if not row["supported"]]
    click.echo(f"\nData-Juicer's {len(most_used)} most used text operators (uses in its 38 published text "
               f"recipes): {len(most_used) - len(missing)} supported")
    for row in most_used:
        status = "yes" if row["supported"] else f"no: {row['why']}"
        click.echo(f"  {row['name']:<46} {row['recipes']:>3}  {status}")


@main.command()
@click.argument("root")
@click.option("--all", "show_all", is_flag=True,
              help="Also list version folders that are not committed (a run in progress, failed "
              "or killed mid-commit) or whose manifest does not parse; `cache gc` removes them.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def versions(root: str, show_all: bool, as_json: bool) -> None:
    """List the committed versions of the dataset at ROOT, oldest first."""
    import warnings

    from recipeflow.datasets.versions import list_versions, version_folders

    with warnings.catch_warnings(record=True) as skipped:
        warnings.simplefilter("always")
        rows = list_versions(root)
    others = [f for f in version_folders(root) if f.state != "committed"] if show_all else []
    if as_json:
        _echo_json(rows + [{"version": f.name, "state": f.state, "problem": f.problem,
                            "path": f.path} for f in others] if show_all else rows)
        return
    for warning in skipped if not show_all else []:
        click.echo(f"warning: {warning.message}", err=True)
    if not rows:
        click.echo(f"no committed version under {root}")
    for r in rows:
        tokens = f"  {r['tokens']:>15,} tokens" if r.get("tokens") is not None else ""
        click.echo(f"{r['version']}  {r['created_at']}  {r['rows']:>8} rows{tokens}  {r['path']}")
    for f in others:
        click.echo(f"{f.name}  {f.state}: {f.problem}  {f.path}")


def _fail(message: str) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(1)


@main.command()
@click.argument("root")
@click.argument("a")
@click.argument("b")
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True,
              help="Ids listed for each of added, removed and changed.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def diff(root: str, a: str, b: str, limit: int, as_json: bool) -> None:
    """Documents added, removed and changed from version A to version B of the dataset at ROOT,
    and documents in/out per operator in each.

    A and B are version ids, `latest`, or `parent` (the parent of the other one).
    """
    from recipeflow.datasets.diff import diff_versions, render_text
    from recipeflow.datasets.version_reader import InspectError

    try:
        result = diff_versions(root, a, b, limit=limit)
    except InspectError as exc:
        _fail(str(exc))
    if as_json:
        _echo_json(result.as_json())
        return
    click.echo(render_text(result))


@main.command()
@click.argument("ref", metavar="ROOT[@VERSION]")
@click.argument("out")
@click.option("--format", "fmt", type=click.Choice(["megatron", "jsonl", "parquet"]), required=True,
              help="megatron: .bin/.idx pairs of token ids (needs token_ids); jsonl: gzipped JSONL.")
@click.option("--shuffle-seed", type=click.IntRange(min=0), default=None,
              help="Write documents in a seeded global order.")
@click.option("--target-shard-rows", type=click.IntRange(min=1), default=None, help="About this many documents per file.")
@click.option("--target-shard-tokens", type=click.IntRange(min=1), default=None, help="About this many tokens per file.")
@click.option("--json", "as_json", is_flag=True, help="Print the export's manifest as JSON.")
def export(ref: str, out: str, fmt: str, shuffle_seed: int | None, target_shard_rows: int | None,
           target_shard_tokens: int | None, as_json: bool) -> None:
    """Write a committed version (the latest, or ROOT@VERSION) to the folder OUT in another
    format, without re-running its recipe; OUT's manifest.json names the source version."""
    from recipeflow.datasets.version_reader import InspectError
    from recipeflow.engine.export import ExportError, export_version
    from recipeflow.engine.output_layout import OutputLayoutError

    try:
        manifest = export_version(ref, fmt, out, shuffle_seed=shuffle_seed, target_shard_rows=target_shard_rows,
                                  target_shard_tokens=target_shard_tokens)
    except (InspectError, ExportError, OutputLayoutError) as exc:
        _fail(str(exc))
    if as_json:
        _echo_json(manifest)
        return
    tokens = f" ({manifest['tokens']:,} tokens)" if manifest.get("tokens") is not None else ""
    source = manifest["source"]
    click.echo(f"exported {manifest['rows']} documents{tokens} of {source['dataset']}@{source['version']} "
               f"as {fmt} to {out} ({len(manifest['files'])} files)")


@main.command()
@click.argument("root")
@click.argument("doc_id")
@click.option("--version", "version", default=None, help="Version id or `latest` [default: latest].")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def trace(root: str, doc_id: str, version: str | None, as_json: bool) -> None:
    """Where document DOC_ID of the dataset at ROOT came from: its input file and record, the
    steps it passed, and for a rejected document the operator, reason and statistic."""
    from recipeflow.datasets.trace import render_text, trace_document
    from recipeflow.datasets.version_reader import InspectError

    try:
        result = trace_document(root, doc_id, version)
    except InspectError as exc:
        _fail(str(exc))
    if as_json:
        _echo_json(result.as_json())
        return
    click.echo(render_text(result))


@main.command()
@click.argument("ref", metavar="ROOT[@VERSION]")
@click.option("--benchmarks", "benchmarks", required=True, metavar="FILE.yaml|YAML",
              help="decontaminate's parameters or just its benchmarks mapping: a YAML file, or inline "
                   "YAML such as '{mmlu: {path: mmlu.jsonl, fields: [question, answer]}}'.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def contamination(ref: str, benchmarks: str, as_json: bool) -> None:
    """Check the committed version ROOT[@VERSION] (default: latest) against benchmark sets,
    without running its recipe again: items, items hit and documents hit per benchmark, by exact
    n-gram overlap and by paraphrase."""
    from pydantic import ValidationError

    from recipeflow.datasets.contamination import ContaminationSpecError, check_version, parse_benchmarks
    from recipeflow.datasets.run_summary import contamination_lines
    from recipeflow.datasets.version_reader import InspectError
    from recipeflow.operators.decontamination.benchmarks import BenchmarkError

    try:
        report = check_version(ref, parse_benchmarks(benchmarks))
    except ValidationError as exc:
        _fail(f"--benchmarks: {exc}")
    except (ContaminationSpecError, BenchmarkError, InspectError) as exc:
        _fail(str(exc))
    if as_json:
        _echo_json(report.as_json())
        return
    click.echo(f"{report.dataset} version {report.version}: {report.documents} documents checked "
               f"(n={report.params.get('n', 13)}, min_overlap={report.params.get('min_overlap', 1)})")
    _echo_lines(contamination_lines(report.benchmarks))


@main.command()
@click.argument("ref", metavar="ROOT[@VERSION]")
@click.option("--json", "as_json", is_flag=True, help="The lineage tree as JSON.")
def lineage(ref: str, as_json: bool) -> None:
    """The inputs of a version (files with sha256, or datasets' versions) and, recursively,
    the versions of the datasets it read, with each recipe and parent version."""
    from recipeflow.datasets.lineage import dataset_lineage, render_text
    from recipeflow.datasets.version_reader import InspectError

    try:
        tree = dataset_lineage(ref)
    except InspectError as exc:
        _fail(str(exc))
    if as_json:
        _echo_json(tree)
        return
    click.echo(render_text(tree))


@main.command()
@click.argument("ref", metavar="ROOT[@VERSION]")
@click.option("--to", "target", required=True,
              help="hf://datasets/ORG/NAME (the Hugging Face Hub), or a folder / fsspec URL to write the repository to.")
@click.option("--token", default=None, envvar="HF_TOKEN", help="Hub token [default: $HF_TOKEN or the saved login].")
@click.option("--private", is_flag=True, help="Create the Hub repository as private (when it does not exist).")
def publish(ref: str, target: str, token: str | None, private: bool) -> None:
    """Publish one version (default: latest) as a Hugging Face dataset repository: its files,
    its manifest and a dataset card whose `default` config is this version."""
    from recipeflow.datasets.hub import PublishError, publish as publish_version
    from recipeflow.datasets.version_reader import InspectError

    try:
        done = publish_version(ref, target, token=token, private=private)
    except (InspectError, PublishError) as exc:
        _fail(str(exc))
    click.echo(f"version {done['version']}: {done['files']} files published to {done['target']}"
               + (f" ({done['commit']})" if done["commit"] else ""))


@main.group()
def server() -> None:
    """The local Prefect server that runs without PREFECT_API_URL report to (kept between runs
    of a Prefect home until RECIPEFLOW_SERVER_IDLE_SECONDS pass without one)."""


@server.command("status")
def server_status() -> None:
    """Say whether this Prefect home's local server runs: its UI, pid and the runs using it."""
    from recipeflow.orchestration import kept_server

    click.echo(kept_server.describe())


@server.command("stop")
@click.option("--force", is_flag=True, help="Stop it even while runs report to it.")
def server_stop(force: bool) -> None:
    """Stop this Prefect home's local server now (the next run starts a new one)."""
    from recipeflow.orchestration import kept_server

    stopped, message = kept_server.stop_now(force=force)
    if not stopped:
        _fail(message)
    click.echo(message)


@main.group()
def cache() -> None:
    """The stage cache of a dataset root (`<root>/cache/`)."""


@cache.command("ls")
@click.argument("root")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def cache_ls(root: str, as_json: bool) -> None:
    """List the cache entries under ROOT: kind, address, size, modified time, versions using it."""
    from recipeflow.datasets.cache_admin import list_entries, render_list, totals

    entries = list_entries(root)
    if as_json:
        _echo_json({"entries": [e.as_json() for e in entries], "totals": totals(entries)})
        return
    click.echo(render_list(root, entries))


@cache.command("gc")
@click.argument("root")
@click.option("--older-than", "older_than", type=click.FloatRange(min=0), default=24.0, show_default=True,
              metavar="HOURS", help="Only remove entries last written more than HOURS ago.")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def cache_gc(root: str, older_than: float, dry_run: bool, as_json: bool) -> None:
    """Remove the cache entries under ROOT that no committed version uses, and the version
    folders that were never committed (or whose manifest does not parse), when older than
    --older-than hours (newer ones may belong to a run in progress)."""
    from recipeflow.datasets.cache_admin import collect_garbage, render_gc

    result = collect_garbage(root, older_than_hours=older_than, dry_run=dry_run)
    if as_json:
        _echo_json(result.as_json())
        return
    click.echo(render_gc(root, result))


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@overrides_option
@click.option(
    "--sample", type=click.IntRange(min=0), default=10_000, show_default=True,
    help="Analyse the first N documents in input order (0: all of them).",
)
@click.option(
    "--report", type=click.Path(dir_okay=False), default=None,
    help="Where to write the HTML report [default: analyze-<recipe name>.html].",
)
@click.option("--no-progress", is_flag=True, help="Do not draw a progress bar.")
def analyze(recipe: str, overrides: tuple[str, ...], sample: int, report: str | None, no_progress: bool) -> None:
    """Show what RECIPE's filters would drop: statistics, percentiles, drops alone and in sequence.

    Nothing is dropped and no version is committed; barriers (dedup, selectors) are not run.
    """
    if not no_progress:
        os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "WARNING")
    from recipeflow.analyze.model import AnalyzeError
    from recipeflow.orchestration.analyze_flow import analyze_recipe
    from recipeflow.analyze.report import render_terminal
    from recipeflow.recipe.errors import RecipeInvalid

    try:
        result = analyze_recipe(recipe, overrides, sample=sample, report=report, progress=not no_progress)
    except (RecipeInvalid, AnalyzeError) as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    click.echo("\n" + render_terminal(result.analysis))
    click.echo(f"\nreport written to {result.report}")


if __name__ == "__main__":
    main()
