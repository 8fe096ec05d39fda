"""``remove_header_mapper``: Data-Juicer's removal of a LaTeX document's preamble (RedPajama arXiv)."""

from __future__ import annotations

import re

from pydantic import Field

from recipeflow.operators.base import Mapper, OperatorParams
from recipeflow.operators.registry import register

# Data-Juicer's pattern, kept as it is: everything before the first sectioning command, and that
# command. As in Data-Juicer, `paragraph` and `subparagraph` have no `|` between them, so a
# lone \paragraph{...} is not a header (only "\paragraph{..}\subparagraph{..}" is).
_SECTIONING = "".join(
    rf"\\\b{command}\b\*?(?:\[(.*?)\])?\{{(.*?)\}}" + separator
    for command, separator in (
        ("chapter", "|"), ("part", "|"), ("section", "|"), ("subsection", "|"),
        ("subsubsection", "|"), ("paragraph", ""), ("subparagraph", ""),
    )
)
HEADER_PATTERN = re.compile(r"^(.*?)(" + _SECTIONING + ")", flags=re.DOTALL)


class RemoveHeaderMapperParams(OperatorParams):
    drop_no_head: bool = Field(
        True, description="Empty the text of a document that has no sectioning command."
    )


@register
class RemoveHeaderMapper(Mapper):
    """Remove everything before a LaTeX document's first sectioning command, as Data-Juicer's remove_header_mapper.

    The first ``\\chapter``, ``\\part``, ``\\section``, ``\\subsection``, ``\\subsubsection``
    (with optional ``*`` and ``[short title]``) starts the kept text; what comes before it
    (preamble, title, abstract) is removed. A document with none becomes empty when
    ``drop_no_head`` (Data-Juicer 1.6.1's behaviour; a later filter drops empty texts).
    """

    name = "remove_header_mapper"
    version = "1"
    Params = RemoveHeaderMapperParams

    def map_text(self, text: str) -> str:
        if not HEADER_PATTERN.search(text):
            return "" if self.params.drop_no_head else text
        return HEADER_PATTERN.sub(r"\2", text)
