"""``gopher_quality_filter``: Gopher's quality heuristics (Rae et al. 2021).

Parameters, defaults, rule order and reason codes are those of DataTrove's
``GopherQualityFilter``, so a FineWeb pipeline translates line by line.
"""

from __future__ import annotations

from itertools import compress

from pydantic import Field

from recipeflow.operators.text.text_stats import HAS_ALPHA, NOT_SYMBOL, count_true, safe_ratio
from recipeflow.operators.text.words import splitter
from recipeflow.operators.base import (
    Count, DocumentStatsFilter, NonNegative, OperatorParams, Ratio, Rule, RuleTableFilter)
from recipeflow.operators.registry import register

# Gopher's English stop words: a document must hold at least two of them.
DEFAULT_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")


class GopherQualityFilterParams(OperatorParams):
    zero_turns_off = True  # DataTrove's rules: a threshold of 0 is off

    min_doc_words: Count | None = Field(
        50, description="Drop documents with fewer words (punctuation-only words not counted).")
    max_doc_words: Count | None = Field(100000, description="Drop documents with more words.")
    min_avg_word_length: Count | None = Field(
        3, description="Drop when the mean word length (characters) is below.")
    max_avg_word_length: Count | None = Field(
        10, description="Drop when the mean word length (characters) is above.")
    max_symbol_word_ratio: NonNegative | None = Field(
        0.1, description="Drop when '#' or ellipses per word exceed this.")
    max_bullet_lines_ratio: Ratio | None = Field(
        0.9, description="Drop when more than this fraction of lines start with a bullet.")
    max_ellipsis_lines_ratio: Ratio | None = Field(
        0.3, description="Drop when more than this fraction of lines end with an ellipsis.")
    max_non_alpha_words_ratio: Ratio | None = Field(
        0.8, description="Drop when fewer than this fraction of words contain a letter "
        "(DataTrove's name; it is a minimum of alphabetic words).")
    min_stop_words: Count | None = Field(
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
class GopherQualityFilter(DocumentStatsFilter, RuleTableFilter):
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
    statistics = STATISTICS

    def __init__(self, params=None):
        super().__init__(params)
        words = DEFAULT_STOP_WORDS if self.params.stop_words is None else self.params.stop_words
        self._stop_words = frozenset(words)

    def start_batch(self) -> None:
        self._words_of = splitter(self.params.language).split

    def document_stats(self, text: str) -> tuple[float, ...]:
        words = self._words_of(text)
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

    def rules(self) -> list[Rule]:
        """DataTrove's order; a null (or 0) threshold turns its rule off."""
        p = self.params
        return [
            Rule("gopher_short_doc", WORD_COUNT, p.min_doc_words, True, "min_doc_words"),
            Rule("gopher_long_doc", WORD_COUNT, p.max_doc_words, False, "max_doc_words"),
            Rule("gopher_below_avg_threshold", AVG_WORD_LENGTH, p.min_avg_word_length, True, "min_avg_word_length"),
            Rule("gopher_above_avg_threshold", AVG_WORD_LENGTH, p.max_avg_word_length, False, "max_avg_word_length"),
            Rule("gopher_too_many_hashes", HASH_RATIO, p.max_symbol_word_ratio, False, "max_symbol_word_ratio"),
            Rule("gopher_too_many_ellipsis", ELLIPSIS_RATIO, p.max_symbol_word_ratio, False, "max_symbol_word_ratio"),
            Rule("gopher_too_many_bullets", BULLET_LINES, p.max_bullet_lines_ratio, False, "max_bullet_lines_ratio"),
            Rule("gopher_too_many_end_ellipsis", ELLIPSIS_LINES, p.max_ellipsis_lines_ratio, False, "max_ellipsis_lines_ratio"),
            Rule("gopher_below_alpha_threshold", ALPHA_WORDS, p.max_non_alpha_words_ratio, True, "max_non_alpha_words_ratio"),
            Rule("gopher_enough_stop_words", STOP_WORDS, p.min_stop_words, True, "min_stop_words"),
        ]
