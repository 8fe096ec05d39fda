"""Unicode repair exactly as ``ftfy.fix_text``, without running ftfy where it changes nothing.

ftfy fixes a text line by line, each line through a dozen fixers in Python, and most lines of
real text need none. Three shortcuts, each proven to give ftfy's output byte for byte (tests
compare both on every language of the corpus and on mojibake):

* A line that holds none of the characters any fixer acts on, in which ftfy's mojibake detector
  finds nothing, and that is already normalized comes back from ftfy unchanged: it is passed
  over (and a whole text in that state, at once).
* ftfy's mojibake detector is one large regular expression tried at every position. Every
  alternative of it needs one character of a small, rare set, and no match is longer than a
  few characters, so it only runs on windows around those characters.
* A line whose only damage is curly quotes, Latin ligatures or full-width forms (most of the
  lines ftfy changes in real text) gets ftfy's own three fixers and the normalization directly,
  and is checked to be a fixed point, which is where ftfy's loop would stop.
"""

from __future__ import annotations

import re
import unicodedata

import ftfy
from ftfy import TextFixerConfig, badness, chardata

try:
    from re import _constants as sre_constants, _parser as sre_parser
except ImportError:  # Python before 3.11
    import sre_constants  # type: ignore[no-redef]
    import sre_parse as sre_parser  # type: ignore[no-redef]

UNICODE_NORMALIZATIONS = ("NFC", "NFKC", "NFD", "NFKD")


# --- ftfy's mojibake detector, searched only where it can match


def _positive_class(op, av) -> list[tuple[int, int]] | None:
    """The code point ranges a parsed literal or character class matches; ``None`` for
    anything else (negated classes and categories such as ``\\s`` match too much)."""
    if op is sre_constants.LITERAL:
        return [(av, av)]
    if op is not sre_constants.IN:
        return None
    ranges = []
    for item, value in av:
        if item is sre_constants.LITERAL:
            ranges.append((value, value))
        elif item is sre_constants.RANGE:
            ranges.append(value)
        else:  # NEGATE, CATEGORY
            return None
    return ranges


def _rarity_cost(ranges: list[tuple[int, int]]) -> int:
    """How often a class is expected to match in ordinary text: ASCII worst, then letters."""
    cost = 0
    for lo, hi in ranges:
        for code in range(lo, min(hi, lo + 4096) + 1):
            cost += 10000 if code < 128 else 10 if unicodedata.category(chr(code)).startswith("L") else 1
    return cost


def _anchor_characters(pattern: re.Pattern) -> tuple[str, int] | None:
    """A character class every match of ``pattern`` holds a character of, and the longest
    match; ``None`` when the pattern is not of the shape this reasoning needs.

    Each alternative at the top level is a sequence, and a literal or class in it is required
    for a match; the rarest one of each alternative is chosen."""
    if pattern.flags & re.IGNORECASE:
        return None
    parsed = sre_parser.parse(pattern.pattern, pattern.flags)
    longest = parsed.getwidth()[1]
    if longest >= sre_constants.MAXREPEAT:
        return None
    items = list(parsed)
    if len(items) == 1 and items[0][0] is sre_constants.BRANCH:
        alternatives = items[0][1][1]
    else:
        alternatives = [parsed]
    anchors: set[tuple[int, int]] = set()
    for alternative in alternatives:
        classes = [c for c in (_positive_class(op, av) for op, av in alternative) if c]
        if not classes:
            return None
        anchors.update(min(classes, key=_rarity_cost))
    body = "".join(
        re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}"
        for lo, hi in sorted(anchors)
    )
    return f"[{body}]", longest


def _badness_is_local() -> bool:
    """Whether a match of ftfy's mojibake pattern inside a line is also one inside the whole
    text (and inside any window around it): true when its only anchor is the known "^[ÃÂ][ ]"
    and it has no look-around, as in ftfy 6. If a later ftfy changes that, every line goes
    through ftfy."""
    pattern = badness.BADNESS_RE.pattern
    anchors = re.findall(r"(?<!\[)\^", pattern)
    return (
        len(anchors) == 1
        and "^[ÃÂ][ ]" in pattern
        and "(?" not in pattern
        and "$" not in pattern
        and "\\b" not in pattern
    )


def _mojibake_search():
    """``text -> bool``, equal to ``badness.BADNESS_RE.search(text) is not None``."""
    bad = badness.BADNESS_RE
    try:
        shape = _anchor_characters(bad) if _badness_is_local() else None
    except Exception:  # a later ftfy or Python parses differently: search everything
        shape = None
    if shape is None:
        return lambda text: bad.search(text) is not None
    anchor, longest = shape
    # A match holding an anchor character at p lies within [p - longest + 1, p + longest).
    # Runs of anchors closer than that share one window; the regex finds the runs in C.
    anchor_runs = re.compile(f"{anchor}(?:.{{0,{2 * longest - 2}}}{anchor})*", re.DOTALL)
    ascii_anchor = re.search(anchor, "".join(map(chr, range(128)))) is not None
    reach = longest - 1

    def looks_like_mojibake(text: str) -> bool:
        if text.isascii() and not ascii_anchor:
            return False
        # The pattern has no look-around and no "$"; "^" matches only at the text's real
        # start, whatever the window (both checked by _badness_is_local).
        for run in anchor_runs.finditer(text):
            if bad.search(text, max(0, run.start() - reach), run.end() + reach):
                return True
        return False

    return looks_like_mojibake


