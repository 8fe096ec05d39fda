"""``clean_ip_mapper``: Data-Juicer's IP address removal, same parameters, same output."""

from __future__ import annotations

from recipeflow.operators.text.cleaning import DJ_IP_PATTERN, DJ_IP_PREFILTER
from recipeflow.operators.text.dj_pattern import PatternMapper, PatternMapperParams
from recipeflow.operators.registry import register


class CleanIpMapperParams(PatternMapperParams):
    default_pattern = DJ_IP_PATTERN
    default_prefilter = DJ_IP_PREFILTER


@register
class CleanIpMapper(PatternMapper):
    """Remove (or replace with `repl`) IPv4 and full IPv6 addresses, as Data-Juicer's clean_ip_mapper.

    Every address is removed, private ones included; ``pii_redact`` replaces public ones only.
    """

    name = "clean_ip_mapper"
    version = "1"
    Params = CleanIpMapperParams
