"""Writing document tables: Parquet (default) or gzipped JSONL, byte-identical for identical
tables, through fsspec (local paths by default, ``s3://`` and the like alike).

Also :func:`concat`, which joins batches whose schemas drifted apart (a field missing in one
batch, a null-only column, a field whose values changed type).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import os
from dataclasses import dataclass
from typing import IO, Any, Container, Iterable, Iterator

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recipeflow.io import storage
from recipeflow.io.arrow_json import json_default, json_strings
from recipeflow.operators import document as doc

OUTPUT_FORMATS = ("parquet", "jsonl.gz")

# Rows per Parquet row group: small enough that a reader of a slice or one batch does not
# load a whole large file, big enough for good compression.
PARQUET_ROW_GROUP_ROWS = 16_384
PARQUET_COMPRESSION = "zstd"
# gzip level of jsonl.gz outputs: level 1 compresses about 4x faster than the usual 6 for files
# about 20% larger (on the shared corpora: 100 vs 23 MB/s); compression was most of a jsonl.gz
# commit's time. Parquet (zstd) is the compact format.
JSONL_GZIP_LEVEL = 1
# JSONL is serialised this many rows at a time, so memory stays bounded.
_JSONL_BATCH_ROWS = 4_096


@dataclass(frozen=True)
class WrittenFile:
    """A file as written: where, how many rows, its size and checksum (for manifests)."""

    path: str
    rows: int
    bytes: int
    sha256: str


def write_table(table: pa.Table, url: str, fmt: str = "parquet") -> WrittenFile:
    """Write ``table`` to ``url`` as ``parquet`` (zstd) or ``jsonl.gz``.

    Identical tables give identical bytes: no timestamps in Parquet metadata, gzip mtime 0.
    The file appears whole or not at all (:func:`storage.replacing`): two runs that compute
    the same cache address at once each replace it, and neither reads the other's half.
    """
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(
            f"unknown output format {fmt!r} for {url}; expected one of: {', '.join(OUTPUT_FORMATS)}"
        )
    with storage.replacing(url) as target:
        counted = _CountingWriter(target)
        if fmt == "parquet":
            _write_parquet(table, counted)
        else:
            _write_jsonl_gz(table, counted)
    return WrittenFile(url, table.num_rows, counted.size, counted.sha256.hexdigest())


def write_parquet_stream(tables: Iterable[pa.Table], url: str, schema: pa.Schema) -> WrittenFile:
    """The rows of ``tables`` (each of ``schema``), in order, as one Parquet file: the same
    bytes as :func:`write_table` of their concatenation (the same row groups), with one table
    and one row group in memory at a time."""
    with storage.replacing(url) as target:
        counted = _CountingWriter(target)
        rows = _write_row_groups(tables, counted, schema)
    return WrittenFile(url, rows, counted.size, counted.sha256.hexdigest())


def _row_groups(tables: Iterable[pa.Table], size: int) -> Iterator[pa.Table]:
    """The rows of ``tables`` again, as tables of exactly ``size`` rows (the last: the rest)."""
    pending: list[pa.Table] = []
    held = 0
    for table in tables:
        pending.append(table)
        held += table.num_rows
        while held >= size:
            joined = pa.concat_tables(pending)
            yield joined.slice(0, size)
            rest = joined.slice(size)
            pending, held = [rest], rest.num_rows
    if held:
        yield pa.concat_tables(pending)


def write_jsonl_file(tables: Iterable[pa.Table], url: str) -> WrittenFile:
    """All rows of ``tables``, in order, as one JSONL file at ``url`` (one record per line,
    UTF-8, non-ASCII unescaped: what Data-Juicer's exporter writes; gzipped when the name ends
    in ``.gz``). Appears whole or not at all (:func:`storage.replacing`)."""
    rows = 0
    with storage.replacing(url) as target:
        counted = _CountingWriter(target)
        sink: IO[bytes] = (
            gzip.GzipFile(filename="", mode="wb", fileobj=counted, mtime=0, compresslevel=JSONL_GZIP_LEVEL)  # type: ignore[assignment]
            if url.endswith(".gz") else counted
        )
        for table in tables:
            rows += table.num_rows
            for batch in table.to_batches(max_chunksize=_JSONL_BATCH_ROWS):
                lines = [_json_line(row) for row in batch.to_pylist()]
                if lines:
                    sink.write(("\n".join(lines) + "\n").encode("utf-8"))
        if sink is not counted:
            sink.close()
    return WrittenFile(url, rows, counted.size, counted.sha256.hexdigest())


# A shard's output packed with other shards' in one file (``engine.packs``) is named by the
# file and its rows: ``<file>#rows=<start>:<stop>``. Every reader below takes either.
_PART_MARK = "#rows="


def part_url(path: str, start: int, stop: int) -> str:
    """The rows ``[start, stop)`` of the Parquet file at ``path``, as one URL."""
    return f"{path}{_PART_MARK}{start}:{stop}"


def split_part(url: str) -> tuple[str, range | None]:
    """A URL's file and its rows (``None``: the whole file)."""
    path, mark, rows = url.partition(_PART_MARK)
    if not mark:
        return url, None
    start, _, stop = rows.partition(":")
    return path, range(int(start), int(stop))


