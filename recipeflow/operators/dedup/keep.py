"""Which document of a group of duplicates to keep, and where documents sit in the dataset.

Shared by the deduplicators: the ``keep`` / ``score_field`` parameters, the per-document
priority they imply (computed in phase 1, so phase 2 never needs the text), the choice of one
winner per group (highest priority, ties broken by input order), and the mapping between a
document's global position (its index over all shards, in input order) and (shard, row).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from recipeflow.operators import document as doc
from recipeflow.operators.base import OperatorParams

PRIORITY = "priority"


class KeepParams(OperatorParams):
    """The keep policy of a deduplicator."""

    keep: Literal["first", "longest", "score"] = Field(
        "first",
        description="Which document of a group of duplicates survives: `first` in input order, "
        "the `longest` text, or the highest `score` (the value of `score_field`). Ties go to "
        "the earlier document.",
    )
    score_field: str | None = Field(
        None, description="The numeric field whose highest value wins when `keep: score`."
    )

    @model_validator(mode="after")
    def _score_field_with_score(self):
        if self.keep == "score" and not self.score_field:
            raise ValueError("keep: score needs score_field (the numeric field to maximise)")
        if self.score_field and self.keep != "score":
            raise ValueError(
                f"score_field is only used with keep: score (keep is {self.keep!r}); "
                "set keep: score or remove score_field"
            )
        return self

    @property
    def needs_priority(self) -> bool:
        return self.keep != "first"


def priorities(batch: pa.Table, params: KeepParams, operator: str) -> pa.Array | None:
    """Per-document priority (float64, higher wins) for the keep policy; None for `first`."""
    if params.keep == "first":
        return None
    if batch.num_rows == 0:  # an empty shard may not have the score field at all
        return pa.array([], pa.float64())
    if params.keep == "longest":
        return pc.cast(pc.utf8_length(batch.column(doc.TEXT)), pa.float64()).combine_chunks()
    field = params.score_field
    assert field is not None
    if field not in batch.column_names:
        raise KeyError(
            f"{operator}: score_field {field!r} is not a field of the documents (fields: "
            f"{', '.join(c for c in batch.column_names if not c.startswith('__'))})"
        )
    column = batch.column(field)
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
            or pa.types.is_boolean(column.type) or pa.types.is_null(column.type)):
        raise TypeError(
            f"{operator}: score_field {field!r} must be numeric, but its values are {column.type}"
        )
    scores = pc.cast(column, pa.float64()).combine_chunks()
    # A document without a score (null or NaN) loses to every scored one.
    scores = pc.if_else(pc.is_nan(scores), None, scores) if len(scores) else scores
    return pc.fill_null(scores, float("-inf"))


def first_per_group(groups: np.ndarray, positions: np.ndarray, priority: np.ndarray | None) -> np.ndarray:
    """For each element, the position of its group's winner: highest priority, then the
    smallest position (input order). ``groups`` are group labels (any integers)."""
    if len(groups) == 0:
        return positions.copy()
    keys = (positions, groups) if priority is None else (positions, -priority, groups)
    order = np.lexsort(keys)
    sorted_groups = groups[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = sorted_groups[1:] != sorted_groups[:-1]
    head = np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))
    winners = np.empty_like(positions)
    winners[order] = positions[order][head]
    return winners


def shard_offsets(shard_sizes: list[int]) -> np.ndarray:
    """The global position of every shard's first row (plus the total at the end)."""
    return np.concatenate([[0], np.cumsum(np.asarray(shard_sizes, dtype=np.int64))]).astype(np.int64)


def to_shard_rows(positions: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(shard, row) of global positions."""
    shards = np.searchsorted(offsets, positions, side="right") - 1
    return shards, positions - offsets[shards]


def duplicate_of(kept_ids: list[str] | pa.Array) -> pa.Array:
    """The detail of each dropped duplicate: ``duplicate_of=<id of the document kept>``."""
    return pc.binary_join_element_wise("duplicate_of=", pa.array(kept_ids, pa.string()), "")
