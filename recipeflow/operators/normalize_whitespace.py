"""``normalize_whitespace``: one space between words, clean line ends, few blank lines."""

from __future__ import annotations

import re

from pydantic import Field

from recipeflow.operators.base import Mapper, OperatorParams
from recipeflow.operators.registry import register

# Every Unicode space except the line break: no-break, thin, ideographic, zero-width...
_SPACES = re.compile(r"[^\S\n]+|[\u200b\u200c\u200d\u2060\ufeff]+")
_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029\x0b\x0c\x85]")


class NormalizeWhitespaceParams(OperatorParams):
    collapse_spaces: bool = Field(
        True, description="Turn every run of spaces, tabs and Unicode spaces into one space."
    )
    strip_lines: bool = Field(True, description="Remove spaces at the start and end of lines.")
    max_blank_lines: int = Field(
        1, ge=0, description="Keep at most this many consecutive blank lines."
    )


@register
class NormalizeWhitespace(Mapper):
    """Normalize whitespace: Unicode spaces, line endings, runs of spaces and blank lines."""

    name = "normalize_whitespace"
    version = "1"
    Params = NormalizeWhitespaceParams

    def __init__(self, params=None):
        super().__init__(params)
        # More than max_blank_lines blank lines = more than max_blank_lines + 1 line breaks.
        self._blank_runs = re.compile(r"\n{%d,}" % (self.params.max_blank_lines + 2))
        self._blank_replacement = "\n" * (self.params.max_blank_lines + 1)

    def map_text(self, text: str) -> str:
        text = _LINE_BREAKS.sub("\n", text)
        if self.params.collapse_spaces:
            text = _SPACES.sub(" ", text)
        if self.params.strip_lines:
            text = "\n".join(line.strip() for line in text.split("\n"))
        text = self._blank_runs.sub(self._blank_replacement, text)
        return text.strip()
