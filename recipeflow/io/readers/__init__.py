"""Reading inputs: list the files, scan each once, cut shards, read a shard as Arrow batches.

Formats: JSONL (plain, ``.gz``, ``.zst``), Parquet, WARC (``response`` records holding HTML)
and plain text (one document per file), one module each (:mod:`.jsonl`, :mod:`.parquet`,
:mod:`.warc`, :mod:`.text`) behind the shared row model (:mod:`.records`). All I/O goes through
fsspec, so a local path and an ``s3://`` URL read alike.

A record that cannot be read (bad JSON, invalid UTF-8, no text field, a broken WARC record, a
corrupt compressed stream) never stops a run: it becomes a row of the ``unreadable`` table, with
the lineage columns and the reason, so it is counted and can be inspected.

Scanning and reading share the code that finds records, so the record numbers that
:func:`scan_file` counts and :func:`cut_shards` slices are exactly those :func:`read_shard`
yields. To add a format: a module with ``count_<format>`` (for scanning) and ``<format>_rows``
(for reading), registered in :mod:`.scanning` and :mod:`.reading`, and its extension in
:mod:`.formats`.
"""

from recipeflow.io.readers.formats import FORMATS, MAX_UNREADABLE_TEXT_BYTES, READ_OPERATOR, infer_format
from recipeflow.io.readers.listing import InputNotFound, expand_input, input_root, relative_path
from recipeflow.io.readers.reading import read_shard
from recipeflow.io.readers.scanning import scan_file
from recipeflow.io.readers.shards import FileScan, FileSlice, SourceShard, cut_shards

__all__ = [
    "FORMATS",
    "MAX_UNREADABLE_TEXT_BYTES",
    "READ_OPERATOR",
    "FileScan",
    "FileSlice",
    "InputNotFound",
    "SourceShard",
    "cut_shards",
    "expand_input",
    "infer_format",
    "input_root",
    "read_shard",
    "relative_path",
    "scan_file",
]
