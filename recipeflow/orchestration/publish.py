"""What a committed version shows in Prefect: an asset materialization for the dataset (its
inputs as upstream assets) and artifacts keyed by the dataset's name — a table of its versions
and a lineage card — so the UI's Artifacts page holds each dataset's history."""

from __future__ import annotations

import re
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.assets import Asset, AssetProperties, add_asset_metadata, materialize
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from recipeflow.datasets import versions
from recipeflow.engine.commit import commit_output
from recipeflow.orchestration.run_view import dataset_name, lineage_mermaid

# Characters Prefect does not accept in asset keys.
_NOT_IN_KEYS = re.compile(r"[\s#?&%\"'<>\[\]{}|\\^`]")
MAX_UPSTREAM = 100  # an input glob of thousands of files names its first files only


def asset_key(url: str) -> str:
    """An asset key for a dataset root or input file: a URI (local paths become file://)."""
    key = url if "://" in url else "file://" + url
    return _NOT_IN_KEYS.sub("_", key)[:512]


def upstream_assets(input_urls: list[str]) -> list[Asset]:
    return [Asset(key=asset_key(u)) for u in input_urls[:MAX_UPSTREAM]]


def commit_as_asset(task_run_name: str, upstream: list[str], **commit_kwargs: Any) -> dict[str, Any]:
    """Commit a version inside a materializing task: the dataset is the asset, its inputs the
    upstream assets, and the version's facts the materialization's metadata."""
    root = commit_kwargs["output"].path
    key = asset_key(root)
    dataset = Asset(
        key=key,
        properties=AssetProperties(
            name=dataset_name(root),
            description=f"recipeflow dataset at {root} (recipe {commit_kwargs['recipe'].name})",
        ),
    )

    def commit(**kwargs: Any) -> dict[str, Any]:
        manifest = commit_output(**kwargs)
        add_asset_metadata(
            key,
            {
                "version": manifest["version"],
                "rows": manifest["rows"],
                "parent": manifest["parent"],
                "recipe": manifest["recipe_name"],
                "recipe_sha256": manifest["recipe_sha256"],
            },
        )
        return manifest

    # No cache policy: a commit is never skipped, and Prefect's default one hashed every shard's
    # result given to it (0.1 s at 5,000 shards).
    task = materialize(
        dataset, asset_deps=upstream_assets(upstream), name="commit", task_run_name=task_run_name,
        cache_policy=NO_CACHE,
    )(commit)
    # Quoted: Prefect would walk every shard's result looking for futures (2 ms a shard).
    manifest = task(**{name: quote(value) for name, value in commit_kwargs.items()})
    publish_dataset_artifacts(manifest)
    return manifest


def publish_dataset_artifacts(manifest: dict[str, Any]) -> None:
    """The dataset's version table and the new version's lineage card."""
    root = manifest["dataset"]
    name = dataset_name(root)
    rows = [
        {k: v[k] for k in ("version", "created_at", "rows", "parent", "recipe", "path")}
        for v in versions.list_versions(root)
    ]
    create_table_artifact(
        key=f"{name}-versions", table=rows, description=f"Versions of the dataset {root}"
    )
    create_markdown_artifact(
        key=f"{name}-lineage", markdown=lineage_card(manifest), description=f"Lineage of {root}"
    )


def lineage_card(manifest: dict[str, Any]) -> str:
    """Inputs -> recipe -> outputs of one version, as markdown: a Mermaid graph (the UI renders
    it: Prefect's default UI, v2, draws ```mermaid blocks), going back through the inputs' own
    versions, then the details."""
    snap = manifest.get("snapshot") or {}
    lines = [
        f"# {dataset_name(manifest['dataset'])} @ {manifest['version']}",
        "",
        f"**Dataset** `{manifest['dataset']}` · **version** `{manifest['version']}` · "
        f"**parent** `{manifest['parent']}` · {manifest['rows']} documents"
        + (f" ({snap.get('new_rows')} new, {snap.get('parent_rows')} shared with the parent)" if snap.get("stacked") else ""),
        "",
        "```mermaid",
        lineage_mermaid(manifest["dataset"], manifest["version"]),
        "```",
        "",
        "## Inputs",
    ]
    for inp in manifest["inputs"]:
        if "dataset" in inp:
            lines.append(f"- `{inp['name']}`: dataset `{inp['dataset']}` version `{inp['version']}`")
        else:
            lines.append(f"- `{inp['name']}`: `{inp['path']}` ({len(inp['files'])} files)")
            lines += [f"  - `{f['url']}` sha256 `{f['sha256'][:16]}…` {f['records']} records" for f in inp["files"][:20]]
    lines += [
        "",
        "## Recipe",
        f"`{manifest['recipe_name']}` sha256 `{manifest['recipe_sha256'][:16]}…` ({manifest.get('recipe_file')})",
        "",
        "| step | operator | in | out |",
        "|---|---|---:|---:|",
    ]
    lines += [f"| {o['step']} | {o['operator']} | {o['docs_in']} | {o['docs_out']} |" for o in manifest["operators"]]
    lines += ["", "## Outputs"]
    lines += [
        f"- `{versions.entry_repo_path(manifest['version'], f)}`: {f['rows']} rows, {f['bytes']} bytes, "
        f"sha256 `{f['sha256'][:16]}…`{' (new)' if f.get('new', True) else ' (shared with the parent)'}"
        for f in manifest["files"]
    ]
    return "\n".join(lines)
