"""An output laid out as a whole (a seeded global shuffle, partitions, files cut by rows or
tokens) without holding it in memory: the same files, byte for byte, as
:func:`recipeflow.engine.output_layout.write_table_data` of all the documents at once.

Small outputs are laid out in memory. Past ``IN_MEMORY_BYTES`` of stored stage outputs the layout takes
three passes over them, one stage output in memory at a time:

1. **keys**: each document's place is decided from a few columns only (its seeded rank, its
   partition value, its tokens): the final order of all documents, and where each file starts.
2. **spill**: the order is cut into chunks of about ``chunk_bytes`` (never across a file's
   boundary); each document is appended to its chunk's spill file (local, temporary), with
   its place in the order.
3. **write**: each output file is written chunk by chunk, each chunk put in order.

Memory: about 40 bytes per document for the keys and the order (numpy arrays), one stage
output, and one chunk; local temporary disk about the size of the output.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recipeflow.engine import output_layout
from recipeflow.engine.output_layout import DOCUMENTS_SUFFIX, TOKEN_IDS, LaidFile, OutputLayoutError
from recipeflow.io import megatron, storage, writers
from recipeflow.operators import document as doc
from recipeflow.operators.chain import N_TOKENS, batch_tokens
from recipeflow.operators.sample import seeded_order
from recipeflow.recipe.models import OutputSpec

IN_MEMORY_BYTES = 64 << 20  # stage outputs (as stored: zstd Parquet; about 9x that in memory) laid out in memory
CHUNK_BYTES = 64 << 20  # documents (in memory) per spill chunk
PLACE = "__place"  # spill column: the document's place in the final order


@dataclass
class _Keys:
    """What the first pass keeps of every document, in stage-output order."""

    rows: list[int]  # per stage output, after ``prepare``
    ranks: np.ndarray | None  # seeded rank (shuffle)
    tokens: np.ndarray | None  # n_tokens (files cut by tokens)
    partitions: np.ndarray | None  # partition_by: a code per document, into ``values``
    values: list[str | None]  # the partition values (None: a document without one)
    tables: list[pa.Table]  # an empty slice of each prepared stage output: the schemas
    row_bytes: float  # in memory, on average


def write_data(
    paths: list[str],
    folder: str,
    output: OutputSpec,
    vocab_size: int | None = None,
    prepare: Callable[[pa.Table], pa.Table] = output_layout.public_columns,
    first_number: int = 0,
    in_memory_bytes: int = IN_MEMORY_BYTES,
    chunk_bytes: int = CHUNK_BYTES,
) -> list[LaidFile]:
    """:func:`recipeflow.engine.output_layout.write_data`, in bounded memory (see the module)."""
    if not output_layout.needs_whole_output(output) or _stored_bytes(paths) <= in_memory_bytes:
        return output_layout.write_data(paths, folder, output, vocab_size, prepare, first_number)
    keys = _read_keys(paths, output, prepare)
    order = _final_order(keys, output)
    files = _file_ranges(keys, output, order)
    if not files:
        return []
    chunks = _chunk_ranges(files, max(1, int(chunk_bytes // max(keys.row_bytes, 1.0))))
    schema, conflicting = writers.concat_schema(keys.tables)
    spill = tempfile.mkdtemp(prefix="recipeflow-layout-")
    try:
        _spill(paths, prepare, order, chunks, spill, schema, conflicting)
        laid: list[LaidFile] = []
        for number, (partition, start, end) in enumerate(files):
            part_folder = folder if partition is None else storage.join(folder, f"{output.partition_by}={partition}")
            parts = [c for c, (a, b) in enumerate(chunks) if start <= a and b <= end]
            pieces = _ordered_chunks(spill, parts)
            laid += [LaidFile(**{**f.__dict__, "partition": partition})
                     for f in _write_file(pieces, schema, part_folder, first_number + number, output, vocab_size)]
        return laid
    finally:
        shutil.rmtree(spill, ignore_errors=True)


def _stored_bytes(paths: list[str]) -> int:
    return sum(map(output_layout.stored_size, paths))


def _read_keys(paths: list[str], output: OutputSpec, prepare: Callable[[pa.Table], pa.Table]) -> _Keys:
    rows, ranks, tokens, partitions, tables = [], [], [], [], []
    nbytes = 0
    for path in paths:
        table = prepare(writers.read_table(path))
        rows.append(len(table))
        tables.append(writers.empty_table(table.schema))  # not a slice: that would keep the table alive
        nbytes += table.nbytes
        if output.shuffle is not None:
            ranks.append(np.asarray(seeded_order(table.column(doc.ID).to_pylist(), output.shuffle.seed)))
        if output.target_shard_tokens:
            if N_TOKENS not in table.column_names:
                raise OutputLayoutError("output.target_shard_tokens needs n_tokens: add a tokenize step")
            tokens.append(np.asarray(pc.fill_null(table.column(N_TOKENS), 0).to_numpy(zero_copy_only=False)))
        if output.partition_by:
            field = output.partition_by
            if field not in table.column_names:
                raise OutputLayoutError(
                    f"output.partition_by: the documents have no field {field!r} (fields: "
                    f"{', '.join(table.column_names)}); `phase` is written by a mix with phases"
                )
            partitions.append(pc.cast(table.column(field), pa.string()))
    total = sum(rows)
    codes, values = None, []
    if output.partition_by:
        encoded = pa.chunked_array(partitions, pa.string()).combine_chunks().dictionary_encode(null_encoding="encode")
        codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int32)
        values = encoded.dictionary.to_pylist()
    return _Keys(
        rows=rows,
        ranks=np.concatenate(ranks) if ranks else None,
        tokens=np.concatenate(tokens).astype(np.int64) if tokens else None,
        partitions=codes,
        values=values,
        tables=tables,
        row_bytes=nbytes / total if total else 1.0,
    )


def _final_order(keys: _Keys, output: OutputSpec) -> np.ndarray:
    """Documents (numbered across stage outputs) in the order they are written: shuffled, then
    grouped by partition value in order of first appearance, as the in-memory layout does."""
    total = sum(keys.rows)
    order = np.argsort(keys.ranks, kind="stable") if keys.ranks is not None else np.arange(total)
    if keys.partitions is None:
        return order
    in_order = keys.partitions[order]
    codes, firsts = np.unique(in_order, return_index=True)
    rank = np.empty(len(keys.values), dtype=np.int64)
    rank[codes[np.argsort(firsts)]] = np.arange(len(codes))  # values by first appearance
    return order[np.argsort(rank[in_order], kind="stable")]


def _file_ranges(keys: _Keys, output: OutputSpec, order: np.ndarray) -> list[tuple[str | None, int, int]]:
    """(partition value, first place, end place) of every output file, in order."""
    if not len(order):
        return []
    if keys.partitions is None:
        groups: list[tuple[str | None, int, int]] = [(None, 0, len(order))]
    else:
        in_order = keys.partitions[order]
        starts = [0, *(np.flatnonzero(np.diff(in_order)) + 1).tolist(), len(order)]
        groups = []
        for start, end in zip(starts, starts[1:]):
            value = keys.values[int(in_order[start])]
            groups.append(("null" if value is None else value, start, end))
    files = []
    for partition, start, end in groups:
        tokens = keys.tokens[order[start:end]] if keys.tokens is not None else None
        cuts = output_layout.cuts(end - start, tokens, output)
        files += [(partition, start + a, start + b) for a, b in zip(cuts, cuts[1:]) if b > a]
    return files


def _chunk_ranges(files: list[tuple[str | None, int, int]], rows: int) -> list[tuple[int, int]]:
    """Consecutive ranges of places of at most ``rows``, none across a file's boundary."""
    return [(a, min(a + rows, end)) for _, start, end in files for a in range(start, end, rows)]


