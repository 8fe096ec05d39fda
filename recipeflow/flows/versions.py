"""Dataset versions: immutable folders under ``<root>/versions/``, each committed by writing
its ``manifest.json`` last. A folder without a manifest is an unfinished (or killed) run and is
invisible to every reader."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from recipeflow.flows import storage

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
