"""``text_length_filter``: keep documents whose length in characters is within bounds."""

from __future__ import annotations

from typing import Any, Sequence

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import AliasChoices, Field

from recipeflow.operators import document as doc
from recipeflow.operators.base import Filter, OperatorParams, Rejection, threshold_decisions
from recipeflow.operators.registry import register


class TextLengthFilterParams(OperatorParams):
    # Data-Juicer's text_length_filter names them min_len / max_len: accepted as aliases.
    min_length: int = Field(
        10,
        ge=0,
        validation_alias=AliasChoices("min_length", "min_len"),
        description="Drop documents shorter than this (characters). Alias: min_len.",
    )
    max_length: int | None = Field(
        None,
        ge=0,
        validation_alias=AliasChoices("max_length", "max_len"),
        description="Drop documents longer than this (characters); null = no limit. Alias: max_len.",
    )
    # max_length >= min_length: checked by OperatorParams for every min_X/max_X pair.


@register
class TextLengthFilter(Filter):
    """Keep documents whose text length in characters is within [min_length, max_length].

    Statistic: ``text_length`` (Unicode code points). Bounds are inclusive, as in Data-Juicer.
    """

    name = "text_length_filter"
    version = "1"
    Params = TextLengthFilterParams

    def compute_stats(self, batch: pa.Table) -> dict[str, Sequence[Any]]:
        lengths = pc.utf8_length(batch.column(doc.TEXT).combine_chunks())
        return {"text_length": lengths.to_pylist()}

    def decide(self, stats: dict[str, Sequence[Any]]) -> list[Rejection | None]:
        p = self.params
        return threshold_decisions(stats["text_length"], "text_length", p.min_length, p.max_length)
