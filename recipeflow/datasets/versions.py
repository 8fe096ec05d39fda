"""Dataset versions: immutable folders under ``<root>/versions/``, each committed by writing
its ``manifest.json`` last. A folder without a manifest is an unfinished (or killed) run and is
invisible to every reader.

A version is a snapshot: the whole dataset as of its commit. Its manifest lists every data
(and rejected) file it holds; an entry's ``version`` names the folder the file lives in (its
own, or an earlier version's when the file is shared with the parent, never copied), and
``new`` says whether this version wrote it. Entries without ``version`` (older manifests)
live in the version's own folder.

Concurrent commits rely on two things only: version ids are unique (time + random token),
and the store's write-if-absent (``open(..., "xb")``: ``O_EXCL`` on local disk,
``If-None-Match: *`` on S3) for the manifest and for the claim a snapshot makes on its parent.
"""

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


VersionState = Literal["committed", "retired", "unfinished", "unreadable"]


@dataclass(frozen=True)
class VersionFolder:
    """One folder under ``versions/``: committed, retired (deleted by ``keep_last``, its
    manifest gone, but holding files a kept snapshot shares), unfinished (no manifest: a run in
    progress, failed or killed mid-commit) or unreadable (a manifest that does not parse)."""

    name: str
    path: str
    state: VersionState
    problem: str | None = None


def version_folders(root: str) -> list[VersionFolder]:
    """Every folder under ``<root>/versions/``, by name, whatever its state."""
    root = storage.absolute(root)
    folders = []
    shared_from = {e.get("version") for m in committed_manifests(root)
                   for key in ("files", "rejected_files") for e in m.get(key, [])}
    for name in storage.list_dir(storage.join(root, VERSIONS_DIR)):
        path = version_path(root, name)
        try:
            read_manifest(root, name)
            folders.append(VersionFolder(name, path, "committed"))
        except FileNotFoundError:
            if name in shared_from:
                folders.append(VersionFolder(name, path, "retired", "deleted by keep_last; holds files a kept snapshot shares"))
            else:
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


CLAIMS_DIR = "claims"


class CommitConflict(RuntimeError):
    """Another run committed a snapshot on the same parent first."""


def claim_path(root: str, parent: str) -> str:
    """Outside ``versions/``: every folder there is a version (or an unfinished one)."""
    return storage.join(root, CLAIMS_DIR, f"{parent}.json")


def commit(root: str, version: str, manifest: dict[str, Any]) -> str:
    """Make a version visible: its manifest is the last file written, whole or not at all.

    A snapshot that stacks on its parent (its manifest's ``snapshot.stacked``) first claims
    the parent, write-if-absent: of two runs that refreshed the same parent at once, the second
    fails with :class:`CommitConflict` instead of committing a snapshot that misses the first
    one's documents (and was deduplicated without them).
    """
    parent = manifest.get("parent")
    if parent and manifest.get("snapshot", {}).get("stacked"):
        claim = {"parent": parent, "version": version, "created_at": manifest["created_at"]}
        try:
            storage.write_json(claim_path(root, parent), claim, exclusive=True)
        except FileExistsError:
            holder = storage.read_json(claim_path(root, parent)).get("version")
            raise CommitConflict(
                f"cannot commit version {version} of {root}: version {holder} was committed on top of "
                f"the same parent {parent} by another run while this one ran. Run the recipe again: its "
                f"stage results are cached, and it will add to (and deduplicate against) {holder}. "
                f"If no run is committing {holder} (a run killed while committing), delete "
                f"{claim_path(root, parent)}."
            ) from None
    storage.write_json(manifest_path(root, version), manifest, durable=True, exclusive=True)
    return version_path(root, version)


def entry_folder(root: str, version: str, entry: dict[str, Any]) -> str:
    """The version folder a manifest's file entry lives in (shared files: an earlier one)."""
    return version_path(root, entry.get("version") or version)


def entry_url(root: str, version: str, entry: dict[str, Any]) -> str:
    """The URL of a ``files`` / ``rejected_files`` entry of ``version``'s manifest."""
    path = entry["path"]
    if "://" in path or path.startswith("/"):
        return path
    return storage.join(entry_folder(root, version, entry), path)


def entry_repo_path(version: str, entry: dict[str, Any]) -> str:
    """The entry's path relative to the dataset root (``versions/<v>/data/part-00000.parquet``)."""
    return f"{VERSIONS_DIR}/{entry.get('version') or version}/{entry['path']}"


def listed_urls(root: str, manifest: dict[str, Any]) -> set[str]:
    """Every data and rejected file a version lists, wherever it lives."""
    return {
        entry_url(root, manifest["version"], e)
        for key in ("files", "rejected_files")
        for e in manifest.get(key, [])
    }


def apply_retention(root: str, keep_last: int) -> list[str]:
    """Delete all but the newest ``keep_last`` committed versions; returns those deleted.

    The manifest goes first, so a version being deleted is invisible before its files go.
    A file a kept version lists (a snapshot shares its parent's files) is never deleted: the
    deleted version's folder keeps those files and loses the rest.
    """
    manifests = committed_manifests(root)
    kept = manifests[-keep_last:]
    referenced = {u for m in kept for u in listed_urls(root, m)}
    deleted = []
    for manifest in manifests[:-keep_last]:
        version = manifest["version"]
        folder = version_path(root, version)
        storage.remove(manifest_path(root, version))
        storage.remove(claim_path(root, version))
        files = storage.find_files(folder)
        if any(f in referenced for f in files):
            for url in files:
                if url not in referenced:
                    storage.remove(url)
        else:
            storage.remove(folder, recursive=True)
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
    return DatasetInput(
        root=root,
        version=manifest["version"],
        format="parquet" if manifest["output"]["format"] == "parquet" else "jsonl",
        files=[entry_url(root, manifest["version"], f) for f in manifest["files"]],
    )


def _dataset_files(path: str) -> list[str] | None:
    dataset = dataset_input(path)
    return None if dataset is None else dataset.files


# decontaminate's benchmark sets may be datasets (ROOT, ROOT@VERSION): the operator layer
# cannot import this one, so it is handed the resolver.
set_dataset_resolver(_dataset_files)
