"""``alphanumeric_filter`` (Data-Juicer): keep documents whose share of letters and digits is
within bounds."""

from __future__ import annotations

import sys
from typing import Any

from pydantic import Field, field_validator

from recipeflow.operators.base import NonNegative, Ratio
from recipeflow.operators.text.datajuicer_text import DataJuicerFilterParams, RangeFilter
from recipeflow.operators.registry import register


class AlphanumericFilterParams(DataJuicerFilterParams):
    tokenization: bool = Field(
        False,
        description="Data-Juicer's token-based ratio (letters per token of the "
        "EleutherAI/pythia-6.9b-deduped tokenizer); not supported: see the error it gives.",
    )
    min_ratio: Ratio | None = Field(0.25, description="Drop documents below this ratio.")
    max_ratio: NonNegative | None = Field(
        sys.maxsize, description="Drop documents above this ratio."
    )

    @field_validator("tokenization")
    @classmethod
    def _no_downloaded_tokenizer(cls, tokenization: bool) -> bool:
        if tokenization:
            raise ValueError(
                "tokenization=true is not supported: Data-Juicer counts tokens with the "
                "HuggingFace tokenizer EleutherAI/pythia-6.9b-deduped, which it downloads from "
                "the HuggingFace Hub at run time, and recipeflow never downloads models. Use "
                "tokenization=false (the default): the ratio of letters and digits to characters"
            )
        return tokenization


@register
class AlphanumericFilter(RangeFilter):
    """Keep documents whose ratio of alphanumeric characters to all characters is within
    [min_ratio, max_ratio] (Data-Juicer's ``alphanumeric_filter``).

    Statistic ``alnum_ratio``: characters for which Python's ``str.isalnum()`` holds, divided by
    the length in characters (0 for an empty text).
    """

    name = "alphanumeric_filter"
    version = "1"
    Params = AlphanumericFilterParams
    statistic = "alnum_ratio"

    def measure(self, texts: list[str]) -> list[Any]:
        return [sum(map(str.isalnum, t)) / len(t) if t else 0.0 for t in texts]

    def bounds(self) -> tuple[float | None, float | None]:
        return self.params.min_ratio, self.params.max_ratio
