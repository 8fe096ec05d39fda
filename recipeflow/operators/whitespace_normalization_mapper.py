"""``whitespace_normalization_mapper``: Data-Juicer's whitespace normalization, same output."""

from __future__ import annotations

from recipeflow.operators.text.dj_text import OTHER_WHITESPACE
from recipeflow.operators.base import Mapper, OperatorParams
from recipeflow.operators.registry import register


class WhitespaceNormalizationMapperParams(OperatorParams):
    pass


@register
class WhitespaceNormalizationMapper(Mapper):
    """Strip the text, then turn tabs, no-break, zero-width and other Unicode spaces into " ", as Data-Juicer.

    Line breaks stay; runs of spaces are not collapsed (``normalize_whitespace`` does both).
    """

    name = "whitespace_normalization_mapper"
    version = "1"
    Params = WhitespaceNormalizationMapperParams

    def map_text(self, text: str) -> str:
        return OTHER_WHITESPACE.sub(" ", text.strip())
