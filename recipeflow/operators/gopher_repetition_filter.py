"""``gopher_repetition_filter``: drop repetitive documents (Gopher, Rae et al. 2021, table A1).

Parameters, defaults, rule order and reason codes are those of DataTrove's
``GopherRepetitionFilter``, so a FineWeb pipeline translates line by line.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from recipeflow.operators.text.text_stats import (
    duplicates,
    repeated_ngram_chars_by_size,
    top_ngram_chars,
)
from recipeflow.operators.text.words import splitter
from recipeflow.operators.base import (
    DocumentStatsFilter, OperatorParams, Ratio, Rule, RuleTableFilter)
from recipeflow.operators.registry import register

_PARAGRAPH_BREAK = re.compile(r"\n{2,}")
_LINE_BREAKS = re.compile(r"\n+")

NGramThresholds = tuple[tuple[int, float], ...]


class GopherRepetitionFilterParams(OperatorParams):
    dup_line_frac: Ratio | None = Field(
        0.3, description="Drop when more than this fraction of lines repeat an earlier line.")
    dup_para_frac: Ratio | None = Field(
        0.3, description="Drop when more than this fraction of paragraphs repeat an earlier one.")
    dup_line_char_frac: Ratio | None = Field(
        0.2, description="Drop when repeated lines hold more than this fraction of characters.")
    dup_para_char_frac: Ratio | None = Field(
        0.2, description="Drop when repeated paragraphs hold more than this fraction of characters.")
    top_n_grams: NGramThresholds = Field(
        ((2, 0.2), (3, 0.18), (4, 0.16)),
        description="[n, fraction] pairs: drop when the most frequent word n-gram covers more "
        "than this fraction of the characters.",
    )
    dup_n_grams: NGramThresholds = Field(
        ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)),
        description="[n, fraction] pairs: drop when repeated word n-grams cover more than this "
        "fraction of the characters.",
    )
    language: str = Field("en", description="Language of the documents: decides word splitting.")

    @field_validator("top_n_grams", "dup_n_grams")
    @classmethod
    def _positive_n(cls, value: NGramThresholds) -> NGramThresholds:
        for n, _ in value:
            if n < 1:
                raise ValueError(f"n-gram sizes must be at least 1, got {n}")
        return value


# Statistic names, in the order the rules are applied.
TEXT_LENGTH = "gopher_rep_text_length"
PARA_FRAC = "gopher_rep_dup_para_frac"
PARA_CHAR_FRAC = "gopher_rep_dup_para_char_frac"
LINE_FRAC = "gopher_rep_dup_line_frac"
LINE_CHAR_FRAC = "gopher_rep_dup_line_char_frac"


def top_ngram_stat(n: int) -> str:
    return f"gopher_rep_top_{n}_gram_frac"


def dup_ngram_stat(n: int) -> str:
    return f"gopher_rep_dup_{n}_gram_frac"


@register
class GopherRepetitionFilter(DocumentStatsFilter, RuleTableFilter):
    """Drop documents with repeated lines, paragraphs or word n-grams (DataTrove's GopherRepetitionFilter).

    Statistics (fractions of paragraphs, lines or characters; and ``gopher_rep_text_length``):
    ``gopher_rep_dup_para_frac``, ``gopher_rep_dup_para_char_frac``,
    ``gopher_rep_dup_line_frac``, ``gopher_rep_dup_line_char_frac``,
    ``gopher_rep_top_<n>_gram_frac``, ``gopher_rep_dup_<n>_gram_frac``. Reasons, checked in
    this order: ``empty``, ``dup_para_frac``, ``dup_para_char_frac``, ``dup_line_frac``,
    ``dup_line_char_frac``, ``top_<n>_gram``, ``duplicated_<n>_n_grams``. A threshold of null
    (or 0) turns its rule off.
    """

    name = "gopher_repetition_filter"
    version = "1"
    Params = GopherRepetitionFilterParams

    def statistic_names(self) -> list[str]:
        p = self.params
        names = [PARA_FRAC, PARA_CHAR_FRAC, LINE_FRAC, LINE_CHAR_FRAC]
        names += [top_ngram_stat(n) for n, _ in p.top_n_grams]
        names += [dup_ngram_stat(n) for n, _ in p.dup_n_grams]
        return names + [TEXT_LENGTH]

    def start_batch(self) -> None:
        self._words_of = splitter(self.params.language).split

    def document_stats(self, text: str) -> list[float]:
        p = self.params
        length = len(text)
        if not length:
            return [0.0] * (4 + len(p.top_n_grams) + len(p.dup_n_grams)) + [0]
        paragraphs = _PARAGRAPH_BREAK.split(text.strip())
        para_dups, para_dup_chars = duplicates(paragraphs)
        lines = _LINE_BREAKS.split(text)
        line_dups, line_dup_chars = duplicates(lines)
        values = [
            para_dups / len(paragraphs),
            para_dup_chars / length,
            line_dups / len(lines),
            line_dup_chars / length,
        ]
        words = self._words_of(text)
        values += [top_ngram_chars(words, n) / length for n, _ in p.top_n_grams]
        repeated = repeated_ngram_chars_by_size(words, [n for n, _ in p.dup_n_grams])
        values += [chars / length for chars in repeated]
        return values + [length]

    def rules(self) -> list[Rule]:
        """DataTrove's order. The paragraph and line rules apply only when their threshold is
        set (DataTrove's ``if self.dup_para_frac and ...``); the n-gram rules always apply."""
        p = self.params
        rules = [
            Rule("empty", TEXT_LENGTH, fails=lambda length: not length),
            Rule("dup_para_frac", PARA_FRAC, p.dup_para_frac, param="dup_para_frac"),
            Rule("dup_para_char_frac", PARA_CHAR_FRAC, p.dup_para_char_frac, param="dup_para_char_frac"),
            Rule("dup_line_frac", LINE_FRAC, p.dup_line_frac, param="dup_line_frac"),
            Rule("dup_line_char_frac", LINE_CHAR_FRAC, p.dup_line_char_frac, param="dup_line_char_frac"),
        ]
        rules += [
            Rule(f"top_{n}_gram", top_ngram_stat(n), frac, param="top_n_grams", fails=lambda v, t=frac: v > t)
            for n, frac in p.top_n_grams
        ]
        rules += [
            Rule(f"duplicated_{n}_n_grams", dup_ngram_stat(n), frac, param="dup_n_grams", fails=lambda v, t=frac: v > t)
            for n, frac in p.dup_n_grams
        ]
        return rules