def _spill(paths: list[str], prepare: Callable[[pa.Table], pa.Table], order: np.ndarray,
           chunks: list[tuple[int, int]], spill: str, schema: pa.Schema, conflicting: set[str]) -> None:
    place = np.empty(len(order), dtype=np.int64)
    place[order] = np.arange(len(order))  # document -> its place in the order
    starts = np.array([a for a, _ in chunks], dtype=np.int64)
    spill_schema = schema.append(pa.field(PLACE, pa.int64()))
    sinks: dict[int, pq.ParquetWriter] = {}
    try:
        first = 0
        for path in paths:
            table = writers.conform(prepare(writers.read_table(path)), schema, conflicting)
            places = place[first: first + len(table)]
            first += len(table)
            chunk_of = np.searchsorted(starts, places, side="right") - 1
            by_chunk = np.argsort(chunk_of, kind="stable")
            bounds = np.flatnonzero(np.diff(chunk_of[by_chunk])) + 1
            for rows in np.split(by_chunk, bounds) if len(by_chunk) else []:
                chunk = int(chunk_of[rows[0]])
                if chunk not in sinks:
                    sinks[chunk] = pq.ParquetWriter(_spill_path(spill, chunk), spill_schema, compression="lz4")
                piece = table.take(pa.array(rows)).append_column(PLACE, pa.array(places[rows], pa.int64()))
                sinks[chunk].write_table(piece)
    finally:
        for sink in sinks.values():
            sink.close()


