"""Dataset versions: immutable folders under ``<root>/versions/``, each committed by writing
its ``manifest.json`` last. A folder without a manifest is an unfinished (or killed) run and is
invisible to every reader."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from recipeflow.io import storage

VERSIONS_DIR = "versions"
MANIFEST = "manifest.json"


def new_version_id(now: dt.datetime | None = None) -> str:
    """Sortable by time, unique across concurrent runs: ``20261121-052233-3f9a1c``."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def version_path(root: str, version: str) -> str:
    return storage.join(root, VERSIONS_DIR, version)


def manifest_path(root: str, version: str) -> str:
    return storage.join(version_path(root, version), MANIFEST)


def read_manifest(root: str, version: str) -> dict[str, Any]:
    return storage.read_json(manifest_path(root, version))


def committed_manifests(root: str) -> list[dict[str, Any]]:
    """Manifests of every committed version, oldest first."""
    manifests = []
    for name in storage.list_dir(storage.join(root, VERSIONS_DIR)):
        try:
            manifests.append(read_manifest(root, name))
        except FileNotFoundError:
            continue  # not committed: still running, failed or killed
    return sorted(manifests, key=lambda m: (m["created_at"], m["version"]))


def list_versions(root: str) -> list[dict[str, Any]]:
    """One summary per committed version, oldest first."""
    root = storage.absolute(root)
    return [
        {
            "version": m["version"],
            "created_at": m["created_at"],
            "rows": m["rows"],
            "tokens": m.get("tokens"),  # None: the version's documents have no n_tokens
            "rejected_rows": m.get("rejected_rows", 0),
            "parent": m.get("parent"),
            "recipe": m["recipe_name"],
            "path": version_path(root, m["version"]),
        }
        for m in committed_manifests(root)
    ]


def latest_version(root: str) -> str | None:
    manifests = committed_manifests(root)
    return manifests[-1]["version"] if manifests else None


def commit(root: str, version: str, manifest: dict[str, Any]) -> str:
    """Make a version visible: its manifest is the last file written."""
    storage.write_json(manifest_path(root, version), manifest)
    return version_path(root, version)


def apply_retention(root: str, keep_last: int) -> list[str]:
    """Delete all but the newest ``keep_last`` committed versions; returns those deleted.

    The manifest goes first, so a version being deleted is invisible before its files go.
    """
    deleted = []
    for manifest in committed_manifests(root)[:-keep_last]:
        version = manifest["version"]
        storage.remove(manifest_path(root, version))
        storage.remove(version_path(root, version), recursive=True)
        deleted.append(version)
    return deleted


@dataclass(frozen=True)
class DatasetInput:
    """An input that is a recipeflow dataset: one committed version's data files."""

    root: str
    version: str
    format: str
    files: list[str]


def dataset_input(path: str) -> DatasetInput | None:
    """``ROOT`` (its latest version) or ``ROOT@VERSION`` when ``path`` names a dataset root;
    ``None`` for ordinary files and globs."""
    root, _, version = path.partition("@") if "@" in path.rsplit("/", 1)[-1] else (path, "", "")
    if not storage.exists(storage.join(root, VERSIONS_DIR)):
        if version:
            raise FileNotFoundError(f"{root!r} is not a dataset root (no versions/ folder in it)")
        return None
    manifests = {m["version"]: m for m in committed_manifests(root)}
    if not manifests:
        raise FileNotFoundError(f"dataset {root!r} has no committed version yet")
    if version and version not in manifests:
        known = ", ".join(manifests) or "none"
        raise FileNotFoundError(f"dataset {root!r} has no version {version!r} (versions: {known})")
    manifest = manifests[version] if version else list(manifests.values())[-1]
    if manifest["output"]["format"] == "megatron":
        raise ValueError(
            f"version {manifest['version']} of {root!r} holds Megatron token ids, not documents a "
            f"recipe can read; read a Parquet version, or `recipeflow export {root}@{manifest['version']} "
            "--format parquet OUT` and read OUT"
        )
    folder = version_path(root, manifest["version"])
    return DatasetInput(
        root=root,
        version=manifest["version"],
        format="parquet" if manifest["output"]["format"] == "parquet" else "jsonl",
        files=[storage.join(folder, f["path"]) for f in manifest["files"]],
    )
