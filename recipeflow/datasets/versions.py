"""Dataset versions: immutable folders under ``<root>/versions/``, each committed by writing
its ``manifest.json`` last (atomically on local disk). A folder without a manifest is an
unfinished (or killed) run and is invisible to every reader; a version whose manifest does not
parse (torn by a full disk before writes were atomic, or edited by hand) is skipped by every
reader with an :class:`UnreadableManifestWarning` naming its path. ``version_folders`` lists
both kinds, for ``recipeflow versions --all`` and ``cache gc``."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import warnings
from dataclasses import dataclass
from typing import Any, Literal

from recipeflow.io import storage
from recipeflow.operators.decontamination.benchmarks import set_dataset_resolver

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


class UnreadableManifest(ValueError):
    """A version's manifest exists but is not a manifest (torn, truncated, edited)."""

    def __init__(self, url: str, problem: str):
        self.url = url
        self.problem = problem
        super().__init__(url, problem)

    def __str__(self) -> str:
        return (f"{self.url}: the manifest cannot be read ({self.problem}); this version is "
                "skipped. Remove its folder (or run `recipeflow cache gc`) once you have "
                "checked it")


class UnreadableManifestWarning(UserWarning):
    """A reader skipped a version whose manifest does not parse."""


def read_manifest(root: str, version: str) -> dict[str, Any]:
    """The manifest of ``version``: :class:`FileNotFoundError` when it has none (not committed),
    :class:`UnreadableManifest` when it does not parse."""
    url = manifest_path(root, version)
    data = storage.read_bytes(url)
    try:
        manifest = json.loads(data)
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError alike
        raise UnreadableManifest(url, f"not valid JSON: {error}; {len(data)} bytes") from None
    missing = [k for k in ("version", "created_at") if not isinstance(manifest, dict) or k not in manifest]
    if missing:
        raise UnreadableManifest(url, f"no {' or '.join(missing)} field")
    return manifest


def committed_manifests(root: str) -> list[dict[str, Any]]:
    """Manifests of every committed version, oldest first; a version whose manifest does not
    parse is skipped with an :class:`UnreadableManifestWarning`."""
    manifests = []
    for name in storage.list_dir(storage.join(root, VERSIONS_DIR)):
        try:
            manifests.append(read_manifest(root, name))
        except FileNotFoundError:
            continue  # not committed: still running, failed or killed
        except UnreadableManifest as error:
            warnings.warn(str(error), UnreadableManifestWarning, stacklevel=2)
    return sorted(manifests, key=lambda m: (m["created_at"], m["version"]))


VersionState = Literal["committed", "unfinished", "unreadable"]


@dataclass(frozen=True)
class VersionFolder:
    """One folder under ``versions/``: committed, unfinished (no manifest: a run in progress,
    failed or killed mid-commit) or unreadable (a manifest that does not parse)."""

    name: str
    path: str
    state: VersionState
    problem: str | None = None


def version_folders(root: str) -> list[VersionFolder]:
    """Every folder under ``<root>/versions/``, by name, whatever its state."""
    root = storage.absolute(root)
    folders = []
    for name in storage.list_dir(storage.join(root, VERSIONS_DIR)):
        path = version_path(root, name)
        try:
            read_manifest(root, name)
            folders.append(VersionFolder(name, path, "committed"))
        except FileNotFoundError:
            folders.append(VersionFolder(name, path, "unfinished", "no manifest.json: never committed"))
        except UnreadableManifest as error:
            folders.append(VersionFolder(name, path, "unreadable", error.problem))
    return folders


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
    """Make a version visible: its manifest is the last file written, whole or not at all."""
    storage.write_json(manifest_path(root, version), manifest, atomic=True)
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


def _dataset_files(path: str) -> list[str] | None:
    dataset = dataset_input(path)
    return None if dataset is None else dataset.files


# decontaminate's benchmark sets may be datasets (ROOT, ROOT@VERSION): the operator layer
# cannot import this one, so it is handed the resolver.
set_dataset_resolver(_dataset_files)
