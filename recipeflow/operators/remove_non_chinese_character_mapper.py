"""``remove_non_chinese_character_mapper``: Data-Juicer's removal of characters other than Chinese ones."""

from __future__ import annotations

import re

from pydantic import Field

from recipeflow.operators.base import Mapper, OperatorParams
from recipeflow.operators.registry import register


class RemoveNonChineseCharacterMapperParams(OperatorParams):
    keep_alphabet: bool = Field(True, description="Keep the letters A-Z and a-z.")
    keep_number: bool = Field(True, description="Keep the digits 0-9.")
    keep_punc: bool = Field(True, description="Keep Data-Juicer's list of Chinese and ASCII punctuation.")


@register
class RemoveNonChineseCharacterMapper(Mapper):
    """Remove every character outside the CJK block U+4E00-U+9FA5 (and optionally letters, digits, punctuation), as Data-Juicer's remove_non_chinese_character_mapper."""

    name = "remove_non_chinese_character_mapper"
    version = "1"
    Params = RemoveNonChineseCharacterMapperParams

    def __init__(self, params=None):
        super().__init__(params)
        p = self.params
        # Data-Juicer's pattern, built the same way (with its quirk: without keep_punc the class
        # ends at once and matches one character at a time; the result is the same).
        pattern = "[^\u4e00-\u9fa5"
        if p.keep_alphabet:
            pattern += "A-Za-z"
        if p.keep_number:
            pattern += "0-9"
        pattern += ".， ,\\-。%《*》/•、&＆(—)（+）：？!！“”·]+" if p.keep_punc else "]"
        self._pattern = re.compile(pattern, flags=re.DOTALL)

    def map_text(self, text: str) -> str:
        return self._pattern.sub("", text)
