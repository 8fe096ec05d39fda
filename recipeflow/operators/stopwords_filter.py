"""``stopwords_filter`` (Data-Juicer): keep documents whose share of stop words is within
bounds."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from recipeflow.operators._datajuicer_text import (
    RangeFilter,
    WordsAugmentationParams,
    matching_ratio,
    refined_words,
    words_for_language,
    words_tokenizer,
)
from recipeflow.operators.registry import register


class StopWordsFilterParams(WordsAugmentationParams):
    min_ratio: float | None = Field(0.3, description="Drop documents below this ratio.")
    max_ratio: float | None = Field(1.0, description="Drop documents above this ratio.")
    stopwords_dir: str | None = Field(
        None,
        description="Folder (any fsspec path) of JSON files whose name contains 'stopwords', "
        "each {language: [words]} (Data-Juicer's format); null: the bundled lists (from the "
        "stop-words package). lang 'all' uses every language's words.",
    )


@register
class StopWordsFilter(RangeFilter):
    """Keep documents whose ratio of stop words is within [min_ratio, max_ratio]
    (Data-Juicer's ``stopwords_filter``).

    Statistic ``stopwords_ratio``: words lower-cased and stripped of special characters
    (optionally augmented), the share of them in the stop-word list of ``lang``.
    """

    name = "stopwords_filter"
    version = "1"
    Params = StopWordsFilterParams
    statistic = "stopwords_ratio"

    def __init__(self, params=None):
        super().__init__(params)
        # Load now: an unknown language or a bad folder is an error before any data is read.
        words_for_language(self.params.stopwords_dir, "stopwords", self.params.lang)

    def measure(self, texts: list[str]) -> list[Any]:
        p = self.params
        vocabulary = words_for_language(p.stopwords_dir, "stopwords", p.lang)
        tokenizer = words_tokenizer(p)
        return [
            matching_ratio(
                refined_words(
                    t,
                    lower_case=True,
                    tokenizer=tokenizer,
                    use_words_aug=p.use_words_aug,
                    words_aug_group_sizes=p.words_aug_group_sizes,
                    words_aug_join_char=p.words_aug_join_char,
                ),
                vocabulary,
            )
            for t in texts
        ]

    def bounds(self) -> tuple[float | None, float | None]:
        return self.params.min_ratio, self.params.max_ratio
