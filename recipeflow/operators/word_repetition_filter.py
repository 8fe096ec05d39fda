"""``word_repetition_filter`` (Data-Juicer): keep documents whose word n-gram repetition ratio
is within bounds."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import Field, PositiveInt

from recipeflow.operators.base import NonNegative, Ratio
from recipeflow.operators.text.datajuicer_text import (
    RangeFilter,
    WordsParams,
    refined_words_of,
    words_tokenizer,
)
from recipeflow.operators.registry import register


class WordRepetitionFilterParams(WordsParams):
    rep_len: PositiveInt = Field(10, description="Length of the word n-grams.")
    min_ratio: Ratio | None = Field(0.0, description="Drop documents below this ratio.")
    max_ratio: NonNegative | None = Field(0.5, description="Drop documents above this ratio.")


def word_repetition_ratio(words: list[str], n: int) -> float:
    """Occurrences of word n-grams that occur more than once, over all word n-grams (0 when
    there are fewer than ``n`` words).

    Data-Juicer counts the n-grams joined by spaces; refined words hold no spaces (split on
    them, or sentencepiece pieces, which write a space as "▁"), so counting the tuples gives the
    same counts without building the strings (about twice as fast)."""
    total = len(words) - n + 1
    if total <= 0:
        return 0.0
    grams = Counter(zip(*(words[i:] for i in range(n))))
    if len(grams) == total:  # no n-gram repeats: most documents
        return 0.0
    return (total - list(grams.values()).count(1)) / total


@register
class WordRepetitionFilter(RangeFilter):
    """Keep documents whose word n-gram repetition ratio is within [min_ratio, max_ratio]
    (Data-Juicer's ``word_repetition_filter``).

    Statistic ``word_rep_ratio``: words are lower-cased and stripped of special characters
    (see ``words_num_filter``); over their ``rep_len``-word n-grams, the occurrences of n-grams
    seen more than once divided by the number of n-grams.
    """

    name = "word_repetition_filter"
    version = "1"
    Params = WordRepetitionFilterParams
    statistic = "word_rep_ratio"

    def measure(self, texts: list[str]) -> list[Any]:
        tokenizer = words_tokenizer(self.params)
        n = self.params.rep_len
        all_words = refined_words_of(texts, lower_case=True, tokenizer=tokenizer)
        return [word_repetition_ratio(words, n) for words in all_words]

    def bounds(self) -> tuple[float | None, float | None]:
        return self.params.min_ratio, self.params.max_ratio
