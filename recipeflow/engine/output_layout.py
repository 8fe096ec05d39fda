"""How an output's documents are laid out in its version folder: order (input order, or a
seeded global shuffle), partitions (one folder per value of a field, e.g. a mix's phases),
files of about equal size (by documents or by tokens), and the format (Parquet, JSONL,
Megatron's indexed dataset). Every written file is counted in documents and tokens."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recipeflow.io import megatron, storage, writers
from recipeflow.operators import document as doc
from recipeflow.operators.chain import N_TOKENS, batch_tokens
from recipeflow.operators.sample import seeded_order
from recipeflow.recipe.models import OutputSpec

TOKEN_IDS = "token_ids"
DOCUMENTS_SUFFIX = ".documents.parquet"  # beside a Megatron pair: the documents' other fields


class OutputLayoutError(ValueError):
    """The documents do not have what the output asks for (token ids, n_tokens, a field)."""


@dataclass(frozen=True)
class LaidFile:
    """One data file (a Megatron pair counts as one, its .bin as ``path``) as the manifest
    lists it."""

    path: str
    rows: int
    bytes: int
    sha256: str
    tokens: int | None = None
    partition: str | None = None
    index: dict[str, Any] | None = None  # Megatron: the .idx file {path, bytes, sha256}
    # Megatron: a Parquet file of the documents' other fields (id, lineage, n_tokens, phase...)
    # row for row, so diff, trace and export still know which document each sequence is.
    documents: dict[str, Any] | None = None

    def entry(self, version_dir: str) -> dict[str, Any]:
        def relative(path: str) -> str:
            return path[len(version_dir) + 1:] if path.startswith(version_dir) else path

        entry: dict[str, Any] = {"path": relative(self.path), "rows": self.rows, "bytes": self.bytes,
                                 "sha256": self.sha256}
        if self.tokens is not None:
            entry["tokens"] = self.tokens
        if self.partition is not None:
            entry["partition"] = self.partition
        for key in ("index", "documents"):
            value = getattr(self, key)
            if value is not None:
                entry[key] = {**value, "path": relative(value["path"])}
        return entry


def public_columns(table: pa.Table) -> pa.Table:
    """Drop working columns (``__``-prefixed) that must not reach a dataset."""
    return table.select([n for n in table.column_names if not n.startswith("__")])


def needs_whole_output(output: OutputSpec) -> bool:
    """Whether the layout needs every document at once (else parts are streamed one by one)."""
    return bool(output.shuffle or output.target_shard_rows or output.target_shard_tokens or output.partition_by)


# Stage outputs read at once when streamed: with thousands of small shards the copy is
# latency-bound (open, read: milliseconds each), and Arrow's readers and writers release the
# GIL. A window of at most this many shards, and of at most _COPY_WINDOW_BYTES of stored
# (compressed) bytes, is read at a time, and at most _WRITES_AHEAD part waits to be written:
# the flow run's memory is bounded by shard size, whatever the output's size.
_COPY_THREADS = 8
_COPY_WINDOW_BYTES = 16 << 20
_WRITES_AHEAD = 1
# Streamed parts join consecutive shards' documents until a part holds this many: a run of
# thousands of small shards publishes a few files, not thousands of tiny ones (which every
# reader opens one by one). Shards of the default size (10,000) stay one part each.
MIN_PART_ROWS = 10_000


def write_data(
    paths: list[str],
    folder: str,
    output: OutputSpec,
    vocab_size: int | None = None,
    prepare: Callable[[pa.Table], pa.Table] = public_columns,
    first_number: int = 0,
) -> list[LaidFile]:
    """Write the documents of the stage outputs ``paths`` (in order) under ``folder``, each
    table passed through ``prepare`` (the columns published) first; files are numbered from
    ``first_number``."""
    if not needs_whole_output(output):
        return _stream_parts(paths, folder, output, vocab_size, prepare, first_number)
    table = writers.concat([prepare(writers.read_table(p)) for p in paths])
    return write_table_data(table, folder, output, vocab_size, first_number)


def _stream_parts(paths: list[str], folder: str, output: OutputSpec, vocab_size: int | None,
                  prepare: Callable[[pa.Table], pa.Table], first_number: int) -> list[LaidFile]:
    """Parts of at least ``MIN_PART_ROWS`` documents (the last may be smaller), in order,
    holding a window of shards and the pending parts in memory at a time."""
    writes = []
    pending: list[pa.Table] = []
    with ThreadPoolExecutor(_COPY_THREADS) as pool:

        def flush() -> None:
            number = first_number + len(writes)
            part = writers.concat(pending) if len(pending) > 1 else pending[0]
            writes.append(pool.submit(_write_file, part, folder, number, output, vocab_size))
            pending.clear()
            if len(writes) > _WRITES_AHEAD:
                writes[-1 - _WRITES_AHEAD].result()

        for window in _windows(paths, list(pool.map(stored_size, paths))):
            for table in pool.map(lambda p: prepare(writers.read_table(p)), window):
                if len(table):
                    pending.append(table)
                if sum(len(t) for t in pending) >= MIN_PART_ROWS:
                    flush()
        if pending:
            flush()
        return [laid for write in writes for laid in write.result()]


def _windows(paths: list[str], sizes: list[int]) -> Iterator[list[str]]:
    """Consecutive runs of at most ``_COPY_THREADS`` paths and ``_COPY_WINDOW_BYTES`` (a
    bigger shard is a window of its own)."""
    window: list[str] = []
    held = 0
    for path, size in zip(paths, sizes):
        if window and (len(window) == _COPY_THREADS or held + size > _COPY_WINDOW_BYTES):
            yield window
            window, held = [], 0
        window.append(path)
        held += size
    if window:
        yield window


def stored_size(url: str) -> int:
    """A stored file's size in bytes (of a part of a pack: about what reading it holds)."""
    return writers.stored_bytes(url)


