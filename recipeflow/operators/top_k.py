"""``top_k``: keep the ``k`` documents with the highest value of a field, across all shards.

Also the pieces the other field-based selectors (``top_fraction``, ``percentile_filter``) and
``sample``/``mix`` share: reading a numeric field into signatures, ranking with ties in input
order, and turning global row numbers back into per-shard decisions.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from recipeflow.operators.base import BarrierDecision, OperatorParams, Rejection, Selector
from recipeflow.operators.drops import Drops
from recipeflow.operators.dedup.keep import shard_offsets, to_shard_rows
from recipeflow.operators.registry import register

VALUE = "value"
MISSING_VALUE = "missing_value"

Order = Literal["highest", "lowest"]


class MissingField(KeyError):
    """A selector's ``field`` is not a column of the documents it sees."""

    def __str__(self) -> str:
        return self.args[0]


# -- shared helpers -----------------------------------------------------------------------------


def field_values(batch: pa.Table, field: str, operator: str) -> pa.ChunkedArray | pa.Array:
    """``field`` of every document as float64 (null where a document has no value)."""
    if field not in batch.column_names:
        if len(batch) == 0:  # an empty shard has no columns to speak of
            return pa.array([], pa.float64())
        present = ", ".join(c for c in batch.column_names if not c.startswith("__"))
        raise MissingField(
            f"{operator}: the documents have no field {field!r}; their fields are: {present}. "
            "A filter's statistic is a field named `stat_<name>` (e.g. stat_text_length)."
        )
    column = batch.column(field)
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
            or pa.types.is_boolean(column.type) or pa.types.is_null(column.type)):
        raise TypeError(
            f"{operator}: field {field!r} holds {column.type} values; selecting by it needs numbers"
        )
    return pc.cast(column, pa.float64())


def concat_column(signatures: list[pa.Table], name: str, dtype: Any) -> np.ndarray:
    """One signature column over every shard, in input order, as a numpy array (nulls -> NaN
    for floats)."""
    parts = [s.column(name).to_numpy(zero_copy_only=False) for s in signatures if len(s)]
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.array([], dtype)


def shard_decisions(shard_sizes: list[int], drops: Drops | dict[int, Rejection],
                    repeats: dict[int, int] | None = None) -> list[BarrierDecision]:
    """Per-shard decisions from rejections and repeat counts keyed by global row number
    (rows numbered across shards in input order)."""
    drops = drops if isinstance(drops, Drops) else Drops(drops)
    decisions = [BarrierDecision(drop=part) for part in drops.split(shard_sizes)]
    if repeats:
        shards, rows = to_shard_rows(np.fromiter(repeats, np.int64, len(repeats)), shard_offsets(shard_sizes))
        for shard, row, copies in zip(shards.tolist(), rows.tolist(), repeats.values()):
            if decisions[shard].repeats is None:
                decisions[shard].repeats = {}
            decisions[shard].repeats[row] = copies
    return decisions


def rank_order(values: np.ndarray, order: Order) -> np.ndarray:
    """Row numbers of the documents that have a value, best first; ties in input order."""
    valid = np.flatnonzero(~np.isnan(values))
    keys = -values[valid] if order == "highest" else values[valid]
    return valid[np.argsort(keys, kind="stable")]


def share_of(fraction: float, count: int) -> int:
    """``fraction`` of ``count`` documents, rounded half up (0.5 of 5 is 3). Exact: the
    fraction is read as the decimal it was written as."""
    return math.floor(Fraction(str(fraction)) * count + Fraction(1, 2))


def missing_value_rejections(values: np.ndarray, field: str) -> Drops:
    """Documents without a value (null or NaN) cannot be ranked: they are dropped."""
    drops = Drops()
    drops.add(np.flatnonzero(np.isnan(values)), MISSING_VALUE, field)
    return drops


class FieldSelector(Selector):
    """A selector that decides from one numeric field: signatures are that field's values.

    Documents without a value (null or NaN) are never selected (reason ``missing_value``).
    After :meth:`resolve`, :attr:`last_summary` holds what was selected (for the manifest).
    """

    last_summary: dict[str, Any] | None = None

    def signatures(self, batch: pa.Table) -> pa.Table:
        return pa.table({VALUE: field_values(batch, self.params.field, self.name)})

    def values(self, signatures: list[pa.Table]) -> np.ndarray:
        return concat_column(signatures, VALUE, np.float64)


def keep_best(values: np.ndarray, count: int, order: Order, field: str, reason: str,
              label: str) -> tuple[Drops, dict[str, Any]]:
    """Keep the ``count`` best documents; (rejections by global row, summary)."""
    ranked = rank_order(values, order)
    kept = ranked[:count]
    cutoff = float(values[kept[-1]]) if len(kept) else None
    drops = missing_value_rejections(values, field)
    detail = f"{label}, cutoff={cutoff}"
    drops.add(ranked[count:], reason, field, values[ranked[count:]], detail)
    summary = {
        "field": field,
        "order": order,
        "documents": int(len(values)),
        "with_value": int(len(ranked)),
        "selected": int(len(kept)),
        "cutoff": cutoff,
    }
    return drops, summary


# -- the operator -------------------------------------------------------------------------------


class TopKParams(OperatorParams):
    field: str = Field(description="The numeric field to rank by, e.g. quality_hq or stat_text_length.")
    k: int = Field(ge=0, description="How many documents to keep (all of them if fewer).")
    order: Order = Field("highest", description="Keep the highest (default) or the lowest values.")


@register
class TopK(FieldSelector):
    """Keep the k documents with the highest value of a field, across all shards.

    Ties are broken by input order (shard, then row): the earlier document wins, so the result
    never depends on how the input was cut into shards. Documents without a value are dropped
    (``missing_value``); the others not kept get ``not_in_top_k`` with their value.
    """

    name = "top_k"
    version = "1"
    Params = TopKParams

    def resolve(self, signatures: list[pa.Table]) -> list[BarrierDecision]:
        p = self.params
        values = self.values(signatures)
        drops, summary = keep_best(values, p.k, p.order, p.field, "not_in_top_k", f"k={p.k}")
        self.last_summary = {**summary, "k": p.k}
        return shard_decisions([len(s) for s in signatures], drops)
