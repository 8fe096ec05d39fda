"""``percentile_filter``: keep documents whose field lies between two percentiles of its
distribution over the whole dataset."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from recipeflow.operators.base import BarrierDecision, OperatorParams
from recipeflow.operators.drops import Drops
from recipeflow.operators.registry import register
from recipeflow.operators.top_k import FieldSelector, missing_value_rejections, shard_decisions


def nearest_rank(sorted_values: np.ndarray, percentile: float) -> float:
    """The nearest-rank percentile: the value at 1-based rank ``ceil(p/100 × n)`` of the sorted
    values (rank 1 for p = 0), i.e. the smallest value with at least p% of the values at or
    below it. Always one of the values, never interpolated. Exact for percentiles written as
    decimals (7 % of 100 values is rank 7, not 8 through float error)."""
    count = len(sorted_values)
    rank = max(1, math.ceil(Fraction(str(percentile)) * count / 100))
    return float(sorted_values[rank - 1])


class PercentileFilterParams(OperatorParams):
    field: str = Field(description="The numeric field, e.g. quality_hq or stat_text_length.")
    min_percentile: float = Field(0.0, ge=0, le=100, description="Lower percentile (0-100), inclusive.")
    max_percentile: float = Field(100.0, ge=0, le=100, description="Upper percentile (0-100), inclusive.")

    @model_validator(mode="after")
    def _in_order(self):
        if self.min_percentile > self.max_percentile:
            raise ValueError(
                f"min_percentile ({self.min_percentile}) is above max_percentile ({self.max_percentile})"
            )
        return self


@register
class PercentileFilter(FieldSelector):
    """Keep documents whose field lies between the min and max percentiles of its distribution.

    The distribution is global (every shard's values). Percentiles use the nearest-rank method:
    the p-th percentile of n sorted values is the value at rank ceil(p/100 × n) (rank 1 for
    p = 0), so a bound is always an actual value. Bounds are inclusive: a document equal to a
    bound is kept, so ties can keep a little more than the nominal share. Dropped documents get
    ``below_min_percentile`` or ``above_max_percentile`` (statistic the field, detail the
    bound); documents without a value get ``missing_value``.
    """

    name = "percentile_filter"
    version = "1"
    Params = PercentileFilterParams

    def resolve(self, signatures: list[pa.Table]) -> list[BarrierDecision]:
        p = self.params
        values = self.values(signatures)
        drops = missing_value_rejections(values, p.field)
        present = np.sort(values[~np.isnan(values)])
        lower = upper = None
        if len(present):
            lower = nearest_rank(present, p.min_percentile)
            upper = nearest_rank(present, p.max_percentile)
            self._add_out_of_bounds(drops, values, lower, upper)
        self.last_summary = self._summary(values, present, lower, upper, drops)
        return shard_decisions([len(s) for s in signatures], drops)

    def _add_out_of_bounds(self, drops: Drops, values: np.ndarray, lower: float, upper: float) -> None:
        p = self.params
        below, above = np.flatnonzero(values < lower), np.flatnonzero(values > upper)
        drops.add(below, "below_min_percentile", p.field, values[below], f"p{p.min_percentile:g}={lower}")
        drops.add(above, "above_max_percentile", p.field, values[above], f"p{p.max_percentile:g}={upper}")

    def _summary(self, values: np.ndarray, present: np.ndarray, lower: float | None,
                 upper: float | None, drops: Drops) -> dict[str, Any]:
        p = self.params
        return {
            "field": p.field,
            "method": "nearest-rank",
            "documents": int(len(values)),
            "with_value": int(len(present)),
            "min_percentile": p.min_percentile,
            "max_percentile": p.max_percentile,
            "lower": lower,
            "upper": upper,
            "selected": int(len(values) - len(drops)),
        }