def write_table_data(
    table: pa.Table, folder: str, output: OutputSpec, vocab_size: int | None = None, first_number: int = 0
) -> list[LaidFile]:
    """Write one table of documents under ``folder`` as ``output`` lays it out."""
    if len(table) == 0:
        return []
    if output.shuffle is not None:
        ranks = np.asarray(seeded_order(table.column(doc.ID).to_pylist(), output.shuffle.seed).to_numpy())
        table = table.take(pa.array(np.argsort(ranks, kind="stable")))
    files: list[LaidFile] = []
    for value, part in _partitions(table, output.partition_by):
        part_folder = folder if value is None else storage.join(folder, f"{output.partition_by}={value}")
        for shard in _shards(part, output):
            for laid in _write_file(shard, part_folder, first_number + len(files), output, vocab_size):
                files.append(LaidFile(**{**laid.__dict__, "partition": value}))
    return files


def _partitions(table: pa.Table, field: str | None) -> Iterable[tuple[str | None, pa.Table]]:
    """(value, rows) per value of ``field``, values in order of first appearance."""
    if field is None:
        yield None, table
        return
    if field not in table.column_names:
        raise OutputLayoutError(
            f"output.partition_by: the documents have no field {field!r} (fields: "
            f"{', '.join(table.column_names)}); `phase` is written by a mix with phases"
        )
    column = pc.cast(table.column(field), pa.string())
    values = [v for v in dict.fromkeys(column.to_pylist())]
    for value in values:
        mask = pc.is_null(column) if value is None else pc.fill_null(pc.equal(column, value), False)
        yield ("null" if value is None else value), table.filter(mask)


def _shards(table: pa.Table, output: OutputSpec) -> list[pa.Table]:
    """Consecutive slices of about equal documents or tokens."""
    tokens = None
    if output.target_shard_tokens:
        if N_TOKENS not in table.column_names:
            raise OutputLayoutError("output.target_shard_tokens needs n_tokens: add a tokenize step")
        tokens = np.asarray(pc.fill_null(table.column(N_TOKENS), 0).to_numpy(zero_copy_only=False))
    bounds = cuts(len(table), tokens, output)
    return [table.slice(a, b - a) for a, b in zip(bounds, bounds[1:]) if b > a]


def cuts(rows: int, tokens: np.ndarray | None, output: OutputSpec) -> list[int]:
    """Where consecutive files of about equal documents (``target_shard_rows``) or tokens
    (``target_shard_tokens``; ``tokens``: each document's) start, and the end: ``[0, ..., rows]``."""
    if output.target_shard_rows:
        count = max(1, round(rows / output.target_shard_rows))
        return [round(rows * k / count) for k in range(count + 1)]
    if output.target_shard_tokens and tokens is not None:
        ends = np.cumsum(tokens)
        total = int(ends[-1]) if len(ends) else 0
        count = max(1, round(total / output.target_shard_tokens))
        # Cut after the document whose end is closest to each k/count of the tokens.
        return [0] + [int(np.searchsorted(ends - 0.5 * np.diff(ends, prepend=0), total * k / count))
                      for k in range(1, count)] + [rows]
    return [0, rows]


def _write_file(table: pa.Table, folder: str, number: int, output: OutputSpec,
                vocab_size: int | None) -> list[LaidFile]:
    tokens = batch_tokens(table)
    if output.format == "megatron":
        if TOKEN_IDS not in table.column_names:
            raise OutputLayoutError(
                "format: megatron writes token ids, but the documents have no `token_ids`: "
                "set keep_ids: true on the tokenize step"
            )
        if vocab_size is None:  # no tokenizer provenance: the largest id decides the dtype
            vocab_size = int(pc.max(pc.list_flatten(table.column(TOKEN_IDS))).as_py() or 0) + 1
        prefix = storage.join(folder, f"part-{number:05d}")
        shard = megatron.write_tables(prefix, [table], vocab_size)
        others = table.select([c for c in table.column_names if c not in (TOKEN_IDS, doc.TEXT)])
        sidecar = writers.write_table(others, prefix + DOCUMENTS_SUFFIX)
        return [LaidFile(path=shard.bin.path, rows=shard.documents, bytes=shard.bin.bytes,
                         sha256=shard.bin.sha256, tokens=shard.tokens, index=vars(shard.idx),
                         documents={"path": sidecar.path, "bytes": sidecar.bytes, "sha256": sidecar.sha256})]
    extension = "parquet" if output.format == "parquet" else "jsonl.gz"
    written = writers.write_table(table, storage.join(folder, f"part-{number:05d}.{extension}"), output.format)
    return [LaidFile(path=written.path, rows=written.rows, bytes=written.bytes, sha256=written.sha256, tokens=tokens)]


def partition_counts(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per partition of a version's file entries (:meth:`LaidFile.entry`): documents, tokens
    and files."""
    counts: dict[str, dict[str, Any]] = {}
    for f in entries:
        if f.get("partition") is None:
            continue
        row = counts.setdefault(f["partition"], {"rows": 0, "tokens": None, "files": 0})
        row["rows"] += f["rows"]
        row["files"] += 1
        if f.get("tokens") is not None:
            row["tokens"] = (row["tokens"] or 0) + f["tokens"]
    return counts


def total_tokens(entries: list[dict[str, Any]]) -> int | None:
    """Tokens in a version's file entries (None: no file counted any)."""
    counted = [f["tokens"] for f in entries if f.get("tokens") is not None]
    return sum(counted) if counted else None
