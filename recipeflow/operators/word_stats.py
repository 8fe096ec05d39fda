"""``word_stats``: DataTrove's ``WordStats`` per-document statistics, as a filter that never
drops (each metric a ``stat_<name>`` field, DataTrove's formulas and names; words split as
DataTrove splits them, see operators/text/words.py)."""

from __future__ import annotations

from typing import Any, Sequence

from pydantic import Field

from recipeflow.operators.base import DocumentStatsFilter, OperatorParams, Rejection
from recipeflow.operators.gopher_quality_filter import DEFAULT_STOP_WORDS
from recipeflow.operators.registry import register
from recipeflow.operators.text.words import split_words


class WordStatsParams(OperatorParams):
    language: str = Field("en", description="Language of the word splitting (DataTrove's language)")
    stop_words: list[str] = Field(
        default_factory=lambda: list(DEFAULT_STOP_WORDS), description="Words stop_word_ratio counts")
    short_word_max_chars_threshold: list[int] = Field(
        default_factory=lambda: [3], description="short_word_ratio_<k>: share of words of at most k characters")
    long_word_max_chars_threshold: list[int] = Field(
        default_factory=lambda: [7], description="long_word_ratio_<k>: share of words of at least k characters")


@register
class WordStats(DocumentStatsFilter):
    """DataTrove's WordStats as fields: n_words, avg_word_length, avg_words_per_line, short/long word ratios, type_token_ratio, uppercase_word_ratio, capitalized_word_ratio, stop_word_ratio; drops nothing."""

    name = "word_stats"
    version = "1"
    Params = WordStatsParams

    def statistic_names(self) -> Sequence[str]:
        p = self.params
        return (
            "n_words", "avg_word_length", "avg_words_per_line",
            *(f"short_word_ratio_{k}" for k in p.short_word_max_chars_threshold),
            *(f"long_word_ratio_{k}" for k in p.long_word_max_chars_threshold),
            "type_token_ratio", "uppercase_word_ratio", "capitalized_word_ratio", "stop_word_ratio",
        )

    def document_stats(self, text: str) -> Sequence[Any]:
        p = self.params
        words = split_words(text, p.language)
        lines = text.splitlines()
        n = len(words)
        if n == 0:
            return (0, *[0.0] * (len(self.statistic_names()) - 1))
        stop_words = set(p.stop_words)
        return (
            n, sum(len(w) for w in words) / n, n / len(lines),
            *(sum(1 for w in words if len(w) <= k) / n for k in p.short_word_max_chars_threshold),
            *(sum(1 for w in words if len(w) >= k) / n for k in p.long_word_max_chars_threshold),
            len(set(words)) / n,
            sum(1 for w in words if w.isupper()) / n,
            sum(1 for w in words if w.istitle()) / n,
            sum(1 for w in words if w in stop_words) / n,
        )

    def decide(self, stats: dict[str, Sequence[Any]]) -> list[Rejection | None]:
        return [None] * len(stats["n_words"])
