"""``recipeflow export ROOT[@VERSION] --format megatron|jsonl|parquet OUT``: a committed version
written again in another format (or shuffled, or cut into other files) without re-running
its recipe. OUT gets the files and a ``manifest.json`` naming the source dataset and version."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import numpy as np
import pyarrow as pa

import recipeflow
from recipeflow.datasets import version_reader
from recipeflow.engine import output_layout
from recipeflow.io import megatron, storage, writers
from recipeflow.recipe.models import OutputSpec, ShuffleSpec

EXPORT_FORMAT = "recipeflow.export/1"
FORMATS = {"megatron": "megatron", "jsonl": "jsonl.gz", "parquet": "parquet"}


class ExportError(ValueError):
    """The version cannot be written in the format asked, said for people."""


def export_version(ref: str, fmt: str, out: str, *, shuffle_seed: int | None = None,
                   target_shard_rows: int | None = None, target_shard_tokens: int | None = None,
                   vocab_size: int | None = None) -> dict[str, Any]:
    """Write version ``ref`` (``ROOT`` = latest, or ``ROOT@VERSION``) to the folder ``out``."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    root, name = version_reader.split_ref(ref)
    version = version_reader.open_version(root, name)
    out = storage.absolute(out)
    manifest_url = storage.join(out, "manifest.json")
    if storage.exists(manifest_url):
        raise ExportError(f"{out} holds an export already (manifest.json); choose an empty folder")
    table = read_documents(version)
    if fmt == "megatron" and output_layout.TOKEN_IDS not in table.column_names:
        raise ExportError(
            f"version {version.id} of {version.root} has no token_ids: Megatron files hold token ids; "
            "add `tokenize: {tokenizer: ..., keep_ids: true}` to the recipe and run it again"
        )
    spec = OutputSpec(
        path=out, format=FORMATS[fmt],
        shuffle=ShuffleSpec(seed=shuffle_seed) if shuffle_seed is not None else None,
        target_shard_rows=target_shard_rows, target_shard_tokens=target_shard_tokens,
    )
    files = output_layout.write_table_data(
        table, storage.join(out, "data"), spec, vocab_size or _vocab_size(version.manifest)
    )
    entries = [f.entry(out) for f in files]
    manifest = {
        "format": EXPORT_FORMAT,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "source": {
            "dataset": version.root,
            "version": version.id,
            "format": version.format,
            "manifest_sha256": hashlib.sha256(
                storage.read_bytes(storage.join(version.folder, "manifest.json"))
            ).hexdigest(),
        },
        "output": spec.model_dump(mode="json", exclude={"path"}, exclude_none=True),
        "rows": sum(f.rows for f in files),
        "tokens": output_layout.total_tokens(entries),
        "files": entries,
        "recipeflow_version": recipeflow.__version__,
    }
    storage.write_json(manifest_url, manifest)  # last: a complete export has its manifest
    return manifest


def read_documents(version: version_reader.Version) -> pa.Table:
    """Every document of a version as one table (Megatron: the documents' fields from their
    Parquet beside the pair, with ``token_ids`` and ``n_tokens`` from the .bin/.idx)."""
    tables = [_read_file(version, entry) for entry in version.manifest["files"]]
    return writers.concat(tables)


def _read_file(version: version_reader.Version, entry: dict[str, Any]) -> pa.Table:
    url = version.file_url(entry)
    if version.format != "megatron":
        rows = [row for batch in version_reader.iter_row_batches(url, version.format) for row in batch]
        return pa.Table.from_pylist(rows)
    # The documents file lives beside its pair, in the folder of the version that wrote it.
    documents = version.file_url({**entry, "path": entry["documents"]["path"]}) if "documents" in entry else None
    reader = megatron.MegatronReader(url.removesuffix(megatron.BIN_SUFFIX))
    ids = [reader.document(i).astype(np.uint32) for i in range(reader.documents)]
    token_ids = pa.array(ids, pa.list_(pa.uint32()))
    table = writers.read_table(documents) if documents else pa.table({})
    if len(table) != len(ids):
        table = pa.table({"id": [f"{entry['path']}:{i}" for i in range(len(ids))]})
    table = table.drop_columns([c for c in ("token_ids",) if c in table.column_names])
    return table.append_column("token_ids", token_ids)


def _vocab_size(manifest: dict[str, Any]) -> int | None:
    sizes = [
        (op.get("provenance") or {}).get("vocab_size")
        for op in manifest.get("operators", [])
        if op.get("operator") == "tokenize"
    ]
    sizes = [s for s in sizes if s]
    return sizes[-1] if sizes else None
