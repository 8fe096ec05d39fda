"""``punctuation_normalization_mapper``: Data-Juicer's punctuation normalization, same output."""

from __future__ import annotations

from recipeflow.operators.text.cleaning import normalize_punctuation
from recipeflow.operators.base import Mapper, OperatorParams
from recipeflow.operators.registry import register


class PunctuationNormalizationMapperParams(OperatorParams):
    pass


@register
class PunctuationNormalizationMapper(Mapper):
    """Unicode punctuation to its ASCII equivalent, as Data-Juicer's punctuation_normalization_mapper.

    The same implementation as the native ``normalize_punctuation``.
    """

    name = "punctuation_normalization_mapper"
    version = "1"
    Params = PunctuationNormalizationMapperParams

    def map_text(self, text: str) -> str:
        return normalize_punctuation(text)
