"""``remove_comments_mapper``: Data-Juicer's removal of LaTeX comments (RedPajama arXiv)."""

from __future__ import annotations

import re

from pydantic import Field

from recipeflow.operators.base import Mapper, OperatorParams
from recipeflow.operators.registry import register

# Data-Juicer's patterns. The inline one also removes the character before the `%` (as
# Data-Juicer's does: "a % note" -> "a").
_INLINE = re.compile(r"[^\\]%.+$", flags=re.MULTILINE)
_WHOLE_LINE = re.compile(r"^%.*\n?", flags=re.MULTILINE)


class RemoveCommentsMapperParams(OperatorParams):
    doc_type: str | list[str] = Field(
        "tex", description="Type of document whose comments are removed (only 'tex' is supported, as in Data-Juicer)."
    )
    inline: bool = Field(True, description="Remove comments that follow text on a line.")
    multiline: bool = Field(True, description="Remove lines that are comments.")


@register
class RemoveCommentsMapper(Mapper):
    """Remove LaTeX comments, as Data-Juicer's remove_comments_mapper.

    ``inline``: a ``%`` not preceded by a backslash, with the character before it and the rest
    of the line; ``multiline``: lines starting with ``%``, with their line break. Every
    document is treated as LaTeX whatever ``doc_type`` says (as in Data-Juicer).
    """

    name = "remove_comments_mapper"
    version = "1"
    Params = RemoveCommentsMapperParams

    def map_text(self, text: str) -> str:
        if self.params.inline:
            text = _INLINE.sub("", text)
        if self.params.multiline:
            text = _WHOLE_LINE.sub("", text)
        return text