# Parts are joined up to this many rows: a pack holds up to 128 MiB, and a reader of joined
# parts holds them at once.
COALESCED_ROWS = PARQUET_ROW_GROUP_ROWS


def coalesce_parts(urls: list[str], max_rows: int = COALESCED_ROWS) -> list[str]:
    """``urls`` in order, consecutive parts of one file whose rows follow each other joined
    into parts of at most ``max_rows`` rows (a bigger part stays as it is): thousands of small
    shards packed in a few files read as a few dozen."""
    joined: list[str] = []
    last_path, last_rows = None, None
    for url in urls:
        path, rows = split_part(url)
        if (rows is not None and last_rows is not None and path == last_path and rows.start == last_rows.stop
                and rows.stop - last_rows.start <= max_rows):
            last_rows = range(last_rows.start, rows.stop)
            joined[-1] = part_url(path, last_rows.start, last_rows.stop)
            continue
        joined.append(url)
        last_path, last_rows = path, rows
    return joined


def parquet_footer(url: str) -> pq.FileMetaData:
    """A Parquet file's footer (of the whole file, when ``url`` names a part of it)."""
    path, rows = split_part(url)
    if rows is not None:
        return _packed_footer(path)[0]
    with fsspec.open(path, "rb") as f:
        return pq.ParquetFile(f).metadata


def _packed_footer(path: str) -> tuple[pq.FileMetaData, np.ndarray, tuple[str, ...]]:
    """A packed file's footer, the first row of each of its row groups (and one past the
    last), and its stamp; read once per process, since each of its hundreds of parts is opened
    by another reader. Keyed by the file's size and time too: a file written again under the
    same name is read again."""
    if storage.is_local(path):  # os.stat: fsspec's info costs more than the read it saves
        stat = os.stat(storage.absolute(path))
        stamp: tuple[str, ...] = (str(stat.st_size), str(stat.st_mtime_ns))
    else:
        fs, inner = storage.filesystem(path)
        info = fs.info(inner)
        stamp = tuple(str(info.get(k)) for k in ("size", "mtime", "ETag", "LastModified"))
    return _footer_of(path, stamp)


@functools.lru_cache(maxsize=16)
def _footer_of(path: str, stamp: tuple[str, ...]) -> tuple[pq.FileMetaData, np.ndarray, tuple[str, ...]]:
    with fsspec.open(path, "rb") as f:
        footer = pq.ParquetFile(f).metadata
    starts = np.zeros(footer.num_row_groups + 1, np.int64)
    starts[1:] = np.cumsum([footer.row_group(i).num_rows for i in range(footer.num_row_groups)])
    return footer, starts, stamp


def _read_part(path: str, rows: range, columns: list[str] | None) -> pa.Table:
    """Rows of a packed file: the row groups that hold them, then the rows. Small shards share
    a row group, and consecutive shards are read one after another: the last group read is
    kept, so a group is decoded once, not once per shard in it."""
    footer, starts, stamp = _packed_footer(path)
    if len(rows) == 0:
        schema = footer.schema.to_arrow_schema()
        return empty_table(schema if columns is None else pa.schema([schema.field(c) for c in columns]))
    first = int(np.searchsorted(starts, rows.start, side="right")) - 1
    stop = int(np.searchsorted(starts, rows.stop, side="left"))
    if stop - first == 1:
        table = _row_group(path, stamp, first, tuple(columns) if columns is not None else None)
    else:
        with fsspec.open(path, "rb") as f:
            table = pq.ParquetFile(f, metadata=footer).read_row_groups(range(first, stop), columns=columns)
    return table.slice(rows.start - int(starts[first]), len(rows))


