"""Parquet: rows read in batches; the text and id fields chosen by the input."""


import json
from typing import Iterator

import fsspec
import fsspec.compression
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recipeflow.io import storage
from recipeflow.operators import document as doc
from recipeflow.io.readers.formats import RESERVED_COLUMNS
from recipeflow.io.readers.jsonl import id_string
from recipeflow.io.readers.records import Row, default_id, lineage_columns, rows_to_tables, unreadable_table, unreadable_text
from recipeflow.io.readers.shards import FileSlice, SourceShard

def count_parquet(url: str) -> int:
    try:
        with fsspec.open(url, "rb") as f:
            return pq.ParquetFile(f).metadata.num_rows
    except (pa.ArrowException, OSError):
        return 1  # not a Parquet file: read_shard reports one unreadable record


def parquet_batches(
    shard: SourceShard, piece: FileSlice, batch_size: int
) -> Iterator[tuple[pa.Table, pa.Table | None]]:
    with storage.open_binary(piece.url) as f:
        try:
            parquet = pq.ParquetFile(f)
        except (pa.ArrowException, OSError) as error:
            if piece.start == 0:
                row = Row(0, piece.url, default_id(shard, piece.url, 0), "",
                           problem=f"not a readable Parquet file: {error}")
                yield rows_to_tables([row], shard.input_name)
            return
        for first_record, part in _parquet_row_batches(parquet, piece, batch_size):
            if isinstance(part, pa.RecordBatch):
                yield _parquet_tables(shard, piece.url, first_record, pa.Table.from_batches([part]))
            else:
                yield _unreadable_rows(shard, piece.url, first_record, *part)


def _parquet_row_batches(
    parquet: pq.ParquetFile, piece: FileSlice, batch_size: int
) -> Iterator[tuple[int, pa.RecordBatch | tuple[int, str]]]:
    """Rows ``[start, stop)`` in batches, reading only the row groups that hold them, one row
    group at a time: a row group that cannot be decoded (a corrupt page) yields
    ``(first_record, (count, problem))`` for its rows not yet read, and reading goes on with
    the next group, so one bad page costs its rows and not the file."""
    row = 0
    for index in range(parquet.metadata.num_row_groups):
        group_start, rows = row, parquet.metadata.row_group(index).num_rows
        row += rows
        if not (group_start < piece.stop and group_start + rows > piece.start):
            continue
        lo, hi = max(piece.start, group_start), min(piece.stop, group_start + rows)
        at = group_start  # the file row of the next batch of this group
        try:
            for batch in parquet.iter_batches(batch_size=batch_size, row_groups=[index]):
                first, last = max(lo, at), min(hi, at + len(batch))
                if first < last:
                    yield first, batch.slice(first - at, last - first)
                at += len(batch)
                if at >= hi:
                    break
        except (pa.ArrowException, OSError) as error:
            first = max(lo, at)
            if first < hi:
                problem = (f"row group {index} (rows {group_start}-{group_start + rows - 1}) of "
                           f"{piece.url} cannot be decoded: {error}")
                yield first, (hi - first, problem)


def _unreadable_rows(
    shard: SourceShard, url: str, first_record: int, count: int, problem: str
) -> tuple[pa.Table, pa.Table | None]:
    """One unreadable record per row of a row group that cannot be decoded."""
    rows = [Row(record, url, default_id(shard, url, record), "", problem=problem)
            for record in range(first_record, first_record + count)]
    return rows_to_tables(rows, shard.input_name)


def _parquet_tables(
    shard: SourceShard, url: str, first_record: int, table: pa.Table
) -> tuple[pa.Table, pa.Table | None]:
    """Columnar: documents keep the file's own column types."""
    records = list(range(first_record, first_record + len(table)))
    texts, problems = _parquet_texts(table, shard.text_field)
    ids = _parquet_ids(shard, url, table, records)
    good = pc.invert(pc.is_valid(problems))
    metadata = {
        name: table.column(name)
        for name in table.column_names
        if name not in (shard.text_field, shard.id_field) and name not in RESERVED_COLUMNS
    }
    columns = {doc.ID: ids, doc.TEXT: texts, **metadata}
    columns.update(lineage_columns(shard.input_name, url, records))
    documents = pa.table(columns).filter(good)
    if len(documents) == len(table):
        return documents, None
    bad = [i for i, problem in enumerate(problems.to_pylist()) if problem is not None]
    rows = [
        Row(records[i], url, ids[i].as_py(), _row_as_json(table, i), problem=problems[i].as_py())
        for i in bad
    ]
    return documents, unreadable_table(rows, shard.input_name)


def _parquet_texts(table: pa.Table, text_field: str) -> tuple[pa.Array, pa.Array]:
    """The text column as strings, and per row the problem (null where the text is fine)."""
    n = len(table)
    if text_field not in table.column_names:
        fields = ", ".join(table.column_names[:10])
        problem = f"no {text_field!r} column (columns: {fields})"
        return pa.nulls(n, pa.string()), pa.array([problem] * n, pa.string())
    column = table.column(text_field).combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        texts = column.cast(pa.string())
    elif pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        texts = pa.array([_utf8_or_none(v) for v in column.to_pylist()], pa.string())
    else:
        problem = f"column {text_field!r} is {column.type}, not a string"
        return pa.nulls(n, pa.string()), pa.array([problem] * n, pa.string())
    problems = [None if t.is_valid else _null_text_problem(column[i], text_field)
                for i, t in enumerate(texts)] if texts.null_count else [None] * n
    return texts, pa.array(problems, pa.string())


def _utf8_or_none(value: bytes | None) -> str | None:
    try:
        return None if value is None else value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _null_text_problem(value: pa.Scalar, text_field: str) -> str:
    return f"invalid UTF-8 in {text_field!r}" if value.is_valid else f"{text_field!r} is null"


def _parquet_ids(shard: SourceShard, url: str, table: pa.Table, records: list[int]) -> pa.Array:
    """The id column's values as strings; the derived id where it is missing or null."""
    derived = [default_id(shard, url, record) for record in records]
    if not shard.id_field or shard.id_field not in table.column_names:
        return pa.array(derived, pa.string())
    column = table.column(shard.id_field).combine_chunks()
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or \
            pa.types.is_integer(column.type):
        given = column.cast(pa.string())
    else:
        given = pa.array([None if v is None else id_string(v) for v in column.to_pylist()],
                         pa.string())
    return pc.if_else(pc.is_valid(given), given, pa.array(derived, pa.string()))


def _row_as_json(table: pa.Table, index: int) -> str:
    """An unreadable Parquet row, shown as JSON (capped like a raw line)."""
    row = table.slice(index, 1).to_pylist()[0]
    text = json.dumps(row, ensure_ascii=False, default=str)
    return unreadable_text(text.encode("utf-8"))


# --------------------------------------------------------------------------------------------
# Building Arrow tables
# --------------------------------------------------------------------------------------------
