"""``flagged_words_filter`` (Data-Juicer): keep documents whose share of flagged (obscene,
offensive) words is within bounds."""

from __future__ import annotations

from pydantic import Field

from recipeflow.operators.base import NonNegative, Ratio
from recipeflow.operators.text.datajuicer_text import WordListRatioFilter, WordsAugmentationParams
from recipeflow.operators.registry import register


class FlaggedWordsFilterParams(WordsAugmentationParams):
    min_ratio: Ratio | None = Field(0.0, description="Drop documents below this ratio.")
    max_ratio: NonNegative | None = Field(0.045, description="Drop documents above this ratio.")
    flagged_words_dir: str | None = Field(
        None,
        description="Folder (any fsspec path) of JSON files whose name contains "
        "'flagged_words', each {language: [words]} (Data-Juicer's format); null: the bundled "
        "lists (see recipeflow/operators/data/NOTICE). lang 'all' uses every language's words.",
    )


@register
class FlaggedWordsFilter(WordListRatioFilter):
    """Keep documents whose ratio of flagged words is within [min_ratio, max_ratio]
    (Data-Juicer's ``flagged_words_filter``).

    Statistic ``flagged_words_ratio``: words lower-cased and stripped of special characters
    (optionally augmented), the share of them in the flagged-word list of ``lang``.
    """

    name = "flagged_words_filter"
    version = "1"
    Params = FlaggedWordsFilterParams
    statistic = "flagged_words_ratio"

    word_list = "flagged_words"
    words_dir_param = "flagged_words_dir"
