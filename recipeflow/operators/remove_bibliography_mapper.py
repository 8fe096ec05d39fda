"""``remove_bibliography_mapper``: Data-Juicer's removal of a LaTeX document's bibliography and appendix."""

from __future__ import annotations

import re

from recipeflow.operators.base import Mapper, OperatorParams
from recipeflow.operators.registry import register

# Data-Juicer's pattern: from the first of these commands to the end of the text.
BIBLIOGRAPHY_PATTERN = re.compile(
    r"(\\appendix|\\begin\{references\}|\\begin\{REFERENCES\}|\\begin\{thebibliography\}|"
    r"\\bibliography\{.*\}).*$",
    flags=re.DOTALL,
)


class RemoveBibliographyMapperParams(OperatorParams):
    pass


@register
class RemoveBibliographyMapper(Mapper):
    """Remove everything from a LaTeX document's bibliography or appendix on, as Data-Juicer's remove_bibliography_mapper.

    The text is cut at the first ``\\appendix``, ``\\begin{references}``,
    ``\\begin{REFERENCES}``, ``\\begin{thebibliography}`` or ``\\bibliography{...}``.
    """

    name = "remove_bibliography_mapper"
    version = "1"
    Params = RemoveBibliographyMapperParams

    def map_text(self, text: str) -> str:
        return BIBLIOGRAPHY_PATTERN.sub("", text)
