"""``recipeflow lineage``: the inputs of a version and, recursively, the versions of the
datasets it read — each with its recipe (name, sha256) and parent version.

A manifest's input entry that read a dataset names it: ``{"dataset": ROOT, "version": V, ...}``.
Versions are immutable, so a true cycle needs a hand-edited manifest; it is still guarded
against, and a version reached twice (a diamond) is described once and referred to after.
"""

from __future__ import annotations

from typing import Any

from recipeflow.io import storage
from recipeflow.datasets import version_reader
from recipeflow.datasets.version_reader import UnknownVersion, Version

# Input files listed per input in the text output (the JSON has them all).
FILES_SHOWN = 10

VersionKey = tuple[str, str]


def dataset_lineage(ref: str) -> dict[str, Any]:
    """The lineage tree of ``ROOT`` (latest version) or ``ROOT@VERSION``."""
    root, version = version_reader.split_ref(ref)
    return _describe_version(version_reader.open_version(root, version), path=(), seen=set())


def _describe_version(version: Version, path: tuple[VersionKey, ...], seen: set[VersionKey]) -> dict[str, Any]:
    """One version and its inputs; ``path`` holds the versions above it (cycle guard), ``seen``
    every version already described (diamonds are described once)."""
    key = (version.root, version.id)
    seen.add(key)
    m = version.manifest
    return {
        "dataset": version.root,
        "version": version.id,
        "created_at": m.get("created_at"),
        "recipe_name": m.get("recipe_name"),
        "recipe_sha256": m.get("recipe_sha256"),
        "parent": m.get("parent"),
        "rows": m.get("rows"),
        "inputs": [_describe_input(entry, path + (key,), seen) for entry in m.get("inputs", [])],
        **_describe_snapshot(version, path + (key,), seen),
    }


def _describe_snapshot(version: Version, path: tuple[VersionKey, ...], seen: set[VersionKey]) -> dict[str, Any]:
    """For a snapshot that shares its parent's files: how many rows are new, how many it holds
    from each earlier version, and the parent's own lineage (where those rows came from)."""
    m = version.manifest
    if not (m.get("snapshot") or {}).get("stacked"):
        return {}
    held: dict[str, int] = {}
    for entry in m.get("files", []):
        writer = version.file_version(entry)
        held[writer] = held.get(writer, 0) + entry.get("rows", 0)
    return {
        "rows_by_version": held,
        "parent_snapshot": _describe_upstream(version.root, m.get("parent"), path, seen),
    }


def _describe_input(entry: dict[str, Any], path: tuple[VersionKey, ...], seen: set[VersionKey]) -> dict[str, Any]:
    described: dict[str, Any] = {
        "name": entry.get("name"),
        "path": entry.get("path"),
        "format": entry.get("format"),
        "files": [
            {"url": f.get("url"), "sha256": f.get("sha256"), "size": f.get("size")} for f in entry.get("files", [])
        ],
    }
    if "dataset" in entry:
        described["dataset"] = entry["dataset"]
        described["version"] = entry.get("version")
        described["upstream"] = _describe_upstream(entry["dataset"], entry.get("version"), path, seen)
    return described


def _describe_upstream(
    dataset: str, version: str | None, path: tuple[VersionKey, ...], seen: set[VersionKey]
) -> dict[str, Any]:
    """The version an input read, or why it is not expanded here."""
    root = storage.absolute(dataset)
    if not version:
        return {"dataset": root, "version": None, "missing": "the manifest does not name the version it read"}
    key = (root, version)
    if key in path:
        return {"dataset": root, "version": version, "cycle": True}
    if key in seen:
        return {"dataset": root, "version": version, "shown_above": True}
    try:
        return _describe_version(version_reader.open_version(root, version), path, seen)
    except UnknownVersion as exc:
        return {"dataset": root, "version": version, "missing": str(exc)}


# -- text -------------------------------------------------------------------------------------


def render_text(tree: dict[str, Any]) -> str:
    """The lineage tree for a terminal, one indentation level per dataset read."""
    return "\n".join(_version_lines(tree, indent=""))


def _version_lines(node: dict[str, Any], indent: str) -> list[str]:
    head = f"{indent}{node['dataset']} @ {node['version']}"
    if node.get("cycle"):
        return [head + "  (cycle: this version is one of its own inputs' ancestors)"]
    if node.get("shown_above"):
        return [head + "  (shown above)"]
    if "missing" in node:
        return [head + f"  (not found: {node['missing']})"]
    lines = [
        head,
        f"{indent}  recipe {node['recipe_name']} sha256 {node['recipe_sha256']}",
        f"{indent}  parent {node['parent'] or '(none: first version)'}; {node['rows']} rows;"
        f" created {node['created_at']}",
    ]
    for inp in node["inputs"]:
        lines.extend(_input_lines(inp, indent + "  "))
    if "rows_by_version" in node:
        held = ", ".join(f"{rows} from {v}" for v, rows in node["rows_by_version"].items())
        lines.append(f"{indent}  snapshot: {held}; the parent's rows come from:")
        lines.extend(_version_lines(node["parent_snapshot"], indent + "    "))
    return lines


def _input_lines(inp: dict[str, Any], indent: str) -> list[str]:
    files = inp["files"]
    if "dataset" in inp:
        lines = [f"{indent}input {inp['name']}: dataset {inp['dataset']} @ {inp['version']} ({len(files)} file(s))"]
        return lines + _version_lines(inp["upstream"], indent + "  ")
    lines = [f"{indent}input {inp['name']} ({inp['format']}): {inp['path']}, {len(files)} file(s)"]
    lines += [f"{indent}  {f['url']}  sha256 {f['sha256']}" for f in files[:FILES_SHOWN]]
    if len(files) > FILES_SHOWN:
        lines.append(f"{indent}  ... and {len(files) - FILES_SHOWN} more (--json lists them all)")
    return lines
