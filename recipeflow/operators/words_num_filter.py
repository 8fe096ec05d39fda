"""``words_num_filter`` (Data-Juicer): keep documents whose number of words is within bounds."""

from __future__ import annotations

import sys
from typing import Any

from pydantic import Field

from recipeflow.operators.base import Count
from recipeflow.operators.text.datajuicer_text import (
    RangeFilter,
    WordsParams,
    refined_words,
    split_words,
    strip_special,
    words_tokenizer,
)
from recipeflow.operators.registry import register


class WordsNumFilterParams(WordsParams):
    min_num: Count | None = Field(10, description="Drop documents with fewer words.")
    max_num: Count | None = Field(sys.maxsize, description="Drop documents with more words.")


@register
class WordsNumFilter(RangeFilter):
    """Keep documents whose number of words is within [min_num, max_num]
    (Data-Juicer's ``words_num_filter``).

    Statistic ``num_words``: words split on spaces, newlines and tabs (or sentencepiece pieces
    with ``tokenization``), special characters stripped from their ends, empty ones dropped.
    Case is kept, as in Data-Juicer.
    """

    name = "words_num_filter"
    version = "1"
    Params = WordsNumFilterParams
    statistic = "num_words"

    def measure(self, texts: list[str]) -> list[Any]:
        tokenizer = words_tokenizer(self.params)
        if tokenizer is not None:
            return [len(refined_words(t, lower_case=False, tokenizer=tokenizer)) for t in texts]
        return [len(strip_special(split_words(t))) for t in texts]

    def bounds(self) -> tuple[float | None, float | None]:
        return self.params.min_num, self.params.max_num