def _spill_path(spill: str, chunk: int) -> str:
    return os.path.join(spill, f"chunk-{chunk:08d}.parquet")


def _ordered_chunks(spill: str, chunks: list[int]) -> Iterator[pa.Table]:
    """Each chunk's documents in their places, one chunk in memory at a time (then removed)."""
    for chunk in chunks:
        path = _spill_path(spill, chunk)
        piece = pq.read_table(path)
        os.remove(path)
        ordered = piece.take(pa.array(np.argsort(np.asarray(piece.column(PLACE)), kind="stable")))
        yield ordered.drop_columns([PLACE])


def _write_file(pieces: Iterator[pa.Table], schema: pa.Schema, folder: str, number: int, output: OutputSpec,
                vocab_size: int | None) -> list[LaidFile]:
    """One output file from its pieces in order: what ``output_layout`` writes of their whole."""
    if output.format == "megatron":
        if TOKEN_IDS not in schema.names:
            raise OutputLayoutError(
                "format: megatron writes token ids, but the documents have no `token_ids`: "
                "set keep_ids: true on the tokenize step"
            )
        return [_write_megatron(pieces, schema, folder, number, vocab_size)]
    counted = _Counted(pieces)
    if output.format == "parquet":
        written = writers.write_parquet_stream(counted, storage.join(folder, f"part-{number:05d}.parquet"), schema)
    else:
        written = writers.write_jsonl_file(counted, storage.join(folder, f"part-{number:05d}.jsonl.gz"))
    return [LaidFile(path=written.path, rows=written.rows, bytes=written.bytes, sha256=written.sha256,
                     tokens=counted.tokens)]


def _write_megatron(pieces: Iterator[pa.Table], schema: pa.Schema, folder: str, number: int,
                    vocab_size: int | None) -> LaidFile:
    if vocab_size is None:
        raise OutputLayoutError("format: megatron needs the tokenizer's vocabulary size for a large output")
    prefix = storage.join(folder, f"part-{number:05d}")
    others = [c for c in schema.names if c not in (TOKEN_IDS, doc.TEXT)]
    tables: list[pa.Table] = []
    with megatron.MegatronWriter(prefix, vocab_size) as writer:
        for piece in pieces:
            writer.add_table(piece, TOKEN_IDS)
            tables.append(piece.select(others))  # held for the sidecar: small beside the ids
    shard = writer.shard
    assert shard is not None
    sidecar = writers.write_parquet_stream(tables, prefix + DOCUMENTS_SUFFIX, pa.schema([schema.field(c) for c in others]))
    return LaidFile(path=shard.bin.path, rows=shard.documents, bytes=shard.bin.bytes, sha256=shard.bin.sha256,
                    tokens=shard.tokens, index=vars(shard.idx),
                    documents={"path": sidecar.path, "bytes": sidecar.bytes, "sha256": sidecar.sha256})


class _Counted:
    """The pieces of a file, passed on, with their tokens summed on the way."""

    def __init__(self, pieces: Iterator[pa.Table]):
        self._pieces = pieces
        self.tokens: int | None = None

    def __iter__(self) -> Iterator[pa.Table]:
        for piece in self._pieces:
            tokens = batch_tokens(piece)
            if tokens is not None:
                self.tokens = (self.tokens or 0) + tokens
            yield piece
