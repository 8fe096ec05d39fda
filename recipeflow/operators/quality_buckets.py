"""``quality_buckets``: an ensemble of score fields into one integer bucket (Nemotron-CC).

Nemotron-CC scores every document with several quality classifiers, turns each score into a
percentile over the corpus, takes the best of them, and cuts the result into buckets that
later steps weight differently. Here, over the node's whole dataset:

1. each field in ``fields`` is rank-normalized: a document's value becomes its percentile
   ``(average rank - 0.5) / documents with a value`` in (0, 1), ties sharing one;
2. a document's percentiles are combined by ``max`` (Nemotron-CC) or ``mean`` (documents
   without a value for a field are combined over the fields they have);
3. the combined values are ranked again and cut into ``buckets`` equal-count buckets:
   ``quality_bucket`` 0 is the lowest, ``buckets - 1`` the highest.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator

from recipeflow.operators.base import BarrierDecision, OperatorParams, Selector
from recipeflow.operators.drops import Drops
from recipeflow.operators.registry import register
from recipeflow.operators.top_k import concat_column, field_values, shard_decisions


class QualityBucketsParams(OperatorParams):
    fields: list[str] = Field(
        min_length=1, description="Numeric score fields, higher = better (e.g. stat_score, "
        "quality_hq).")
    combine: Literal["max", "mean"] = Field(
        "max", description="How one document's percentiles are combined (Nemotron-CC: max).")
    buckets: int = Field(20, ge=2, le=1000, description="How many equal-count buckets "
                         "(Nemotron-CC: 20, 0..19).")
    field: str = Field("quality_bucket", description="Name of the bucket field.")
    score_field: str | None = Field(
        None, description="Also write the combined percentile (0..1) under this name.")
    min_bucket: int | None = Field(
        None, ge=0, description="Drop documents in lower buckets (reason below_min_bucket).")

    @field_validator("fields")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("fields lists a field twice")
        return value


def percentiles(values: np.ndarray) -> np.ndarray:
    """Each value's mid-rank percentile among the values present (NaN stays NaN)."""
    from scipy.stats import rankdata

    out = np.full(len(values), np.nan)
    present = ~np.isnan(values)
    if present.any():
        out[present] = (rankdata(values[present], method="average") - 0.5) / present.sum()
    return out


def bucket_of(combined: np.ndarray, buckets: int) -> np.ndarray:
    """Equal-count buckets of the combined values (ties in one bucket); -1 where NaN."""
    p = percentiles(combined)
    out = np.full(len(combined), -1, np.int64)
    present = ~np.isnan(p)
    out[present] = np.minimum((p[present] * buckets).astype(np.int64), buckets - 1)
    return out


@register
class QualityBuckets(Selector):
    """Combine several score fields into one `quality_bucket` by dataset-wide percentiles (Nemotron-CC).

    Each field is rank-normalized over the whole dataset, the percentiles are combined by
    ``max`` or ``mean``, and the result is cut into ``buckets`` equal-count buckets (0 lowest).
    A document with none of the fields gets no bucket (null) and is kept, unless
    ``min_bucket`` is set (then it is dropped with ``missing_value``). Signatures are the
    fields' values only.
    """

    name = "quality_buckets"
    version = "1"
    Params = QualityBucketsParams

    last_summary: dict[str, Any] | None = None

    def signatures(self, batch: pa.Table) -> pa.Table:
        return pa.table({f"v{i}": field_values(batch, name, self.name)
                         for i, name in enumerate(self.params.fields)})

    def resolve(self, signatures: list[pa.Table]) -> list[BarrierDecision]:
        p = self.params
        sizes = [len(s) for s in signatures]
        ranks = np.stack([percentiles(concat_column(signatures, f"v{i}", np.float64))
                          for i in range(len(p.fields))], axis=1) if sum(sizes) else np.zeros((0, len(p.fields)))
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
                combined = np.nanmax(ranks, axis=1) if p.combine == "max" else np.nanmean(ranks, axis=1)
        buckets = bucket_of(combined, p.buckets)
        drops = Drops()
        if p.min_bucket is not None:
            drops.add(np.flatnonzero(buckets < 0), "missing_value", p.field)
            below = np.flatnonzero((buckets >= 0) & (buckets < p.min_bucket))
            drops.add(below, "below_min_bucket", p.field, buckets[below], f"min_bucket={p.min_bucket}")
        decisions = shard_decisions(sizes, drops)
        bucket_values = [None if b < 0 else int(b) for b in buckets]
        combined_values = [None if np.isnan(c) else float(c) for c in combined]
        start = 0
        for decision, size in zip(decisions, sizes):
            fields: dict[str, list[Any]] = {p.field: pa.array(bucket_values[start:start + size], pa.int64())}
            if p.score_field:
                fields[p.score_field] = pa.array(combined_values[start:start + size], pa.float64())
            decision.fields = fields
            start += size
        counts = np.bincount(buckets[buckets >= 0], minlength=p.buckets) if len(buckets) else np.zeros(p.buckets)
        self.last_summary = {"documents": int(len(buckets)), "without_score": int((buckets < 0).sum()),
                             "per_bucket": [int(c) for c in counts], "dropped": len(drops)}
        return decisions
