"""The document data model: column names and small helpers on Arrow batches.

A document is one row: ``id``, ``text``, metadata fields, and lineage columns naming where it
came from. Rejected documents carry four more columns saying which operator dropped them, why,
and the statistic behind the decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import pyarrow as pa

ID = "id"
TEXT = "text"

# Lineage: the input (recipe name), the file and the record's position in it
# (line number for JSONL/text, row for Parquet, record number for WARC; all 0-based).
INPUT_NAME = "input_name"
INPUT_FILE = "input_file"
INPUT_RECORD = "input_record"
LINEAGE_COLUMNS = (INPUT_NAME, INPUT_FILE, INPUT_RECORD)

# Which source of a node's `from` list a document came from (an input, a node, or
# "<node>.rejected"): set by the engine when a node reads, for selectors such as `mix`.
# Working columns start with "__" and never reach a dataset.
ORIGIN = "__origin"

# Filters write each statistic into the document as a column ``stat_<name>`` (kept and
# rejected documents alike), so a dataset shows why every document passed or failed.
STAT_PREFIX = "stat_"

# Rejected documents.
REJECTED_BY = "rejected_by"  # the operator's recipe name
REJECTED_AT = "rejected_at"  # the step in the recipe, e.g. "main.process[2]"
REJECT_REASON = "reject_reason"
REJECT_STATISTIC = "reject_statistic"
REJECT_VALUE = "reject_value"
REJECT_DETAIL = "reject_detail"
REJECTION_COLUMNS = (
    REJECTED_BY, REJECTED_AT, REJECT_REASON, REJECT_STATISTIC, REJECT_VALUE, REJECT_DETAIL
)

# The reason given to records that could not be read (bad JSON, bad UTF-8, no text field...).
UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)  # slots: a barrier may hold millions of them
class Rejection:
    """Why one document was dropped: a reason code, and the statistic behind it."""

    reason: str
    statistic: str | None = None
    value: float | None = None
    detail: str | None = None



def stat_column(statistic: str) -> str:
    return STAT_PREFIX + statistic


def set_column(batch: pa.Table, name: str, values: Sequence[Any] | pa.Array) -> pa.Table:
    """Replace column ``name`` or append it (at the end, so column order stays stable)."""
    array = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values)
    index = batch.schema.get_field_index(name)
    if index >= 0:
        return batch.set_column(index, name, array)
    return batch.append_column(name, array)


def with_rejection(
    batch: pa.Table, operator: str, rejections: Sequence[Rejection], step: str | None = None
) -> pa.Table:
    """Add the rejection columns to rows that ``operator`` (at recipe ``step``) dropped."""
    columns = {
        REJECTED_BY: pa.array([operator] * len(rejections), type=pa.string()),
        REJECTED_AT: pa.array([step] * len(rejections), type=pa.string()),
        REJECT_REASON: pa.array([r.reason for r in rejections], type=pa.string()),
        REJECT_STATISTIC: pa.array([r.statistic for r in rejections], type=pa.string()),
        REJECT_VALUE: pa.array([r.value for r in rejections], type=pa.float64()),
        REJECT_DETAIL: pa.array([r.detail for r in rejections], type=pa.string()),
    }
    for name, array in columns.items():
        batch = set_column(batch, name, array)
    return batch
