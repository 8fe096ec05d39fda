"""``pii_redact``: replace e-mail and IP addresses, FineWeb style (DataTrove's PIIFormatter)."""

from __future__ import annotations

import functools
import re

from pydantic import Field, field_validator

from recipeflow.operators.text.cleaning import (
    FINEWEB_EMAIL_PATTERN,
    FINEWEB_EMAIL_REPLACEMENTS,
    FINEWEB_IP_PATTERN,
    FINEWEB_IP_REPLACEMENTS,
    PatternReplacer,
    as_replacements,
    is_ip_to_redact,
)
from recipeflow.operators.base import Mapper, OperatorParams
from recipeflow.operators.registry import register


class PiiRedactParams(OperatorParams):
    remove_emails: bool = Field(True, description="Replace e-mail addresses.")
    remove_ips: bool = Field(True, description="Replace IPv4 addresses.")
    only_remove_public_ips: bool = Field(
        True,
        description="Replace only globally routable IPs; private (192.168.x.x, 10.x.x.x), "
        "loopback, link-local and documentation addresses are not personal data and stay.",
    )
    email_replacement: str | list[str] = Field(
        list(FINEWEB_EMAIL_REPLACEMENTS),
        description="Text put in place of each e-mail address; a list is used in turn.",
    )
    ip_replacement: str | list[str] = Field(
        list(FINEWEB_IP_REPLACEMENTS),
        description="Text put in place of each IP address; a list is used in turn.",
    )

    @field_validator("email_replacement", "ip_replacement")
    @classmethod
    def _not_empty(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError('an empty list; give at least one replacement ("" deletes)')
        return value


@register
class PiiRedact(Mapper):
    """Replace e-mail and public IP addresses with placeholders, as FineWeb did (DataTrove's PIIFormatter).

    The same patterns, replacement strings and rule for which IPs stay (non-public ones) as
    DataTrove. Within a document the replacements are used in turn, starting again with the
    first in every document, so the output does not depend on sharding (DataTrove carries the
    turn across documents within one worker).
    """

    name = "pii_redact"
    version = "1"
    Params = PiiRedactParams

    def __init__(self, params=None):
        super().__init__(params)
        p = self.params
        self._emails = PatternReplacer(
            re.compile(FINEWEB_EMAIL_PATTERN), as_replacements(p.email_replacement)
        )
        self._ips = PatternReplacer(
            re.compile(FINEWEB_IP_PATTERN),
            as_replacements(p.ip_replacement),
            validator=functools.partial(is_ip_to_redact, public_only=p.only_remove_public_ips),
        )

    def map_text(self, text: str) -> str:
        p = self.params
        if p.remove_emails and "@" in text:  # no "@", no address: skip the costly pattern
            text = self._emails.replace(text)
        if p.remove_ips:
            text = self._ips.replace(text)
        return text
