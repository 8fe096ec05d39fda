"""``fix_unicode``: repair broken Unicode (mojibake, HTML entities in text...) with ftfy."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from recipeflow.operators.text.unicode_repair import fix_unicode
from recipeflow.operators.base import Mapper, OperatorParams
from recipeflow.operators.registry import register


class FixUnicodeParams(OperatorParams):
    normalization: Literal["NFC", "NFKC", "NFD", "NFKD"] | None = Field(
        "NFC", description="Unicode normalization applied after the repair; null: none."
    )


@register
class FixUnicode(Mapper):
    """Repair broken Unicode with ftfy (mojibake such as "schÃ¶n" -> "schön"), then normalize it (NFC).

    The same implementation as Data-Juicer's ``fix_unicode_mapper``.
    """

    name = "fix_unicode"
    version = "1"
    Params = FixUnicodeParams

    def map_text(self, text: str) -> str:
        return fix_unicode(text, self.params.normalization)
