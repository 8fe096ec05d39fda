"""``c4_paragraph_filter``: DataTrove's ``C4ParagraphFilter`` (mC4's paragraph rule)."""

from __future__ import annotations

from typing import Any, Sequence

import pyarrow as pa
from pydantic import Field, PositiveInt

from recipeflow.operators import document as doc
from recipeflow.operators.base import Filter, OperatorParams, Rejection
from recipeflow.operators.registry import register

STATISTIC = "long_paragraphs"


class C4ParagraphFilterParams(OperatorParams):
    # DataTrove fixes these three; recipeflow lets a recipe change them (same defaults).
    min_paragraphs: PositiveInt = Field(3, description="Paragraphs of min_paragraph_len characters a document needs.")
    min_paragraph_len: int = Field(200, ge=0, description="Characters a line needs to count as a paragraph.")
    line_delimiter: str = Field("\n", min_length=1, description="What separates paragraphs.")


@register
class C4ParagraphFilter(Filter):
    """Drop documents with fewer than 3 paragraphs of at least 200 characters (DataTrove's C4ParagraphFilter).

    Paragraphs are the text's lines (split at ``line_delimiter``); a document is kept when at
    least ``min_paragraphs`` of them have ``min_paragraph_len`` characters or more, which is
    DataTrove's (and mC4's) test "at least 3 lines, and the 3 longest all long enough".
    Statistic ``long_paragraphs``; reason DataTrove's ``< 3 paragraphs``.
    """

    name = "c4_paragraph_filter"
    version = "1"
    Params = C4ParagraphFilterParams

    def compute_stats(self, batch: pa.Table) -> dict[str, Sequence[Any]]:
        p = self.params
        texts = batch.column(doc.TEXT).to_pylist()
        return {
            STATISTIC: [
                sum(len(line) >= p.min_paragraph_len for line in (text or "").split(p.line_delimiter))
                for text in texts
            ]
        }

    def decide(self, stats: dict[str, Sequence[Any]]) -> list[Rejection | None]:
        minimum = self.params.min_paragraphs
        reason = f"< {minimum} paragraphs"
        return [
            Rejection(reason, STATISTIC, float(count)) if count < minimum else None
            for count in stats[STATISTIC]
        ]

    def thresholds(self) -> dict[str, dict[str, float]]:
        return {STATISTIC: {"min_paragraphs": self.params.min_paragraphs}}
