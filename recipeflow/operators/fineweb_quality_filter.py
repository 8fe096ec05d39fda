"""``fineweb_quality_filter``: FineWeb's own line-level heuristics (Penedo et al. 2024).

Parameters, defaults, rule order and reason codes are those of DataTrove's
``FineWebQualityFilter``, so FineWeb's published pipeline translates line by line.
"""

from __future__ import annotations

from typing import Any, Sequence

import pyarrow as pa
from pydantic import Field

from recipeflow.operators import document as doc
from recipeflow.operators._text_stats import TERMINAL_PUNCTUATION, duplicates, safe_ratio
from recipeflow.operators._words import splitter
from recipeflow.operators.base import Filter, OperatorParams, Rejection
from recipeflow.operators.registry import register


class FinewebQualityFilterParams(OperatorParams):
    line_punct_thr: float = Field(
        0.12, description="Drop when fewer than this fraction of lines end with a stop character.")
    line_punct_exclude_zero: bool = Field(
        False, description="Keep documents where no line at all ends with a stop character.")
    stop_chars: list[str] | None = Field(
        None, description="Characters that end a line well; null = terminal punctuation of all "
        "scripts (. ! ? 。 ...).")
    short_line_thr: float = Field(
        0.67, description="Drop when more than this fraction of lines are short.")
    short_line_length: int = Field(
        30, description="A line of at most this many characters is short.")
    char_duplicates_ratio: float = Field(
        0.01, description="Drop when repeated lines hold more than this fraction of characters.")
    new_line_ratio: float = Field(
        0.3, description="Drop when line breaks per word exceed this (list-like pages).")
    language: str = Field("en", description="Language of the documents: decides word splitting.")


LINE_PUNCT = "fineweb_line_punct_ratio"
SHORT_LINES = "fineweb_short_line_ratio"
CHAR_DUPS = "fineweb_char_dup_ratio"
NEW_LINES = "fineweb_new_line_ratio"
LINES = "fineweb_lines"
STATISTICS = (LINES, LINE_PUNCT, SHORT_LINES, CHAR_DUPS, NEW_LINES)


@register
class FinewebQualityFilter(Filter):
    """Drop list-like, short-line and repetitive pages, and pages whose lines rarely end a sentence (DataTrove's FineWebQualityFilter).

    Statistics: ``fineweb_lines`` (non-blank lines), ``fineweb_line_punct_ratio``,
    ``fineweb_short_line_ratio``, ``fineweb_char_dup_ratio``, ``fineweb_new_line_ratio``
    (line breaks per word). Reasons, in order: ``empty``, ``line_punct_ratio``,
    ``short_line_ratio``, ``char_dup_ratio``, ``list_ratio``.
    """

    name = "fineweb_quality_filter"
    version = "1"
    Params = FinewebQualityFilterParams

    def __init__(self, params=None):
        super().__init__(params)
        chars = self.params.stop_chars
        self._stop_chars = TERMINAL_PUNCTUATION if chars is None else tuple(chars)

    def compute_stats(self, batch: pa.Table) -> dict[str, Sequence[Any]]:
        words_of = splitter(self.params.language).split
        columns: dict[str, list[float]] = {name: [] for name in STATISTICS}
        for text in batch.column(doc.TEXT).to_pylist():
            for name, value in zip(STATISTICS, self._document_stats(text or "", words_of)):
                columns[name].append(value)
        return columns

    def _document_stats(self, text: str, words_of) -> tuple[float, ...]:
        lines = [line for line in text.split("\n") if line.strip()]
        n_lines = len(lines)
        if not n_lines:
            return (0, 0.0, 0.0, 0.0, 0.0)
        stop_chars = self._stop_chars
        short = self.params.short_line_length
        ends_well = sum(1 for line in lines if line.endswith(stop_chars))
        short_lines = sum(1 for line in lines if len(line) <= short)
        dup_chars = duplicates(lines)[1]
        return (
            n_lines,
            ends_well / n_lines,
            short_lines / n_lines,
            safe_ratio(dup_chars, len(text) - text.count("\n")),
            safe_ratio(text.count("\n"), len(words_of(text))),
        )

    def decide(self, stats: dict[str, Sequence[Any]]) -> list[Rejection | None]:
        p = self.params
        decisions: list[Rejection | None] = []
        for i, n_lines in enumerate(stats[LINES]):
            punct = stats[LINE_PUNCT][i]
            if not n_lines:
                decision = Rejection("empty", LINES, 0.0)
            elif punct < p.line_punct_thr and not (punct == 0 and p.line_punct_exclude_zero):
                decision = Rejection("line_punct_ratio", LINE_PUNCT, punct)
            elif stats[SHORT_LINES][i] > p.short_line_thr:
                decision = Rejection("short_line_ratio", SHORT_LINES, stats[SHORT_LINES][i])
            elif stats[CHAR_DUPS][i] > p.char_duplicates_ratio:
                decision = Rejection("char_dup_ratio", CHAR_DUPS, stats[CHAR_DUPS][i])
            elif stats[NEW_LINES][i] > p.new_line_ratio:
                decision = Rejection("list_ratio", NEW_LINES, stats[NEW_LINES][i])
            else:
                decision = None
            decisions.append(decision)
        return decisions
