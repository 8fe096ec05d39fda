"""``top_fraction``: keep the given fraction of documents with the highest value of a field."""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from recipeflow.operators.base import BarrierDecision, OperatorParams
from recipeflow.operators.registry import register
from recipeflow.operators.top_k import FieldSelector, Order, keep_best, shard_decisions, share_of


class TopFractionParams(OperatorParams):
    field: str = Field(description="The numeric field to rank by, e.g. quality_hq.")
    fraction: float = Field(gt=0, le=1, description="Fraction of all documents to keep, in (0, 1].")
    order: Order = Field("highest", description="Keep the highest (default) or the lowest values.")


@register
class TopFraction(FieldSelector):
    """Keep the top fraction of documents by a field's value, across all shards.

    Keeps ``round_half_up(fraction × documents)`` documents (all documents count, with or
    without a value); then exactly as ``top_k``: ties in input order, documents without a value
    dropped (``missing_value``), the rest ``not_in_top_fraction``.
    """

    name = "top_fraction"
    version = "1"
    Params = TopFractionParams

    def resolve(self, signatures: list[pa.Table]) -> list[BarrierDecision]:
        p = self.params
        values = self.values(signatures)
        count = share_of(p.fraction, len(values))
        label = f"fraction={p.fraction} ({count} documents)"
        drops, summary = keep_best(values, count, p.order, p.field, "not_in_top_fraction", label)
        self.last_summary = {**summary, "fraction": p.fraction, "k": count}
        return shard_decisions([len(s) for s in signatures], drops)
