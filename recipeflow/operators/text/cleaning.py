"""Text cleaning shared by the native operators and their Data-Juicer-named twins.

One implementation per kind of cleaning (Unicode repair has its own module,
``_unicode_repair``), so ``remove_links`` and ``clean_links_mapper``, ``normalize_punctuation`` and
``punctuation_normalization_mapper``, ``pii_redact`` and ``clean_email_mapper`` /
``clean_ip_mapper`` cannot drift apart: they differ only in defaults and parameter names.

The regular expressions are the reference tools' own (Data-Juicer 1.6.1's mappers, DataTrove's
``PIIFormatter`` as FineWeb used it): matching exactly what they match is the point. So is the
engine: Data-Juicer compiles its patterns with the ``regex`` module, DataTrove with ``re``. They
differ at the edges (``\\s`` and ``\\w`` for some code points) and in speed: on some real pages
``re`` backtracks for seconds on the link pattern where ``regex`` takes a millisecond.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence

import regex

# --- Data-Juicer's default patterns (clean_email_mapper, clean_ip_mapper, clean_links_mapper)

DJ_EMAIL_PATTERN = r"[A-Za-z0-9.\-+_]+@[a-z0-9.\-+_]+\.[a-z]+"

_DJ_IPV4_OCTET_DOT = (
    r"(?:(?:1[0-9][0-9]\.)|(?:2[0-4][0-9]\.)|(?:25[0-5]\.)|(?:[1-9][0-9]\.)|(?:[0-9]\.))"
)
_DJ_IPV4_OCTET = r"(?:(?:1[0-9][0-9])|(?:2[0-4][0-9])|(?:25[0-5])|(?:[1-9][0-9])|(?:[0-9]))"
_DJ_IPV6 = r"([\da-fA-F]{1,4}:){7}[\da-fA-F]{1,4}"  # the group is Data-Juicer's: \1 refers to it
DJ_IP_PATTERN = _DJ_IPV4_OCTET_DOT + "{3}" + _DJ_IPV4_OCTET + "|" + _DJ_IPV6
# Prefilters, for ``re``: a pattern every match of the Data-Juicer pattern (under ``regex``, case
# folding included) also matches, so a text without a prefilter match is left alone without
# running the costlier pattern. An IP address has "d.d.d.d" (1-3 digits each), or eight groups
# of up to four characters with seven colons between them.
DJ_IP_PREFILTER = r"[0-9]\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]|[^:]:(?:[^:]{1,4}:){6}[^:]"

# A scheme (http://, mailto:), www., or a host name followed by a slash; then the link's body,
# with balanced parentheses; it never ends on punctuation that usually closes a sentence.
DJ_LINK_PATTERN = (
    r"(?i)\b("
    r"(?:[a-z][\w-]+:(?:\/{1,3}|[a-z0-9%])|www\d{0,3}[.]|[a-z0-9.\-]+[.][a-z]{2,4}\/)"
    r"(?:[^\s()<>]+|\(([^\s()<>]+|(\([^\s()<>]+\)))*\))"
    r"+(?:\(([^\s()<>]+|(\([^\s()<>]+\)))*\)|[^\s`!()\[\]{};:\'\".,<>?«»“”‘’])"
    r")"
)
# A link has a scheme's ":" followed by "/" or an (ASCII or case-folded) letter, digit or "%";
# or "www"; or a host name's ".tld/".
DJ_LINK_PREFILTER = r":[^ \t\n]|(?i:www)|\.[^ \t\n./]{2,4}/"

# --- FineWeb's PII patterns and replacements (DataTrove's PIIFormatter)

_EMAIL_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)"
FINEWEB_EMAIL_PATTERN = (
    rf"\b{_EMAIL_ATOM}(?:\.{_EMAIL_ATOM})*@"
    rf"(?:(?:{_HOST_LABEL}\.)+{_HOST_LABEL}"  # a host name
    rf"|\[(?:{_OCTET}\.){{3}}(?:{_OCTET}|[A-Za-z0-9-]*[A-Za-z0-9]:)\])"  # or [an address literal]
)
FINEWEB_IP_PATTERN = rf"(?:{_OCTET}\.){{3}}{_OCTET}"
# example.com and example.org are reserved for examples; the addresses are the ones FineWeb used
# (they did not answer pings when DataTrove chose them).
FINEWEB_EMAIL_REPLACEMENTS = ("email@example.com", "firstname.lastname@example.org")
FINEWEB_IP_REPLACEMENTS = (
    "22.214.171.124",
    "126.96.36.199",
    "188.8.131.52",
    "184.108.40.206",
    "220.127.116.11",
    "18.104.22.168",
)


def strip_raw_string_marks(pattern: str) -> str:
    """Data-Juicer accepts a pattern written as ``r'...'`` or ``r"..."`` and drops the marks."""
    if len(pattern) > 2 and pattern[:2] in ("r'", 'r"') and pattern[-1] == pattern[1]:
        return pattern[2:-1]
    return pattern


def compile_datajuicer_pattern(pattern: str) -> regex.Pattern:
    """A pattern as Data-Juicer's mappers compile it: ``regex`` module, DOTALL."""
    return regex.compile(strip_raw_string_marks(pattern), regex.DOTALL)


