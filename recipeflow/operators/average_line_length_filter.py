"""``average_line_length_filter`` (Data-Juicer): keep documents whose mean line length is within
bounds."""

from __future__ import annotations

import sys
from typing import Any

from pydantic import Field

from recipeflow.operators.base import Count
from recipeflow.operators.text.datajuicer_text import DataJuicerFilterParams, RangeFilter
from recipeflow.operators.registry import register


class AverageLineLengthFilterParams(DataJuicerFilterParams):
    min_len: Count | None = Field(10, description="Drop documents whose mean line is shorter.")
    max_len: Count | None = Field(
        sys.maxsize, description="Drop documents whose mean line is longer."
    )


@register
class AverageLineLengthFilter(RangeFilter):
    """Keep documents whose average line length (characters) is within [min_len, max_len]
    (Data-Juicer's ``average_line_length_filter``).

    Statistic ``avg_line_length``: the text's length divided by its number of lines, as Python's
    ``str.splitlines()`` counts them (0 for an empty text).
    """

    name = "average_line_length_filter"
    version = "1"
    Params = AverageLineLengthFilterParams
    statistic = "avg_line_length"

    def measure(self, texts: list[str]) -> list[Any]:
        out: list[Any] = []
        for text in texts:
            lines = len(text.splitlines())
            out.append(len(text) / lines if lines else 0.0)
        return out

    def bounds(self) -> tuple[float | None, float | None]:
        return self.params.min_len, self.params.max_len
