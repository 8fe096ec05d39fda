"""``clean_links_mapper``: Data-Juicer's link removal, same parameters, same output."""

from __future__ import annotations

from recipeflow.operators.text.cleaning import DJ_LINK_PATTERN, DJ_LINK_PREFILTER
from recipeflow.operators.text.dj_pattern import PatternMapper, PatternMapperParams
from recipeflow.operators.registry import register


class CleanLinksMapperParams(PatternMapperParams):
    default_pattern = DJ_LINK_PATTERN
    default_prefilter = DJ_LINK_PREFILTER


@register
class CleanLinksMapper(PatternMapper):
    """Remove (or replace with `repl`) links (http://, ftp://, mailto:, www., host/path), as Data-Juicer's clean_links_mapper.

    The same default pattern as the native ``remove_links``.
    """

    name = "clean_links_mapper"
    version = "1"
    Params = CleanLinksMapperParams
