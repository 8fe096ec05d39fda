"""``remove_links``: remove URLs and other links from the text."""

from __future__ import annotations

import re

from pydantic import Field

from recipeflow.operators.text.cleaning import (
    DJ_LINK_PATTERN,
    DJ_LINK_PREFILTER,
    PatternReplacer,
    compile_datajuicer_pattern,
)
from recipeflow.operators.base import Mapper, OperatorParams
from recipeflow.operators.registry import register


class RemoveLinksParams(OperatorParams):
    replacement: str = Field("", description="Literal text put in place of each link; \"\" deletes.")


@register
class RemoveLinks(Mapper):
    """Remove links from the text: URLs with a scheme (http://, ftp://, mailto:...), www. addresses and host/path forms.

    Uses Data-Juicer's link pattern (the same as ``clean_links_mapper``, so results agree);
    a link's closing sentence punctuation (``.``, ``,``, ``)``, quotes) is left in place.
    """

    name = "remove_links"
    version = "1"
    Params = RemoveLinksParams

    def __init__(self, params=None):
        super().__init__(params)
        self._replacer = PatternReplacer(
            compile_datajuicer_pattern(DJ_LINK_PATTERN),
            [self.params.replacement],
            prefilter=re.compile(DJ_LINK_PREFILTER),
        )

    def map_text(self, text: str) -> str:
        return self._replacer.replace(text)
