"""Reading committed versions for the inspection commands (diff, trace, lineage): name a
version (an id, ``latest``, ``parent``), and stream its data or rejected files batch by batch,
Parquet and gzipped JSONL alike, through fsspec."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from typing import Any, Iterator

import fsspec
import pyarrow.parquet as pq

from recipeflow.io import storage
from recipeflow.datasets import versions

LATEST = "latest"
PARENT = "parent"
# Rows read at a time when streaming a file: bounded memory whatever the file's size.
BATCH_ROWS = 8_192
# At most this many version ids are named in an error message.
_KNOWN_SHOWN = 20


class InspectError(LookupError):
    """What an inspection command could not find, said for people."""


class UnknownVersion(InspectError):
    """A version that is not committed under a dataset root."""


@dataclass(frozen=True)
class Version:
    """A committed version: its root (absolute) and manifest."""

    root: str
    manifest: dict[str, Any]

    @property
    def id(self) -> str:
        return self.manifest["version"]

    @property
    def folder(self) -> str:
        return versions.version_path(self.root, self.id)

    @property
    def format(self) -> str:
        return self.manifest.get("output", {}).get("format", "parquet")

    def file_url(self, entry: dict[str, Any]) -> str:
        """The URL of a ``files`` / ``rejected_files`` entry: relative to the folder of the
        version that wrote it (a snapshot shares its parent's files)."""
        return versions.entry_url(self.root, self.id, entry)

    def file_version(self, entry: dict[str, Any]) -> str:
        """The version that wrote a file entry (this one, or an earlier one it shares)."""
        return entry.get("version") or self.id


def split_ref(ref: str) -> tuple[str, str | None]:
    """``ROOT@VERSION`` → (ROOT, VERSION); a plain root → (root, None).

    Only an ``@`` after the last ``/`` names a version, so ``s3://user@host/...`` stays whole.
    """
    head, sep, tail = ref.rpartition("@")
    if not sep or not head or "/" in tail or not tail:
        return ref, None
    return head, tail


def known_versions_message(root: str) -> str:
    """The committed versions of ``root``, newest last, for an error message."""
    ids = [m["version"] for m in versions.committed_manifests(root)]
    if not ids:
        return f"no version is committed under {root}"
    shown = ids[-_KNOWN_SHOWN:]
    more = f" (and {len(ids) - len(shown)} older)" if len(ids) > len(shown) else ""
    return f"known versions of {root}, oldest first{more}: " + ", ".join(shown)


def open_version(root: str, name: str | None = None) -> Version:
    """The version named ``name`` (an id or ``latest``; ``None`` means latest) under ``root``."""
    root = storage.absolute(root)
    if name is None or name == LATEST:
        latest = versions.latest_version(root)
        if latest is None:
            raise UnknownVersion(f"no version is committed under {root}")
        name = latest
    try:
        return Version(root, versions.read_manifest(root, name))
    except FileNotFoundError:
        known = known_versions_message(root)
        raise UnknownVersion(f"version {name!r} is not committed under {root}; {known}") from None
    except versions.UnreadableManifest as error:
        raise UnknownVersion(str(error)) from None


def parent_of(version: Version) -> Version:
    parent = version.manifest.get("parent")
    if not parent:
        raise UnknownVersion(f"version {version.id} of {version.root} has no parent: it is the first version")
    return open_version(version.root, parent)


def open_pair(root: str, a: str, b: str) -> tuple[Version, Version]:
    """Versions ``a`` and ``b``; ``parent`` names the parent of the other one."""
    if a == PARENT and b == PARENT:
        raise UnknownVersion("only one of the two versions can be `parent` (the parent of the other)")
    if a == PARENT:
        second = open_version(root, b)
        return parent_of(second), second
    first = open_version(root, a)
    second = parent_of(first) if b == PARENT else open_version(root, b)
    return first, second


# -- streaming rows ---------------------------------------------------------------------------


def iter_row_batches(url: str, fmt: str) -> Iterator[list[dict[str, Any]]]:
    """The rows of one data file as dicts, ``BATCH_ROWS`` at a time: bounded memory."""
    if fmt == "megatron":  # the documents' fields beside the token ids (see output_layout)
        url = url.removesuffix(".bin") + ".documents.parquet"
        fmt = "parquet"
    if fmt == "parquet":
        with fsspec.open(url, "rb") as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=BATCH_ROWS):
                yield batch.to_pylist()
        return
    rows: list[dict[str, Any]] = []
    for row in iter_jsonl_rows(url):
        rows.append(row)
        if len(rows) == BATCH_ROWS:
            yield rows
            rows = []
    if rows:
        yield rows


def iter_jsonl_rows(url: str) -> Iterator[dict[str, Any]]:
    """The rows of a gzipped JSONL file, one dict per non-empty line."""
    with fsspec.open(url, "rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)
