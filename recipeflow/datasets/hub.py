"""``recipeflow publish ROOT[@VERSION] --to TARGET``: one snapshot, as a Hugging Face dataset
repository — its data and rejected files at the paths the card's ``configs`` name, its
manifest, and a dataset card for that version.

One plan (:func:`plan_upload`: repository path → source) feeds two writers: the Hub
(``hf://datasets/ORG/NAME``: one ``HfApi.create_commit`` of ``CommitOperationAdd``s, so a
version appears on the Hub at once or not at all) and any fsspec folder (a local directory,
``file://``, ``s3://``...), which writes the same files at the same paths.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from recipeflow.datasets import card, version_reader, versions
from recipeflow.io import storage

HUB_PREFIX = "hf://datasets/"


class PublishError(ValueError):
    """A target that cannot be published to, said for people."""


@dataclass(frozen=True)
class UploadFile:
    """One file of the repository: where it goes, and its source (a URL, or bytes to write)."""

    repo_path: str
    source: str | None = None
    data: bytes | None = None


def plan_upload(ref: str) -> tuple[str, list[UploadFile]]:
    """(version id, files) for ``ROOT`` (latest) or ``ROOT@VERSION``: the snapshot's files
    (its parent's shared ones included, at their own paths), its manifest and a card whose
    ``default`` config is this version."""
    root, name = version_reader.split_ref(ref)
    opened = version_reader.open_version(root, name)
    manifest = opened.manifest
    files = [
        UploadFile(versions.entry_repo_path(opened.id, e), source=opened.file_url(e))
        for key in ("files", "rejected_files")
        for e in manifest.get(key, [])
    ]
    files.append(UploadFile(f"{versions.VERSIONS_DIR}/{opened.id}/{versions.MANIFEST}",
                            data=(json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n").encode()))
    files.append(UploadFile(card.CARD, data=card.render(opened.root, [manifest]).encode("utf-8")))
    return opened.id, files


def hub_repo_id(target: str) -> str | None:
    """``ORG/NAME`` of an ``hf://datasets/ORG/NAME`` target; None for other targets."""
    if not target.startswith("hf://"):
        return None
    if not target.startswith(HUB_PREFIX) or target[len(HUB_PREFIX):].strip("/").count("/") != 1:
        raise PublishError(
            f"--to {target!r}: a Hub target is hf://datasets/ORG/NAME (a dataset repository; models and "
            "spaces are not datasets)"
        )
    return target[len(HUB_PREFIX):].strip("/")


def hub_operations(files: list[UploadFile]) -> list[Any]:
    """The Hub commit's operations: one ``CommitOperationAdd`` per file (local files are
    streamed from disk; others read into memory one at a time by the client)."""
    from huggingface_hub import CommitOperationAdd

    operations = []
    for f in files:
        if f.data is not None:
            content: Any = f.data
        elif storage.is_local(f.source or ""):
            content = storage.absolute(f.source or "")
        else:
            content = storage.read_bytes(f.source or "")
        operations.append(CommitOperationAdd(path_in_repo=f.repo_path, path_or_fileobj=content))
    return operations


def publish(ref: str, target: str, *, token: str | None = None, private: bool = False) -> dict[str, Any]:
    """Publish the snapshot named by ``ref`` to ``target``; returns what was done."""
    version, files = plan_upload(ref)
    repo_id = hub_repo_id(target)
    if repo_id is not None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        info = api.create_commit(
            repo_id,
            operations=hub_operations(files),
            repo_type="dataset",
            commit_message=f"recipeflow: version {version}",
        )
        return {"target": target, "version": version, "files": len(files), "commit": getattr(info, "commit_url", None)}
    destination = storage.absolute(target)
    for f in files:
        url = storage.join(destination, f.repo_path)
        if f.data is not None:
            storage.write_bytes(url, f.data)
        else:
            storage.copy_file(f.source or "", url)
    return {"target": destination, "version": version, "files": len(files), "commit": None}
