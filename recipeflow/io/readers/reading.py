"""Reading a shard as Arrow batches: each format's rows, batched by count and text size."""


from typing import Iterator

import pyarrow as pa

from recipeflow.io.readers.formats import MAX_BATCH_TEXT_BYTES, check_format
from recipeflow.io.readers.jsonl import jsonl_rows
from recipeflow.io.readers.parquet import parquet_batches
from recipeflow.io.readers.records import Row, rows_to_tables
from recipeflow.io.readers.shards import SourceShard
from recipeflow.io.readers.text import text_rows
from recipeflow.io.readers.warc import warc_rows

def read_shard(
    shard: SourceShard, batch_size: int = 1000
) -> Iterator[tuple[pa.Table, pa.Table | None]]:
    """Read a shard: ``(documents, unreadable)`` per batch of up to ``batch_size`` records, in
    record order. ``unreadable`` is None when the batch had no bad record.

    Documents: ``id``, ``text``, the record's other fields, then the lineage columns. Fields
    named like ``id``, ``text`` or a lineage column (other than the configured id/text
    fields) are dropped: the reader's columns win.
    """
    check_format(shard.format)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if shard.format == "parquet":
        for piece in shard.slices:
            yield from parquet_batches(shard, piece, batch_size)
        return
    yield from _batches(_shard_rows(shard), shard.input_name, batch_size)


def _shard_rows(shard: SourceShard) -> Iterator[Row]:
    readers = {"jsonl": jsonl_rows, "warc": warc_rows, "text": text_rows}
    for piece in shard.slices:
        yield from readers[shard.format](shard, piece)


def _batches(
    rows: Iterator[Row], input_name: str, batch_size: int
) -> Iterator[tuple[pa.Table, pa.Table | None]]:
    batch: list[Row] = []
    text_bytes = 0
    for row in rows:
        batch.append(row)
        text_bytes += len(row.text)
        if len(batch) >= batch_size or text_bytes >= MAX_BATCH_TEXT_BYTES:
            yield rows_to_tables(batch, input_name)
            batch, text_bytes = [], 0
    if batch:
        yield rows_to_tables(batch, input_name)
