"""``stopwords_filter`` (Data-Juicer): keep documents whose share of stop words is within
bounds."""

from __future__ import annotations

from pydantic import Field

from recipeflow.operators.base import NonNegative, Ratio
from recipeflow.operators.text.datajuicer_text import WordListRatioFilter, WordsAugmentationParams
from recipeflow.operators.registry import register


class StopWordsFilterParams(WordsAugmentationParams):
    min_ratio: Ratio | None = Field(0.3, description="Drop documents below this ratio.")
    max_ratio: NonNegative | None = Field(1.0, description="Drop documents above this ratio.")
    stopwords_dir: str | None = Field(
        None,
        description="Folder (any fsspec path) of JSON files whose name contains 'stopwords', "
        "each {language: [words]} (Data-Juicer's format); null: the bundled lists (BigScience's "
        "lists, Data-Juicer's origin, for ar bn ca en es eu fr hi id pt ur vi zh; the stop-words "
        "package for the others: see data/NOTICE). lang 'all' uses every language's words.",
    )


@register
class StopWordsFilter(WordListRatioFilter):
    """Keep documents whose ratio of stop words is within [min_ratio, max_ratio]
    (Data-Juicer's ``stopwords_filter``).

    Statistic ``stopwords_ratio``: words lower-cased and stripped of special characters
    (optionally augmented), the share of them in the stop-word list of ``lang``.
    """

    name = "stopwords_filter"
    version = "2"  # 2: BigScience lists for 13 languages
    Params = StopWordsFilterParams
    statistic = "stopwords_ratio"

    word_list = "stopwords"
    words_dir_param = "stopwords_dir"
