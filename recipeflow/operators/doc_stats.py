"""``doc_stats``: DataTrove's ``DocStats`` per-document statistics, as a filter that never drops.

DataTrove's stats blocks write per-document metrics and sum them into summary files; here each
metric is a ``stat_<name>`` field of every document (``recipeflow analyze`` shows their
distributions), computed with DataTrove's formulas and names.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from recipeflow.operators.base import DocumentStatsFilter, OperatorParams, Rejection
from recipeflow.operators.registry import register
from recipeflow.operators.text.text_stats import PUNCTUATION

ELLIPSES = ("...", "…")  # DataTrove's ELIPSIS, matched left to right without overlap
_ELLIPSIS = re.compile("|".join(f"(?:{re.escape(e)})" for e in ELLIPSES))
_PUNCTUATION = frozenset(PUNCTUATION)


class DocStatsParams(OperatorParams):
    pass


@register
class DocStats(DocumentStatsFilter):
    """DataTrove's DocStats as fields: length, white_space_ratio, non_alpha_digit_ratio, digit_ratio, uppercase_ratio, elipsis_ratio, punctuation_ratio; drops nothing."""

    name = "doc_stats"
    version = "1"
    Params = DocStatsParams
    statistics = (
        "length", "white_space_ratio", "non_alpha_digit_ratio", "digit_ratio", "uppercase_ratio",
        "elipsis_ratio", "punctuation_ratio",
    )

    def document_stats(self, text: str) -> Sequence[Any]:
        length = len(text)
        if length == 0:  # DataTrove divides by the length; an empty text has no ratios
            return (0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        spaces = digits = uppercase = other = punctuation = 0
        for c in text:
            if c.isspace():
                spaces += 1
            if c.isdigit():
                digits += 1
            elif not c.isalpha():
                other += 1
            if c.isupper():
                uppercase += 1
            if c in _PUNCTUATION:
                punctuation += 1
        ellipses = sum(len(m) for m in _ELLIPSIS.findall(text))
        return (length, spaces / length, other / length, digits / length, uppercase / length,
                ellipses / length, punctuation / length)

    def decide(self, stats: dict[str, Sequence[Any]]) -> list[Rejection | None]:
        return [None] * len(stats["length"])
