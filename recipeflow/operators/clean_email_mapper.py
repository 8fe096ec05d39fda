"""``clean_email_mapper``: Data-Juicer's e-mail address removal, same parameters, same output."""

from __future__ import annotations

from recipeflow.operators.text.cleaning import DJ_EMAIL_PATTERN
from recipeflow.operators.text.dj_pattern import PatternMapper, PatternMapperParams
from recipeflow.operators.registry import register


class CleanEmailMapperParams(PatternMapperParams):
    default_pattern = DJ_EMAIL_PATTERN
    default_prefilter = "@"


@register
class CleanEmailMapper(PatternMapper):
    """Remove (or replace with `repl`) e-mail addresses, as Data-Juicer's clean_email_mapper.

    Default pattern: ``[A-Za-z0-9.\\-+_]+@[a-z0-9.\\-+_]+\\.[a-z]+`` (lower-case domains only, as
    in Data-Juicer). For FineWeb-style redaction with placeholder addresses, see ``pii_redact``.
    """

    name = "clean_email_mapper"
    version = "1"
    Params = CleanEmailMapperParams
