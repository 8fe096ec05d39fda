"""``gopher_quality_filter``: Gopher's quality heuristics (Rae et al. 2021).

Parameters, defaults, rule order and reason codes are those of DataTrove's
``GopherQualityFilter``, so a FineWeb pipeline translates line by line.
"""

from __future__ import annotations

from itertools import compress
from typing import Any, Sequence

import pyarrow as pa
from pydantic import Field

from recipeflow.operators import document as doc
from recipeflow.operators._text_stats import HAS_ALPHA, NOT_SYMBOL, count_true, safe_ratio
from recipeflow.operators._words import splitter
from recipeflow.operators.base import Filter, OperatorParams, Rejection
from recipeflow.operators.registry import register

# Gopher's English stop words: a document must hold at least two of them.
DEFAULT_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")


class GopherQualityFilterParams(OperatorParams):
    min_doc_words: int | None = Field(
        50, description="Drop documents with fewer words (punctuation-only words not counted).")
    max_doc_words: int | None = Field(100000, description="Drop documents with more words.")
    min_avg_word_length: int | None = Field(
        3, description="Drop when the mean word length (characters) is below.")
    max_avg_word_length: int | None = Field(
        10, description="Drop when the mean word length (characters) is above.")
    max_symbol_word_ratio: float | None = Field(
        0.1, description="Drop when '#' or ellipses per word exceed this.")
    max_bullet_lines_ratio: float | None = Field(
        0.9, description="Drop when more than this fraction of lines start with a bullet.")
    max_ellipsis_lines_ratio: float | None = Field(
        0.3, description="Drop when more than this fraction of lines end with an ellipsis.")
    max_non_alpha_words_ratio: float | None = Field(
        0.8, description="Drop when fewer than this fraction of words contain a letter "
        "(DataTrove's name; it is a minimum of alphabetic words).")
    min_stop_words: int | None = Field(
        2, description="Drop documents holding fewer distinct stop words.")
    stop_words: list[str] | None = Field(
        None, description="The stop words; null = Gopher's English list "
        "(the, be, to, of, and, that, have, with).")
    language: str = Field("en", description="Language of the documents: decides word splitting.")


# Statistic names.
WORD_COUNT = "gopher_word_count"
AVG_WORD_LENGTH = "gopher_avg_word_length"
HASH_RATIO = "gopher_hash_word_ratio"
ELLIPSIS_RATIO = "gopher_ellipsis_word_ratio"
BULLET_LINES = "gopher_bullet_lines_ratio"
ELLIPSIS_LINES = "gopher_end_ellipsis_lines_ratio"
ALPHA_WORDS = "gopher_alpha_words_ratio"
STOP_WORDS = "gopher_stop_words"
STATISTICS = (WORD_COUNT, AVG_WORD_LENGTH, HASH_RATIO, ELLIPSIS_RATIO, BULLET_LINES,
              ELLIPSIS_LINES, ALPHA_WORDS, STOP_WORDS)


@register
class GopherQualityFilter(Filter):
    """Drop documents failing Gopher's quality rules: length, word length, symbols, bullets, stop words (DataTrove's GopherQualityFilter).

    Statistics: ``gopher_word_count`` (words that are not only punctuation),
    ``gopher_avg_word_length``, ``gopher_hash_word_ratio``, ``gopher_ellipsis_word_ratio``,
    ``gopher_bullet_lines_ratio``, ``gopher_end_ellipsis_lines_ratio``,
    ``gopher_alpha_words_ratio``, ``gopher_stop_words`` (distinct stop words present).
    Reasons, in order: ``gopher_short_doc``, ``gopher_long_doc``, ``gopher_below_avg_threshold``,
    ``gopher_above_avg_threshold``, ``gopher_too_many_hashes``, ``gopher_too_many_ellipsis``,
    ``gopher_too_many_bullets``, ``gopher_too_many_end_ellipsis``,
    ``gopher_below_alpha_threshold``, ``gopher_enough_stop_words``. A null (or 0) threshold
    turns its rule off.
    """

    name = "gopher_quality_filter"
    version = "1"
    Params = GopherQualityFilterParams

    def __init__(self, params=None):
        super().__init__(params)
        words = DEFAULT_STOP_WORDS if self.params.stop_words is None else self.params.stop_words
        self._stop_words = frozenset(words)

    def compute_stats(self, batch: pa.Table) -> dict[str, Sequence[Any]]:
        words_of = splitter(self.params.language).split
        columns: dict[str, list[float]] = {name: [] for name in STATISTICS}
        for text in batch.column(doc.TEXT).to_pylist():
            for name, value in zip(STATISTICS, self._document_stats(text or "", words_of)):
                columns[name].append(value)
        return columns

    def _document_stats(self, text: str, words_of) -> tuple[float, ...]:
        words = words_of(text)
        n_words = len(words)
        content_words = list(compress(words, map(NOT_SYMBOL.__getitem__, words)))
        n_content = len(content_words)
        avg_length = sum(map(len, content_words)) / n_content if n_content else 0.0
        lines = text.splitlines()
        bullets = sum(1 for s in lines if s.lstrip().startswith(("•", "-")))
        end_ellipsis = sum(1 for s in lines if s.rstrip().endswith(("...", "…")))
        return (
            n_content,
            avg_length,
            safe_ratio(text.count("#"), n_words),
            safe_ratio(text.count("...") + text.count("…"), n_words),
            safe_ratio(bullets, len(lines)),
            safe_ratio(end_ellipsis, len(lines)),
            safe_ratio(count_true(words, HAS_ALPHA), n_words),
            len(self._stop_words.intersection(words)),
        )

    def decide(self, stats: dict[str, Sequence[Any]]) -> list[Rejection | None]:
        p = self.params
        # (statistic, reason, bound, True when the bound is a minimum), in DataTrove's order.
        rules = [
            (WORD_COUNT, "gopher_short_doc", p.min_doc_words, True),
            (WORD_COUNT, "gopher_long_doc", p.max_doc_words, False),
            (AVG_WORD_LENGTH, "gopher_below_avg_threshold", p.min_avg_word_length, True),
            (AVG_WORD_LENGTH, "gopher_above_avg_threshold", p.max_avg_word_length, False),
            (HASH_RATIO, "gopher_too_many_hashes", p.max_symbol_word_ratio, False),
            (ELLIPSIS_RATIO, "gopher_too_many_ellipsis", p.max_symbol_word_ratio, False),
            (BULLET_LINES, "gopher_too_many_bullets", p.max_bullet_lines_ratio, False),
            (ELLIPSIS_LINES, "gopher_too_many_end_ellipsis", p.max_ellipsis_lines_ratio, False),
            (ALPHA_WORDS, "gopher_below_alpha_threshold", p.max_non_alpha_words_ratio, True),
            (STOP_WORDS, "gopher_enough_stop_words", p.min_stop_words, True),
        ]
        rules = [rule for rule in rules if rule[2]]  # null or 0 turns a rule off
        decisions: list[Rejection | None] = []
        for i in range(len(stats[WORD_COUNT])):
            decision = None
            for statistic, reason, bound, is_minimum in rules:
                value = stats[statistic][i]
                if (value < bound) if is_minimum else (value > bound):
                    decision = Rejection(reason, statistic, float(value))
                    break
            decisions.append(decision)
        return decisions
