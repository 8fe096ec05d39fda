"""``fix_unicode_mapper``: Data-Juicer's ftfy repair, same parameters, same output."""

from __future__ import annotations

from pydantic import Field, field_validator

from recipeflow.operators.text.unicode_repair import UNICODE_NORMALIZATIONS, fix_unicode
from recipeflow.operators.base import Mapper, OperatorParams
from recipeflow.operators.registry import register


class FixUnicodeMapperParams(OperatorParams):
    normalization: str | None = Field(
        None,
        description="Unicode normalization after the repair: NFC, NFKC, NFD or NFKD (any case); "
        "null or empty: NFC.",
    )

    @field_validator("normalization")
    @classmethod
    def _known_form(cls, value: str | None) -> str | None:
        if value and value.upper() not in UNICODE_NORMALIZATIONS:
            raise ValueError(
                f"unknown normalization {value!r}; expected one of {', '.join(UNICODE_NORMALIZATIONS)}"
            )
        return value


@register
class FixUnicodeMapper(Mapper):
    """Repair broken Unicode with ftfy and normalize it, as Data-Juicer's fix_unicode_mapper.

    The same implementation as the native ``fix_unicode``.
    """

    name = "fix_unicode_mapper"
    version = "1"
    Params = FixUnicodeMapperParams

    def __init__(self, params=None):
        super().__init__(params)
        self._normalization = (self.params.normalization or "NFC").upper()

    def map_text(self, text: str) -> str:
        return fix_unicode(text, self._normalization)
