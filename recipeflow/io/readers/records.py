"""The rows every format reader yields, and turning a batch of them into the documents table
and the unreadable-records table (with lineage columns and reasons)."""


from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from recipeflow.operators import document as doc
from recipeflow.operators.base import Rejection
from recipeflow.io.arrow_json import to_arrow_column
from recipeflow.io.readers.formats import MAX_UNREADABLE_TEXT_BYTES, READ_OPERATOR, RESERVED_COLUMNS
from recipeflow.io.readers.listing import relative_path
from recipeflow.io.readers.shards import SourceShard

@dataclass
class Row:
    """One record as read: a document, or (``problem`` set) an unreadable record."""

    record: int
    url: str
    doc_id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None



def default_id(shard: SourceShard, url: str, record: int | None) -> str:
    path = f"{shard.input_name}/{relative_path(url, shard.root)}"
    return path if record is None else f"{path}:{record}"


def unreadable_text(raw: bytes) -> str:
    return raw[:MAX_UNREADABLE_TEXT_BYTES].rstrip(b"\r\n").decode("utf-8", errors="replace")



def rows_to_tables(rows: list[Row], input_name: str) -> tuple[pa.Table, pa.Table | None]:
    documents = _documents_table([r for r in rows if r.problem is None], input_name)
    bad = [r for r in rows if r.problem is not None]
    return documents, (unreadable_table(bad, input_name) if bad else None)


def _documents_table(rows: list[Row], input_name: str) -> pa.Table:
    columns: dict[str, pa.Array] = {
        doc.ID: pa.array([r.doc_id for r in rows], pa.string()),
        doc.TEXT: pa.array([r.text for r in rows], pa.string()),
    }
    for name in _metadata_names(rows):
        columns[name] = to_arrow_column([r.metadata.get(name) for r in rows])
    columns.update(lineage_columns(input_name, [r.url for r in rows], [r.record for r in rows]))
    return pa.table(columns)


def _metadata_names(rows: list[Row]) -> list[str]:
    """Metadata field names in order of first appearance; reserved names are left out."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row.metadata))
    return [name for name in names if name not in RESERVED_COLUMNS]


def unreadable_table(rows: list[Row], input_name: str) -> pa.Table:
    table = pa.table({
        doc.ID: pa.array([r.doc_id for r in rows], pa.string()),
        doc.TEXT: pa.array([r.text for r in rows], pa.string()),
        **lineage_columns(input_name, [r.url for r in rows], [r.record for r in rows]),
    })
    rejections = [Rejection(doc.UNREADABLE, detail=r.problem) for r in rows]
    return doc.with_rejection(table, READ_OPERATOR, rejections)


def lineage_columns(
    input_name: str, urls: str | list[str], records: list[int]
) -> dict[str, pa.Array]:
    n = len(records)
    files = [urls] * n if isinstance(urls, str) else urls
    return {
        doc.INPUT_NAME: pa.array([input_name] * n, pa.string()),
        doc.INPUT_FILE: pa.array(files, pa.string()),
        doc.INPUT_RECORD: pa.array(records, pa.int64()),
    }
