"""``remove_specific_chars_mapper``: Data-Juicer's removal of given characters."""

from __future__ import annotations

import re

from pydantic import Field

from recipeflow.operators.base import Mapper, OperatorParams
from recipeflow.operators.registry import register


class RemoveSpecificCharsMapperParams(OperatorParams):
    chars_to_remove: str | list[str] = Field(
        "◆●■►▼▲▴∆▻▷❖♡□",
        description="Characters to remove (a string, each of its characters, or a list); empty: remove nothing.",
    )


@register
class RemoveSpecificCharsMapper(Mapper):
    """Remove every occurrence of the given characters, as Data-Juicer's remove_specific_chars_mapper.

    The default removes Data-Juicer's bullet and shape characters ``◆●■►▼▲▴∆▻▷❖♡□``. A list's
    entries are used character by character, as Data-Juicer builds one character class of them.
    """

    name = "remove_specific_chars_mapper"
    version = "1"
    Params = RemoveSpecificCharsMapperParams

    def __init__(self, params=None):
        super().__init__(params)
        chars = "".join(self.params.chars_to_remove)
        self._pattern = re.compile("[" + "".join(re.escape(c) for c in chars) + "]") if chars else None

    def map_text(self, text: str) -> str:
        return self._pattern.sub("", text) if self._pattern is not None else text