def check_pattern(pattern: str) -> str:
    """``pattern`` if it compiles; else ``ValueError`` saying what is wrong, for the recipe."""
    try:
        compile_datajuicer_pattern(pattern)
    except regex.error as error:
        raise ValueError(f"not a valid regular expression: {error}") from None
    return pattern


def check_template(pattern: str, template: str) -> str:
    """``template`` if it is a valid replacement for ``pattern`` (``\\1`` needs a group 1, a
    lone backslash is an error); else ``ValueError``. ``regex`` reads templates as ``re`` does;
    its parser is private, so ``re``'s checks them (skipped for patterns only ``regex`` reads)."""
    try:
        compiled = re.compile(strip_raw_string_marks(pattern), re.DOTALL)
    except re.error:
        return template
    # 3.11: re._compile_repl(repl, pattern); 3.12+: re._compile_template(pattern, repl).
    try:
        if hasattr(re, "_compile_repl"):
            re._compile_repl(template, compiled)  # type: ignore[attr-defined]
        elif hasattr(re, "_compile_template"):
            re._compile_template(compiled, template)  # type: ignore[attr-defined]
    except (re.error, IndexError) as error:
        raise ValueError(f"not a valid replacement for this pattern: {error}") from None
    return template


class PatternReplacer:
    """Replace every match of a pattern, cycling through replacements within each document.

    ``template=True`` treats a single replacement as ``re.sub`` does (``\\1`` is group 1), as
    Data-Juicer's mappers do; otherwise replacements are literal text. ``validator`` can turn
    a match down (it is then left as it is), as DataTrove does for non-public IP addresses.
    The cycle restarts with every document so the output never depends on how a dataset was
    sharded (DataTrove carries it across documents within one worker). ``prefilter``, a
    cheaper pattern that matches wherever ``pattern`` does, lets texts without a match of it
    pass untouched.
    """

    def __init__(
        self,
        pattern: re.Pattern[str] | regex.Pattern,
        replacements: Sequence[str],
        *,
        template: bool = False,
        validator: Callable[[str], bool] | None = None,
        prefilter: re.Pattern[str] | None = None,
    ):
        if not replacements:
            raise ValueError("at least one replacement is needed (use \"\" to delete matches)")
        self.regex = pattern
        self.replacements = tuple(replacements)
        self.validator = validator
        self.prefilter = prefilter
        self._simple = validator is None and len(self.replacements) == 1
        only = self.replacements[0]
        self._simple_replacement = only if template else only.replace("\\", "\\\\")

    def replace(self, text: str) -> str:
        if self.prefilter is not None and self.prefilter.search(text) is None:
            return text
        if self._simple:
            return self.regex.sub(self._simple_replacement, text)
        position = 0

        def next_replacement(match: re.Match[str] | regex.Match) -> str:
            nonlocal position
            found = match.group(0)
            if self.validator is not None and not self.validator(found):
                return found
            replacement = self.replacements[position]
            position = (position + 1) % len(self.replacements)
            return replacement

        return self.regex.sub(next_replacement, text)


def as_replacements(value: str | Sequence[str]) -> tuple[str, ...]:
    """One replacement or several (used in turn)."""
    return (value,) if isinstance(value, str) else tuple(value)


def is_ip_to_redact(text: str, public_only: bool) -> bool:
    """Whether a matched address is one to replace: a valid IP address and, with
    ``public_only``, a globally routable one (private, loopback, documentation ranges stay)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:  # e.g. leading zeros: "01.02.03.04"
        return False
    return address.is_global or not public_only


# --- Punctuation: CCNet's table of Unicode punctuation and its ASCII equivalent, as
# Data-Juicer's punctuation_normalization_mapper applies it (including its mapping of the
# full-width digit one to a double quote).

PUNCTUATION_REPLACEMENTS = {
    "，": ",",
    "。": ".",
    "、": ",",
    "„": '"',
    "”": '"',
    "“": '"',
    "«": '"',
    "»": '"',
    "１": '"',
    "」": '"',
    "「": '"',
    "《": '"',
    "》": '"',
    "´": "'",
    "∶": ":",
    "：": ":",
    "？": "?",
    "！": "!",
    "（": "(",
    "）": ")",
    "；": ";",
    "–": "-",
    "—": " - ",
    "．": ". ",
    "～": "~",
    "’": "'",
    "…": "...",
    "━": "-",
    "〈": "<",
    "〉": ">",
    "【": "[",
    "】": "]",
    "％": "%",
    "►": "-",
}
# A substitution touches only the few characters to replace; str.translate with a table looks up
# every character of the text (ten times slower on real pages).
_PUNCTUATION = re.compile("[" + "".join(map(re.escape, PUNCTUATION_REPLACEMENTS)) + "]")


def _punctuation_replacement(match: re.Match[str]) -> str:
    return PUNCTUATION_REPLACEMENTS[match.group()]


def normalize_punctuation(text: str) -> str:
    """Unicode punctuation (full-width, typographic quotes and dashes) to ASCII."""
    return _PUNCTUATION.sub(_punctuation_replacement, text)
