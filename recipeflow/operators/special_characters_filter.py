"""``special_characters_filter`` (Data-Juicer): keep documents whose share of special
characters is within bounds."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from recipeflow.operators.base import NonNegative, Ratio
from recipeflow.operators.text.datajuicer_text import (
    DataJuicerFilterParams,
    RangeFilter,
    count_special_characters,
)
from recipeflow.operators.registry import register


class SpecialCharactersFilterParams(DataJuicerFilterParams):
    min_ratio: Ratio | None = Field(0.0, description="Drop documents below this ratio.")
    max_ratio: NonNegative | None = Field(0.25, description="Drop documents above this ratio.")


@register
class SpecialCharactersFilter(RangeFilter):
    """Keep documents whose ratio of special characters is within [min_ratio, max_ratio]
    (Data-Juicer's ``special_characters_filter``).

    Statistic ``special_char_ratio``: characters in Data-Juicer's special-character set
    (ASCII punctuation, digits and whitespace, other listed symbols, and emoji) divided by the
    length in characters (0 for an empty text).
    """

    name = "special_characters_filter"
    version = "1"
    Params = SpecialCharactersFilterParams
    statistic = "special_char_ratio"

    def measure(self, texts: list[str]) -> list[Any]:
        return [count_special_characters(t) / len(t) if t else 0.0 for t in texts]

    def bounds(self) -> tuple[float | None, float | None]:
        return self.params.min_ratio, self.params.max_ratio
