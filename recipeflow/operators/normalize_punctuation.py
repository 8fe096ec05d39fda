"""``normalize_punctuation``: Unicode punctuation to ASCII, as CCNet and Data-Juicer do."""

from __future__ import annotations

from recipeflow.operators.text.cleaning import normalize_punctuation
from recipeflow.operators.base import Mapper, OperatorParams
from recipeflow.operators.registry import register


class NormalizePunctuationParams(OperatorParams):
    pass


@register
class NormalizePunctuation(Mapper):
    """Normalize punctuation: full-width and typographic marks (，。「」“”–—…) to ASCII.

    CCNet's table as Data-Juicer's ``punctuation_normalization_mapper`` applies it (the same
    implementation): "—" becomes " - ", "．" becomes ". ", "…" becomes "...".
    """

    name = "normalize_punctuation"
    version = "1"
    Params = NormalizePunctuationParams

    def map_text(self, text: str) -> str:
        return normalize_punctuation(text)
