"""``clean_copyright_mapper``: Data-Juicer's removal of copyright headers from code."""

from __future__ import annotations

import regex

from recipeflow.operators.base import Mapper, OperatorParams
from recipeflow.operators.registry import register

# Data-Juicer's patterns, with its engine (the `regex` module).
_BLOCK_COMMENT = regex.compile(r"/\*[^*]*\*+(?:[^/*][^*]*\*+)*/")
_COPYRIGHT = regex.compile("copyright", regex.IGNORECASE)
_LINE_COMMENT_MARKS = ("//", "#", "--")


class CleanCopyrightMapperParams(OperatorParams):
    pass


def _without_leading_comment_lines(text: str) -> str:
    """Drop the leading lines that are comments (//, #, --) or empty."""
    lines = text.split("\n")
    skip = 0
    while skip < len(lines) and (not lines[skip] or lines[skip].startswith(_LINE_COMMENT_MARKS)):
        skip += 1
    return "\n".join(lines[skip:]) if skip else text


@register
class CleanCopyrightMapper(Mapper):
    """Remove a copyright header from code, as Data-Juicer's clean_copyright_mapper.

    If the text has a ``/* ... */`` comment, the first one is removed when it mentions
    "copyright" (and nothing else happens); otherwise the leading comment lines (``//``, ``#``,
    ``--``) and empty lines are removed.
    """

    name = "clean_copyright_mapper"
    version = "1"
    Params = CleanCopyrightMapperParams

    def map_text(self, text: str) -> str:
        block = _BLOCK_COMMENT.search(text)
        if block is None:
            return _without_leading_comment_lines(text)
        if _COPYRIGHT.search(block.group(0)):
            return text[: block.start()] + text[block.end():]
        return text
