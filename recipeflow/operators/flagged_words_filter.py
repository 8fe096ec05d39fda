"""``flagged_words_filter`` (Data-Juicer): keep documents whose share of flagged (obscene,
offensive) words is within bounds."""

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


class FlaggedWordsFilterParams(WordsAugmentationParams):
    min_ratio: float | None = Field(0.0, description="Drop documents below this ratio.")
    max_ratio: float | None = Field(0.045, description="Drop documents above this ratio.")
    flagged_words_dir: str | None = Field(
        None,
        description="Folder (any fsspec path) of JSON files whose name contains "
        "'flagged_words', each {language: [words]} (Data-Juicer's format); null: the bundled "
        "lists (see recipeflow/operators/data/NOTICE). lang 'all' uses every language's words.",
    )


@register
class FlaggedWordsFilter(RangeFilter):
    """Keep documents whose ratio of flagged words is within [min_ratio, max_ratio]
    (Data-Juicer's ``flagged_words_filter``).

    Statistic ``flagged_words_ratio``: words lower-cased and stripped of special characters
    (optionally augmented), the share of them in the flagged-word list of ``lang``.
    """

    name = "flagged_words_filter"
    version = "1"
    Params = FlaggedWordsFilterParams
    statistic = "flagged_words_ratio"

    def __init__(self, params=None):
        super().__init__(params)
        # Load now: an unknown language or a bad folder is an error before any data is read.
        words_for_language(self.params.flagged_words_dir, "flagged_words", self.params.lang)

    def measure(self, texts: list[str]) -> list[Any]:
        p = self.params
        vocabulary = words_for_language(p.flagged_words_dir, "flagged_words", p.lang)
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
