"""``remove_long_words_mapper``: Data-Juicer's removal of too long (or short) words."""

from __future__ import annotations

import sys

from pydantic import Field

from recipeflow.operators.text.dj_text import SPECIAL_CHARACTERS, keep_words, strip_characters
from recipeflow.operators.base import Mapper, OperatorParams
from recipeflow.operators.registry import register


class RemoveLongWordsMapperParams(OperatorParams):
    min_len: int = Field(1, description="Remove words shorter than this (characters).")
    max_len: int = Field(
        sys.maxsize,
        description="Remove words longer than this (characters), unless they fit once "
        "stripped of surrounding punctuation, digits and symbols.",
    )


@register
class RemoveLongWordsMapper(Mapper):
    """Remove words outside [min_len, max_len] characters, as Data-Juicer's remove_long_words_mapper.

    A word too long is kept if it fits once stripped of special characters at its ends (so
    "(word)," counts as "word"). The text is rejoined as Data-Juicer does: single spaces
    between words, no empty lines.
    """

    name = "remove_long_words_mapper"
    version = "1"
    Params = RemoveLongWordsMapperParams

    def _keep(self, word: str) -> bool:
        low, high = self.params.min_len, self.params.max_len
        length = len(word)
        if low <= length <= high:
            return True
        if length > high:  # stripping can only help a word that is too long
            return low <= len(strip_characters(word, SPECIAL_CHARACTERS)) <= high
        return False

    def map_text(self, text: str) -> str:
        return keep_words(text, self._keep)