@functools.lru_cache(maxsize=4)  # a stage reads its input's parts and its decision's
def _row_group(path: str, stamp: tuple[str, ...], group: int, columns: tuple[str, ...] | None) -> pa.Table:
    with fsspec.open(path, "rb") as f:
        parquet = pq.ParquetFile(f, metadata=_footer_of(path, stamp)[0])
        return parquet.read_row_group(group, columns=list(columns) if columns is not None else None)


def read_table(url: str, columns: list[str] | None = None) -> pa.Table:
    """Read a Parquet file written by :func:`write_table`, or a part of a packed file (only
    ``columns`` when given)."""
    path, rows = split_part(url)
    try:
        if rows is not None:
            return _read_part(path, rows, columns)
        with fsspec.open(path, "rb") as f:
            return pq.ParquetFile(f).read(columns=columns)
    except FileNotFoundError:
        raise FileNotFoundError(f"no stage output at {url}: it was not written or was removed")
    except pa.ArrowInvalid as error:
        raise ValueError(f"{url} is not a readable Parquet file: {error}") from error


def column_names(url: str) -> list[str]:
    """The columns of a Parquet file (or a part of one), from its footer alone."""
    return parquet_footer(url).schema.to_arrow_schema().names


def row_count(url: str) -> int:
    """Rows of a Parquet file (or a part of one), from its footer alone."""
    _, rows = split_part(url)
    return parquet_footer(url).num_rows if rows is None else len(rows)


def stored_bytes(url: str) -> int:
    """Bytes a file takes in storage; of a part, its share of its row groups' (uncompressed:
    about what reading it holds in memory)."""
    path, rows = split_part(url)
    if rows is None:
        fs, inner = storage.filesystem(path)
        return int(fs.size(inner))
    footer, starts, _ = _packed_footer(path)
    total = sum(footer.row_group(i).total_byte_size for i in range(footer.num_row_groups))
    return int(total * len(rows) / max(1, int(starts[-1])))


def empty_table(schema: pa.Schema) -> pa.Table:
    """A table of no rows with ``schema``, without importing pandas: ``Schema.empty_table()``
    does (0.3 s of a commit)."""
    return pa.Table.from_batches([], schema=schema)


def concat(tables: list[pa.Table]) -> pa.Table:
    """Concatenate batches whose schemas may differ.

    Missing columns become nulls and null-typed columns take the other batches' type
    (Arrow's permissive promotion). A column whose types cannot be reconciled (int in one
    batch, string in another) is JSON-encoded to strings in every batch. Columns come out as
    ``id``, ``text``, then in order of first appearance.
    """
    if not tables:
        return pa.table({doc.ID: pa.array([], pa.string()), doc.TEXT: pa.array([], pa.string())})
    if len(tables) == 1 and _in_column_order(tables[0].column_names):
        return tables[0]  # a small shard's one batch: nothing to join (0.05 ms a call)
    try:
        joined = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        conflicting = _conflicting_columns(tables)
        tables = [_json_encode_columns(t, conflicting) for t in tables]
        joined = pa.concat_tables(tables, promote_options="permissive")
    return joined.select(_column_order(tables))


def concat_schema(tables: list[pa.Table]) -> tuple[pa.Schema, set[str]]:
    """The schema :func:`concat` gives ``tables`` (empty ones do: only their types count), and
    the columns it JSON-encodes because their types conflict — for :func:`conform`."""
    return concat([t.slice(0, 0) for t in tables]).schema, _conflicting_columns(tables)


def conform(table: pa.Table, schema: pa.Schema, conflicting: set[str]) -> pa.Table:
    """``table`` as :func:`concat` would have it among the tables ``schema`` and
    ``conflicting`` came from (:func:`concat_schema`): a part of the concatenation, made alone."""
    if table.schema.equals(schema):
        return table
    table = _json_encode_columns(table, conflicting & set(table.column_names))
    joined = pa.concat_tables([table, empty_table(schema)], promote_options="permissive")
    return joined.select(schema.names).cast(schema)


def _leading(names: Container[str]) -> list[str]:
    """The columns that come first, of those present: ``id``, then ``text``."""
    return [name for name in (doc.ID, doc.TEXT) if name in names]


def _in_column_order(names: list[str]) -> bool:
    """Whether one table's columns are as :func:`_column_order` puts them."""
    first = _leading(names)
    return names[:len(first)] == first


