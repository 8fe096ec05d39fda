"""``maximum_line_length_filter`` (Data-Juicer): keep documents whose longest line is within
bounds."""

from __future__ import annotations

import sys
from typing import Any

from pydantic import Field

from recipeflow.operators.base import Count
from recipeflow.operators.text.datajuicer_text import DataJuicerFilterParams, RangeFilter
from recipeflow.operators.registry import register


class MaximumLineLengthFilterParams(DataJuicerFilterParams):
    min_len: Count | None = Field(10, description="Drop documents whose longest line is shorter.")
    max_len: Count | None = Field(
        sys.maxsize, description="Drop documents whose longest line is longer."
    )


@register
class MaximumLineLengthFilter(RangeFilter):
    """Keep documents whose longest line (characters) is within [min_len, max_len]
    (Data-Juicer's ``maximum_line_length_filter``).

    Statistic ``max_line_length``: the length of the longest line of Python's
    ``str.splitlines()`` (0 for an empty text).
    """

    name = "maximum_line_length_filter"
    version = "1"
    Params = MaximumLineLengthFilterParams
    statistic = "max_line_length"

    def measure(self, texts: list[str]) -> list[Any]:
        return [max(map(len, t.splitlines()), default=0) for t in texts]

    def bounds(self) -> tuple[float | None, float | None]:
        return self.params.min_len, self.params.max_len
