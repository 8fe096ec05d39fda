"""``fineweb_quality_filter``: FineWeb's own line-level heuristics (Penedo et al. 2024).

Parameters, defaults, rule order and reason codes are those of DataTrove's
``FineWebQualityFilter``, so FineWeb's published pipeline translates line by line.
"""

from __future__ import annotations


from pydantic import Field

from recipeflow.operators.text.text_stats import TERMINAL_PUNCTUATION, duplicates, safe_ratio
from recipeflow.operators.text.words import splitter
from recipeflow.operators.base import (
    Count, DocumentStatsFilter, NonNegative, OperatorParams, Ratio, Rule, RuleTableFilter)
from recipeflow.operators.registry import register


class FinewebQualityFilterParams(OperatorParams):
    line_punct_thr: Ratio = Field(
        0.12, description="Drop when fewer than this fraction of lines end with a stop character.")
    line_punct_exclude_zero: bool = Field(
        False, description="Keep documents where no line at all ends with a stop character.")
    stop_chars: list[str] | None = Field(
        None, description="Characters that end a line well; null = terminal punctuation of all "
        "scripts (. ! ? 。 ...).")
    short_line_thr: Ratio = Field(
        0.67, description="Drop when more than this fraction of lines are short.")
    short_line_length: Count = Field(
        30, description="A line of at most this many characters is short.")
    char_duplicates_ratio: Ratio = Field(
        0.01, description="Drop when repeated lines hold more than this fraction of characters.")
    new_line_ratio: NonNegative = Field(
        0.3, description="Drop when line breaks per word exceed this (list-like pages).")
    language: str = Field("en", description="Language of the documents: decides word splitting.")


LINE_PUNCT = "fineweb_line_punct_ratio"
SHORT_LINES = "fineweb_short_line_ratio"
CHAR_DUPS = "fineweb_char_dup_ratio"
NEW_LINES = "fineweb_new_line_ratio"
LINES = "fineweb_lines"
STATISTICS = (LINES, LINE_PUNCT, SHORT_LINES, CHAR_DUPS, NEW_LINES)


@register
class FinewebQualityFilter(DocumentStatsFilter, RuleTableFilter):
    """Drop list-like, short-line and repetitive pages, and pages whose lines rarely end a sentence (DataTrove's FineWebQualityFilter).

    Statistics: ``fineweb_lines`` (non-blank lines), ``fineweb_line_punct_ratio``,
    ``fineweb_short_line_ratio``, ``fineweb_char_dup_ratio``, ``fineweb_new_line_ratio``
    (line breaks per word). Reasons, in order: ``empty``, ``line_punct_ratio``,
    ``short_line_ratio``, ``char_dup_ratio``, ``list_ratio``.
    """

    name = "fineweb_quality_filter"
    version = "1"
    Params = FinewebQualityFilterParams
    statistics = STATISTICS

    def __init__(self, params=None):
        super().__init__(params)
        chars = self.params.stop_chars
        self._stop_chars = TERMINAL_PUNCTUATION if chars is None else tuple(chars)

    def start_batch(self) -> None:
        self._words_of = splitter(self.params.language).split

    def document_stats(self, text: str) -> tuple[float, ...]:
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
            safe_ratio(text.count("\n"), len(self._words_of(text))),
        )

    def rules(self) -> list[Rule]:
        """DataTrove's order; every threshold applies, 0 included."""
        p = self.params
        exclude_zero = p.line_punct_exclude_zero
        return [
            Rule("empty", LINES, fails=lambda n_lines: not n_lines),
            Rule("line_punct_ratio", LINE_PUNCT, p.line_punct_thr, True, "line_punct_thr",
                 fails=lambda v, t=p.line_punct_thr: v < t and not (v == 0 and exclude_zero)),
            Rule("short_line_ratio", SHORT_LINES, p.short_line_thr, param="short_line_thr",
                 fails=lambda v, t=p.short_line_thr: v > t),
            Rule("char_dup_ratio", CHAR_DUPS, p.char_duplicates_ratio, param="char_duplicates_ratio",
                 fails=lambda v, t=p.char_duplicates_ratio: v > t),
            Rule("list_ratio", NEW_LINES, p.new_line_ratio, param="new_line_ratio",
                 fails=lambda v, t=p.new_line_ratio: v > t),
        ]
