"""``recipeflow export ROOT[@VERSION] --format megatron|jsonl|parquet OUT``: a committed version
written again in another format (or shuffled, or cut into other files) without re-running
its recipe. OUT gets the files and a ``manifest.json`` naming the source dataset and version.

Memory stays bounded by a file, not the version: the version's files are read as Parquet (its
own, or each of its JSON lines and Megatron files converted to a temporary Parquet file, a batch
at a time), then laid out by :mod:`recipeflow.engine.spill_layout`, as a commit is."""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa

import recipeflow
from recipeflow.datasets import version_reader
from recipeflow.engine import output_layout, snapshot, spill_layout
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
    spec = OutputSpec(
        path=out, format=FORMATS[fmt],
        shuffle=ShuffleSpec(seed=shuffle_seed) if shuffle_seed is not None else None,
        target_shard_rows=target_shard_rows, target_shard_tokens=target_shard_tokens,
    )
    with tempfile.TemporaryDirectory(prefix="recipeflow-export-") as spill:
        sources = document_files(version, Path(spill))
        if fmt == "megatron" and (not sources or output_layout.TOKEN_IDS not in writers.column_names(sources[0])):
            raise ExportError(
                f"version {version.id} of {version.root} has no token_ids: Megatron files hold token ids; "
                "add `tokenize: {tokenizer: ..., keep_ids: true}` to the recipe and run it again"
            )
        files = spill_layout.write_data(
            sources, storage.join(out, "data"), spec, vocab_size or _vocab_size(version.manifest)
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


def document_files(version: version_reader.Version, spill: Path) -> list[str]:
    """The version's documents as Parquet files, in order: its own files when it is Parquet;
    else each file converted into ``spill`` (Megatron: the documents' fields from the Parquet
    beside each pair, with ``token_ids`` from the .bin/.idx)."""
    if version.format == "parquet":
        return [version.file_url(entry) for entry in version.manifest["files"]]
    encoded = (version.manifest.get("schemas") or {}).get("files")
    schema = snapshot.decode_schema(encoded) if encoded else None
    if schema is None and version.format != "megatron":  # JSON lines: their types are not in the files
        schema = _inferred_schema(version)
    paths = []
    for number, entry in enumerate(version.manifest["files"]):
        batches = _megatron_batches(version, entry) if version.format == "megatron" else (
            pa.Table.from_pylist(rows, schema=schema)
            for rows in version_reader.iter_row_batches(version.file_url(entry), version.format)
        )
        first = next(batches, None)
        if first is None:
            continue
        path = str(spill / f"file-{number:05d}.parquet")
        writers.write_parquet_stream(_chain(first, batches), path, first.schema)
        paths.append(path)
    return paths


def _inferred_schema(version: version_reader.Version) -> pa.Schema | None:
    """The types of a JSON-lines version that recorded none (written before versions kept
    their schema), read from every row, a batch at a time: a field null in the first batch and
    text in a later one is text; integers and floats of one field are floats."""
    schema = None
    for entry in version.manifest["files"]:
        for rows in version_reader.iter_row_batches(version.file_url(entry), version.format):
            found = pa.Table.from_pylist(rows).schema
            schema = found if schema is None else pa.unify_schemas([schema, found], promote_options="permissive")
    return schema


def _chain(first: pa.Table, rest: Iterator[pa.Table]) -> Iterator[pa.Table]:
    yield first
    yield from rest


def _megatron_batches(version: version_reader.Version, entry: dict[str, Any]) -> Iterator[pa.Table]:
    """One Megatron pair's documents, ``version_reader.BATCH_ROWS`` at a time."""
    url = version.file_url(entry)
    # The documents file lives beside its pair, in the folder of the version that wrote it.
    documents = version.file_url({**entry, "path": entry["documents"]["path"]}) if "documents" in entry else None
    reader = megatron.MegatronReader(url.removesuffix(megatron.BIN_SUFFIX))
    fields = writers.read_table(documents) if documents else pa.table({})
    if len(fields) != reader.documents:
        fields = pa.table({"id": [f"{entry['path']}:{i}" for i in range(reader.documents)]})
    fields = fields.drop_columns([c for c in (output_layout.TOKEN_IDS,) if c in fields.column_names])
    for start in range(0, reader.documents, version_reader.BATCH_ROWS):
        stop = min(start + version_reader.BATCH_ROWS, reader.documents)
        ids = [reader.document(i).astype(np.uint32) for i in range(start, stop)]
        yield fields.slice(start, stop - start).append_column(output_layout.TOKEN_IDS, pa.array(ids, pa.list_(pa.uint32())))


def _vocab_size(manifest: dict[str, Any]) -> int | None:
    sizes = [
        (op.get("provenance") or {}).get("vocab_size")
        for op in manifest.get("operators", [])
        if op.get("operator") == "tokenize"
    ]
    sizes = [s for s in sizes if s]
    return sizes[-1] if sizes else None