def _column_order(tables: list[pa.Table]) -> list[str]:
    names: dict[str, None] = {}
    for table in tables:
        names.update(dict.fromkeys(table.column_names))
    first = _leading(names)
    return first + [name for name in names if name not in first]


def _conflicting_columns(tables: list[pa.Table]) -> set[str]:
    """Columns whose types across the tables cannot be unified."""
    fields: dict[str, list[pa.Field]] = {}
    for table in tables:
        for f in table.schema:
            fields.setdefault(f.name, []).append(f)
    conflicting = set()
    for name, versions in fields.items():
        try:
            pa.unify_schemas([pa.schema([f]) for f in versions], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            conflicting.add(name)
    return conflicting


def _json_encode_columns(table: pa.Table, names: set[str]) -> pa.Table:
    for name in names:
        if name in table.column_names:
            index = table.schema.get_field_index(name)
            values = json_strings(table.column(name).to_pylist())
            table = table.set_column(index, name, values)
    return table


# --- formats --------------------------------------------------------------------------------


def _write_parquet(table: pa.Table, target: IO[bytes]) -> None:
    _write_row_groups([table], target, table.schema)


def _write_row_groups(tables: Iterable[pa.Table], target: IO[bytes], schema: pa.Schema) -> int:
    """Write the rows of ``tables`` as one Parquet file to ``target``; returns the rows written."""
    with parquet_writer(target, schema) as writer:
        rows, _ = write_row_groups(writer, tables)
    return rows


def parquet_writer(target: IO[bytes] | str, schema: pa.Schema) -> pq.ParquetWriter:
    """A Parquet writer as every file here is written: zstd, dictionaries where they pay."""
    return pq.ParquetWriter(target, schema, compression=PARQUET_COMPRESSION, use_dictionary=_dictionary_columns(schema))


def write_row_groups(writer: pq.ParquetWriter, tables: Iterable[pa.Table]) -> tuple[int, int]:
    """Write the rows of ``tables`` as row groups of ``PARQUET_ROW_GROUP_ROWS``; returns the
    rows and row groups written. pyarrow writes no timestamps, and each row group is made one
    contiguous chunk first: Arrow cuts pages where a column's chunks end, so the same rows in
    other chunks would give other bytes (the in-memory and the spilled layout of an output must
    agree)."""
    rows = groups = 0
    for group in _row_groups(tables, PARQUET_ROW_GROUP_ROWS):
        try:
            group = group.combine_chunks()
        except pa.ArrowInvalid:  # over 2 GB of strings in one group: left in its chunks
            pass
        writer.write_table(group, row_group_size=PARQUET_ROW_GROUP_ROWS)
        rows += group.num_rows
        groups += 1
    return rows, groups


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """Leaf columns to dictionary-encode: all but those inside lists. A list of token ids (or an
    embedding) has too many distinct values: trying a dictionary first made writing token ids 3x
    slower and the file 5% larger."""
    leaves: list[str] = []

    def visit(field: pa.Field, prefix: str) -> None:
        if pa.types.is_list(field.type) or pa.types.is_large_list(field.type) or pa.types.is_fixed_size_list(field.type):
            return
        if pa.types.is_struct(field.type):
            for child in field.type:
                visit(child, f"{prefix}{field.name}.")
            return
        leaves.append(prefix + field.name)

    for field in schema:
        visit(field, "")
    return leaves


def _write_jsonl_gz(table: pa.Table, target: IO[bytes]) -> None:
    # No file name and mtime 0 in the gzip header, so identical tables give identical bytes.
    with gzip.GzipFile(filename="", mode="wb", fileobj=target, mtime=0, compresslevel=JSONL_GZIP_LEVEL) as gz:
        for batch in table.to_batches(max_chunksize=_JSONL_BATCH_ROWS):
            lines = [_json_line(row) for row in batch.to_pylist()]
            if lines:
                gz.write(("\n".join(lines) + "\n").encode("utf-8"))


def _json_line(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, default=json_default)


# --- I/O helpers ----------------------------------------------------------------------------


class _CountingWriter(io.RawIOBase):
    """Passes bytes on to a file while counting and hashing them, so writing needs no second
    pass to fill in a manifest's size and checksum."""

    def __init__(self, target: IO[bytes]):
        self._target = target
        self.size = 0
        self.sha256 = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.size

    def write(self, data: Any) -> int:
        data = bytes(data)
        self._target.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self._target.flush()

    def close(self) -> None:
        # Closing the target is the caller's business (it may still need flushing to storage).
        super().close()