_FAST_PATH = _badness_is_local() and ftfy.__version__.startswith("6.")
looks_like_mojibake = _mojibake_search()
_LINE_STARTING_BADLY = re.compile(r"^[ÃÂ] ", re.MULTILINE)  # the anchored case of BADNESS_RE
_FTFY_SEGMENT = TextFixerConfig().max_decode_length


# --- What ftfy's fixers act on

# Quotes, ligatures and full-width forms: the three fixers that only translate characters.
_SIMPLE_FIXERS = ("fix_latin_ligatures", "fix_character_width", "uncurl_quotes")
_SIMPLE_TABLES = [chardata.LIGATURES, chardata.WIDTH_MAP]
_QUOTES = chardata.SINGLE_QUOTE_RE.pattern[1:-1] + chardata.DOUBLE_QUOTE_RE.pattern[1:-1]
# The rest: &: HTML entities; \x1b: terminal escapes; \r \u2028 \u2029 \x85: line breaks;
# \x80-\x9f: C1 controls; \ud800-\udfff: surrogates; and ftfy's control characters.
_OTHER_TRIGGERS = r"&\x1b\r\u2028\u2029\x85\x80-\x9f\ud800-\udfff" + "".join(
    re.escape(chr(code)) for code in sorted(chardata.CONTROL_CHARS)
)
_SIMPLE_TRIGGERS = _QUOTES + "".join(
    re.escape(chr(code)) for code in sorted({code for table in _SIMPLE_TABLES for code in table})
)
_FTFY_TRIGGERS = re.compile(f"[{_OTHER_TRIGGERS}{_SIMPLE_TRIGGERS}]")
_NOT_SIMPLE = re.compile(f"[{_OTHER_TRIGGERS}]")


def _unchanged_by_ftfy(text: str, normalization: str | None) -> bool:
    """True only if ftfy returns every line of ``text`` as it is.

    Checking a whole text at once is sound: a trigger character or a mojibake match inside a
    line is one in the text (the anchored case is checked at every line start), and a text
    that is normalized has normalized lines, since line breaks never combine."""
    return (
        _FAST_PATH
        and _FTFY_TRIGGERS.search(text) is None
        and _LINE_STARTING_BADLY.search(text) is None
        and (normalization is None or unicodedata.is_normalized(normalization, text))
        and not looks_like_mojibake(text)
    )


def _fix_simply(line: str, normalization: str | None) -> str | None:
    """ftfy's result for a line whose only damage is quotes, ligatures or full-width forms,
    or ``None`` when the line is not one.

    On such a line ftfy's first pass leaves the encoding alone (no mojibake), and every fixer
    but these three finds nothing to act on; when their output, normalized, is a fixed point,
    ftfy's second pass changes nothing and ftfy returns it."""
    if not _FAST_PATH or _NOT_SIMPLE.search(line) or looks_like_mojibake(line):
        return None
    for fixer in _SIMPLE_FIXERS:
        line = ftfy.FIXERS[fixer](line)
    if normalization is not None:
        line = unicodedata.normalize(normalization, line)
    return line if _unchanged_by_ftfy(line, normalization) else None


def fix_unicode(text: str, normalization: str | None = "NFC") -> str:
    """Repair mojibake and other Unicode damage with ftfy, then normalize (NFC by default).

    Exactly ``ftfy.fix_text(text, normalization=normalization)``: the same segments (lines,
    "\\n" kept), the same configuration (HTML entities are left alone from the first line with
    a "<" on), each segment through ``ftfy.fix_and_explain`` unless a shortcut above applies.
    """
    if len(text) > _FTFY_SEGMENT:  # ftfy cuts very long lines into pieces: leave that to it
        return ftfy.fix_text(text, normalization=normalization)
    if _unchanged_by_ftfy(text, normalization):
        return text
    config = TextFixerConfig(explain=False, normalization=normalization)
    fixed = []
    start = 0
    while start < len(text):
        end = text.find("\n", start) + 1 or len(text)
        segment = text[start:end]
        if config.unescape_html == "auto" and "<" in segment:
            config = config._replace(unescape_html=False)
        if _unchanged_by_ftfy(segment, normalization):
            fixed.append(segment)
        else:
            simply = _fix_simply(segment, normalization)
            fixed.append(simply if simply is not None else ftfy.fix_and_explain(segment, config).text)
        start = end
    return "".join(fixed)
