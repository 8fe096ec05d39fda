"""Language-aware word splitting that gives the words DataTrove's filters count.

DataTrove splits words with spaCy's rule-based tokenizer (``spacy.blank(lang)``) for most
languages, then strips the tokens and drops empty ones. This module re-implements that
tokenizer's algorithm with our own regular expressions, so word counts, n-grams and stop-word
hits agree without spaCy installed:

1. the text is cut at whitespace (what ``str.split()`` does);
2. each chunk is looked up in the special cases (contractions, abbreviations, emoticons);
   otherwise leading punctuation (prefixes) and trailing punctuation (suffixes) are peeled off
   one at a time, stopping early when what is left is a special case;
3. what remains is kept whole when it is a URL, else cut at infixes (hyphens between letters,
   ``,`` between letters, ``.`` between a lower and an upper letter, ellipses, symbols);
4. special cases that contain punctuation are re-joined when the pieces of one chunk spell one.

Chunks repeat a lot in natural text, so each splitter caches the tokens of every chunk it has
seen: a document costs about one dictionary look-up per whitespace-separated chunk.

Japanese, which DataTrove segments with SudachiPy (a dictionary-based morphological analyser),
is approximated: tokens are cut further where the script changes (see
:func:`japanese_script_runs`). Chinese is split as DataTrove 0.10.1 splits it (spaCy's neutral
rules: its ``zh`` entry resolves to spaCy's ``xx``); Korean (Kiwi) and Vietnamese (pyvi) use the
neutral rules too. Every other language uses its punctuation profile (``_profile``: en, de,
nl, da, sv, nb, fr, it, es, pt, ca, ro, el, fa, pl) or spaCy's language-neutral rules, and its
special cases (``_spacy_exceptions``). Measured against spaCy 3.8 on the shared corpora
(bench/conformance_datatrove.py), tokens are identical for all these languages except French,
Turkish and Indonesian (spaCy's ``token_match`` lists and Indonesian's own rules are not
implemented), where word counts differ by 0.1-1.3%.

One module because it reproduces one algorithm, spaCy's tokenizer loop as DataTrove counts words, whose prefix, suffix, infix and exception steps call each other.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Callable, Iterable, Sequence

from recipeflow.operators.text.spacy_exceptions import special_cases

# ----------------------------------------------------------------------------------------------
# Character classes (built once per process from the Unicode database)
# ----------------------------------------------------------------------------------------------

# Scripts without case that spaCy counts as letters, CJK punctuation and enclosed forms included
# (they take part in the "letter before/after" tests of the infix and suffix rules).
_UNCASED_EXTRA = (
    "\u2e80-\u2fdf\u2ff0-\u2fff\u3000-\u303f\u3040-\u30ff\u31c0-\u31ef\u3200-\u33ff"
    "\ufe30-\ufe4f"
)
# Classes stay within the Basic Multilingual Plane: Python's regex engine tests a class with
# ranges beyond it one range at a time (~50x slower), and letters beyond it are rare.
_SCAN_LIMIT = 0x10000


def _ranges(codepoints: Iterable[int]) -> str:
    """A regex character-class body for a sorted sequence of code points."""
    parts: list[str] = []
    start = prev = None
    for cp in codepoints:
        if prev is not None and cp == prev + 1:
            prev = cp
            continue
        if start is not None:
            parts.append(_span(start, prev))
        start = prev = cp
    if start is not None:
        parts.append(_span(start, prev))
    return "".join(parts)


def _span(a: int, b: int) -> str:
    first, last = re.escape(chr(a)), re.escape(chr(b))
    return first if a == b else f"{first}-{last}"


@functools.lru_cache(maxsize=1)
def letter_classes() -> tuple[str, str, str]:
    """Class bodies for (all letters, lower-case or uncased letters, upper-case or uncased)."""
    letters, lower, upper = [], [], []
    for cp in range(_SCAN_LIMIT):
        ch = chr(cp)
        if not ch.isalpha():
            continue
        letters.append(cp)
        is_lower, is_upper = ch.islower(), ch.isupper()
        if not is_upper:
            lower.append(cp)
        if not is_lower:
            upper.append(cp)
    return (
        _ranges(letters) + _UNCASED_EXTRA,
        _ranges(lower) + _UNCASED_EXTRA,
        _ranges(upper) + _UNCASED_EXTRA,
    )


# Punctuation that spaCy splits off the start or end of a chunk.
_PUNCT = "…,:;!?¿؟¡()[]{}<>_#*&。？！，、；：～·।،۔؛٪"
_QUOTES = "'\"”“`‘´’‚,„»«「」『』（）〔〕【】《》〈〉〈〉⟦⟧"
_CURRENCY_CHARS = "$£€¥฿₽﷼₴₠₡₢₣₤₥₦₧₨₩₪₫₭₮₯₰₱₲₳₵₶₷₸₹₺₻₼₾₿"
_CURRENCY = ["US\\$", "C\\$", "A\\$"] + [re.escape(c) for c in _CURRENCY_CHARS]
_HYPHENS = ["-", "–", "—", "--", "---", "——", "~"]
_UNITS = (
    "km km² km³ m m² m³ dm dm² dm³ cm cm² cm³ mm mm² mm³ ha µm nm yd in ft kg g mg µg t lb oz "
    "m/s km/h kmh mph hPa Pa mbar mb MB kb KB gb GB tb TB T G M K % км км² км³ м м² м³ дм дм² "
    "дм³ см см² см³ мм мм² мм³ нм кг г мг м/с км/ч кПа Па мбар Кб КБ кб Мб МБ мб Гб ГБ гб Тб ТБ "
    "тбكم كم² كم³ م م² م³ سم سم² سم³ مم مم² مم³ كم غرام جرام جم كغ ملغ كوب اكواب"
).split()


# Symbols beyond the BMP (emoji, pictographs, musical and mahjong symbols): whole blocks.
_ASTRAL_SYMBOLS = "\U0001d000-\U0001d24f\U0001f000-\U0001faff"


def _symbol_class(exclude: str = "") -> str:
    """Other symbols (Unicode category So: dingbats, emoji, box drawing...), as a regex."""
    bmp = _ranges(
        cp for cp in range(0xA0, 0x10000)
        if unicodedata.category(chr(cp)) == "So" and chr(cp) not in exclude
    )
    return f"(?:[{bmp}]|[{_ASTRAL_SYMBOLS}])"


def _char_class(chars: str) -> str:
    return "".join(re.escape(c) for c in dict.fromkeys(chars))


def _alternation(pieces: Sequence[str]) -> str:
    return "|".join(pieces)


# ----------------------------------------------------------------------------------------------
# Rules of one language
# ----------------------------------------------------------------------------------------------


@dataclass
class TokenizerRules:
    """Everything that decides how one language's chunks are cut."""

    prefix_search: Callable
    suffix_search: Callable
    infix_finditer: Callable
    specials: dict[str, tuple[str, ...]]
    token_match: Callable | None = None
    url_match: Callable | None = None
    # Special cases that contain affixes: pieces (as the affix rules cut them) -> special tokens.
    rejoin: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Classes:
    """Character-class bodies the affix rules are written with."""

    letters: str
    lower: str
    upper: str
    symbols: str  # a regex for one other symbol (emoji, dingbats...)
    symbols_no_degree: str


@functools.lru_cache(maxsize=1)
def _classes() -> _Classes:
    letters, lower, upper = letter_classes()
    return _Classes(letters, lower, upper, _symbol_class(), _symbol_class(exclude="°"))


def _units(exclude: str = "") -> str:
    return _alternation([re.escape(u) for u in _UNITS if u != exclude])


def _one_of(chars: str) -> str:
    return f"[{_char_class(chars)}]"


_ELLIPSES = [r"\.\.+", "…"]
_APOSTROPHE_S = ["'s", "'S", "’s", "’S"]


def _base_prefixes(c: _Classes, punct: str = _PUNCT) -> list[str]:
    return [
        "§", "%", "=", "—", "–", r"\+(?![0-9])",
        _one_of(punct), *_ELLIPSES, _one_of(_QUOTES), *_CURRENCY, c.symbols,
    ]


def _period_after(c: _Classes, digits: bool = True, punct: bool = True,
                  quotes: str = _QUOTES, extra: str = "%²\\-\\+") -> str:
    """A period after a lower-case letter (or digit, punctuation, quote): a suffix."""
    chars = ("0-9" if digits else "") + c.lower + extra
    chars += _char_class((_PUNCT if punct else "") + quotes + "(?:)" + ("|" if punct else ""))
    return rf"(?<=[{chars}])\."


def _base_suffixes(c: _Classes, *, apostrophe_s: bool = True, dashes: bool = True,
                   quotes: str = _QUOTES, symbols: str | None = None, units: str | None = None,
                   period_after: str | None = None) -> list[str]:
    return [
        _one_of(_PUNCT), "……", *_ELLIPSES, _one_of(quotes), symbols or c.symbols,
        *(_APOSTROPHE_S if apostrophe_s else []), *(["—", "–"] if dashes else []),
        r"(?<=[0-9])\+",
        r"(?<=°[FfCcKk])\.",
        rf"(?<=[0-9])(?:{_alternation(_CURRENCY)})",
        rf"(?<=[0-9])(?:{units or _units()})",
        period_after or _period_after(c),
        rf"(?<=[{c.upper}][{c.upper}])\.",
    ]


def _base_infixes(c: _Classes, hyphen_after_digit: bool = False) -> list[str]:
    quotes = _char_class(_QUOTES)
    hyphen_left = c.letters + ("0-9" if hyphen_after_digit else "")
    return [
        *_ELLIPSES, c.symbols,
        r"(?<=[0-9])[+\-\*^](?=[0-9-])",
        rf"(?<=[{c.lower}{quotes}])\.(?=[{c.upper}{quotes}])",
        rf"(?<=[{c.letters}]),(?=[{c.letters}])",
        rf"(?<=[{hyphen_left}])(?:{_alternation(_HYPHENS)})(?=[{c.letters}])",
        rf"(?<=[{c.letters}0-9])[:<>=/](?=[{c.letters}])",
    ]


def _germanic_infixes(c: _Classes, colon_etc: str, slash: str | None,
                      extra: Sequence[str] = ()) -> list[str]:
    """Infixes of German, Dutch and the Nordic languages: hyphens stay inside words."""
    a = c.letters
    quotes_no_apostrophe = _char_class(_QUOTES.replace("'", ""))
    return [
        *_ELLIPSES, c.symbols,
        rf"(?<=[{c.lower}])\.(?=[{c.upper}])",
        rf"(?<=[{a}])[,!?](?=[{a}])",
        rf"(?<=[{a}]){colon_etc}(?=[{a}])",
        rf"(?<=[{a}]),(?=[{a}])",
        *([slash] if slash else []),
        rf"(?<=[{a}])([{quotes_no_apostrophe}\)\]\(\[])(?=[{a}])",
        rf"(?<=[{a}])--(?=[{a}])",
        *extra,
    ]


def _profile(language: str) -> tuple[list[str], list[str], list[str], str | None]:
    """(prefixes, suffixes, infixes, token_match) of a language, as spaCy's blank model has."""
    c = _classes()
    a, lower, upper = c.letters, c.lower, c.upper
    no_apostrophe = _QUOTES.replace("'", "")
    apostrophe_after = [r"(?<=[^sSxXzZ])\'"]
    if language == "en":
        return _base_prefixes(c), _base_suffixes(c), _base_infixes(c, hyphen_after_digit=True), None
    if language == "de":
        suffixes = ["''", "/"] + _base_suffixes(
            c, apostrophe_s=False, dashes=False, period_after=_period_after(c, digits=False))
        infixes = _germanic_infixes(c, "[:<>=]", rf"(?<=[0-9{a}])\/(?=[0-9{a}])",
                                    [r"(?<=[0-9])-(?=[0-9])"])
        return ["``"] + _base_prefixes(c), suffixes, infixes, None
    if language == "nl":
        suffixes = ["''"] + _base_suffixes(c, apostrophe_s=False, units=_units("%"))
        infixes = _germanic_infixes(c, "[:<>=]", None)
        infixes[5] = rf'(?<=[{a}"])[:<>=](?=[{a}])'
        return [",,"] + _base_prefixes(c), suffixes, infixes, None
    if language in ("da", "sv"):
        suffixes = _base_suffixes(c, apostrophe_s=False, quotes=no_apostrophe) + apostrophe_after
        if language == "da":
            infixes = _germanic_infixes(c, "[:<>=]", None,
                                        [rf"(?<=[{a}0-9])[:<>=/](?=[{a}])"])
        else:
            infixes = _germanic_infixes(c, "[<>=]", None, [
                rf"(?<=[{a}0-9])[<>=/](?=[{a}])", rf"(?<=[{upper}0-9]):(?=[{upper}])"])
            infixes.insert(6, rf"(?<=[{upper}]):(?=[{upper}])")
        return _base_prefixes(c), suffixes, infixes, None
    if language == "nb":
        suffixes = _base_suffixes(
            c, apostrophe_s=False, quotes=no_apostrophe, symbols=c.symbols_no_degree,
            period_after=_period_after(c, digits=False, quotes=no_apostrophe),
        ) + apostrophe_after
        infixes = _germanic_infixes(c, "[:<>=/]", None)
        infixes[2] = c.symbols_no_degree
        return _base_prefixes(c, punct=_PUNCT.replace("#", "")), suffixes, infixes, None
    if language == "fr":
        elision = "'’"
        hyphen_words = "ce clés elle en il ils je là moi nous on t vous".split()
        hyphen_words += [w.upper() for w in hyphen_words]
        suffixes = [
            _one_of(_PUNCT), "……", *_ELLIPSES, _one_of(_QUOTES), r"(?<=[0-9])\+", r"(?<=°[FfCcKk])\.",
            r"(?<=[0-9])%", rf"(?<=[0-9])(?:{_alternation(_CURRENCY)})", rf"(?<=[0-9])(?:{_units()})",
            _period_after(c, punct=False), rf"(?<=[{upper}][{upper}])\.",
            rf"(?<=[{a}])[-–—‐‑]({_alternation(hyphen_words)})",
        ]
        prefixes = _base_prefixes(c) + [rf"(?:(d|l|n|D|L|N)[{elision}])(?=[{a}])"]
        infixes = _base_infixes(c) + [rf"(?<=[{a}][{elision}])(?=[{a}])"]
        return prefixes, suffixes, infixes, None
    if language == "it":
        quotes = _char_class(_QUOTES)
        infixes = [
            *_ELLIPSES, c.symbols,
            r"(?<=[0-9])[+\-\*^](?=[0-9-])",
            rf"(?<=[{lower}{quotes}])\.(?=[{upper}{quotes}])",
            rf"(?<=[{a}]),(?=[{a}])",
            rf"(?<=[{a}])(?:{_alternation(_HYPHENS)})(?=[{lower}])",
            rf"(?<=[{a}0-9])[:<>=\/](?=[{a}])",
            rf"(?<=[{a}]['’])(?=[{a}0-9\"])",
        ]
        return [r"'[0-9][0-9]", r"[0-9]+°"] + _base_prefixes(c), _base_suffixes(c), infixes, None
    if language == "es":
        dash_quotes = _QUOTES + "—–"
        suffixes = ["—", "–"] + _base_suffixes(
            c, apostrophe_s=False, dashes=False, units=_units("%"),
            period_after=_period_after(c, quotes=dash_quotes))
        quotes = _char_class(dash_quotes)
        infixes = [
            *_ELLIPSES, c.symbols,
            r"(?<=[0-9])[+\*^](?=[0-9-])",
            rf"(?<=[{lower}{quotes}])\.(?=[{upper}{quotes}])",
            rf"(?<=[{a}]),(?=[{a}])",
            rf"(?<=[{a}0-9])[:<>=/](?=[{a}])",
        ]
        return _base_prefixes(c), suffixes, infixes, None
    if language == "pt":
        return ([r"\w{1,3}\$"] + _base_prefixes(c), _base_suffixes(c),
                [r"(\w+-\w+(-\w+)*)"] + _base_infixes(c), None)
    if language == "ca":
        prefixes = ["§", "%", "=", "—", "–", "-"] + _base_prefixes(c)[5:]
        suffixes = _base_suffixes(c, apostrophe_s=False, dashes=False, units=_units("%"))
        suffixes[4:4] = ["-", "—", "–"]
        quotes = _char_class(_QUOTES)
        infixes = [
            *_ELLIPSES, c.symbols,
            r"(?<=[0-9])[+\-\*^](?=[0-9-])",
            rf"(?<=[{lower}{quotes}])\.(?=[{upper}{quotes}])",
            rf"(?<=[{a}]),(?=[{a}])",
            rf"(?<=[{a}0-9])[:<>=/](?=[{a}])",
            rf"(?<=[{a}]['’])(?=[{a}0-9])",
            r"('ls|'l|'ns|'t|'m|'n|-les|-la|-lo|-li|-los|-me|-nos|-te|-vos|-se|-hi|-ne|-ho)"
            r"(?![A-Za-z])|(-l'|-m'|-t'|-n')",
        ]
        return prefixes, suffixes, infixes, None
    if language == "fa":
        suffixes = [
            _one_of(_PUNCT), "……", *_ELLIPSES, _one_of(_QUOTES), r"(?<=[0-9])\+", r"(?<=[0-9])%",
            rf"(?<=[0-9])(?:{_alternation(_CURRENCY)})", rf"(?<=[0-9])(?:{_units()})",
            rf"(?<=[{upper}][{upper}])\.",
        ]
        return _base_prefixes(c), suffixes, _base_infixes(c), None
    if language == "pl":
        no_apostrophe_class = _char_class(no_apostrophe)
        infixes = [
            *_ELLIPSES, c.symbols, *[re.escape(h) for h in _HYPHENS],
            rf"(?<=[0-9{a}])\.(?=[0-9{upper}])",
            rf"(?<=[{a}])[,!?](?=[{a}])",
            rf"(?<=[{a}])[:<>=\/](?=[{a}])",
            rf"(?<=[{a}]),(?=[{a}])",
            rf"(?<=[{a}])([{no_apostrophe_class}\)\]\(\[])(?=[\-{a}])",
        ]
        suffixes = ["''", "’’", r"\.", "…"] + [
            s for s in _base_suffixes(c, apostrophe_s=False, dashes=False) if s not in _ELLIPSES]
        suffixes[-1] = rf"(?<=[{upper}])\."
        prefixes = [r"(długo|krótko|jedno|dwu|trzy|cztero)-"] + _base_prefixes(c)
        return prefixes, suffixes, infixes, None
    if language == "ro":
        quotes = _char_class(_QUOTES)
        prefixes = _base_prefixes(c)
        prefixes[6:6] = _romanian_variants(_RO_CLITIC_PREFIXES)
        suffixes = _romanian_variants(_RO_CLITIC_SUFFIXES) + [
            s for s in _base_suffixes(c, apostrophe_s=False, symbols=c.symbols_no_degree)
            if "(?:" + _units() + ")" not in s
        ]
        infixes = [
            *_ELLIPSES, c.symbols_no_degree,
            r"(?<=[0-9])[+\*^](?=[0-9-])",
            rf"(?<=[{lower}{quotes}])\.(?=[{upper}{quotes}])",
            rf"(?<=[{a}]),(?=[{a}])",
            rf"(?<=[{a}0-9])[:<>=](?=[{a}])",
        ]
        return prefixes, suffixes, infixes, None
    if language == "el":
        return _greek_profile(c)
    return _base_prefixes(c), _base_suffixes(c), _base_infixes(c), None


_GREEK = "Α-Ωα-ωίϊΐόάέύϋΰήώ"


def _greek_profile(c: _Classes) -> tuple[list[str], list[str], list[str], None]:
    """spaCy's Greek rules: many patterns of their own for numbers, dates and hyphenation."""
    a, lower, upper = c.letters, c.lower, c.upper
    g = _GREEK
    greek_units = _alternation([re.escape(u) for u in _UNITS[: _UNITS.index("тбكم")]
                                if u != "%"] + ["тб"])
    prefixes = [
        "''", "§", "%", "=", r"\+[0-9]+%", r"\'([0-9]){2}([\-]\'([0-9]){2})*",
        r"\-([0-9]){1,9}\.([0-9]){1,9}", rf"\'([{g}]+)\'", rf"([{g}]){{1,3}}\'",
        r"http://www.[A-Za-z]+\-[A-Za-z]+(\.[A-Za-z]+)+(\/[A-Za-z]+)*(\.[A-Za-z]+)*",
        rf"[ΈΆΊ{g}]+\*", r"\$([0-9])+([\,\.]([0-9])+){0,1}",
        _one_of(_PUNCT), *_ELLIPSES, _one_of(_QUOTES), *_CURRENCY, c.symbols,
    ]
    suffixes = [
        _one_of(_PUNCT), "……", *_ELLIPSES, _one_of(_QUOTES), c.symbols,
        r"(?<=[0-9])\+", r"([0-9])+\'", r"([A-Za-z])?\'", r"^([0-9]){1,2}\.", r" ([0-9]){1,2}\.",
        r"([0-9]){1}\) ", r"^([0-9]){1}\)$", r"(?<=°[FfCcKk])\.", r"([0-9])+\&",
        rf"(?<=[0-9])(?:{_alternation(_CURRENCY)})", rf"(?<=[0-9])(?:{greek_units})",
        _period_after(c, punct=False, extra="²\\-\\+"), rf"(?<=[{upper}][{upper}])\.",
        rf"(?<=[{g}])\-", rf"(?<=[{g}])\.", r"^[Α-Ω]{1}\.", r"\ [Α-Ω]{1}\.",
        r"[ΈΆΊΑΌ-Ωα-ωίϊΐόάέύϋΰήώ]+([\-]([ΈΆΊΑΌ-Ωα-ωίϊΐόάέύϋΰήώ]+))+",
        r"([0-9]+)mg", r"([0-9]+)\.([0-9]+)m",
    ]
    infixes = [
        *_ELLIPSES, c.symbols,
        r"(?<=[0-9])[+\/\-\*^](?=[0-9])",
        r"([a-zA-Z]+)\/([a-zA-Z]+)\/([a-zA-Z]+)",
        r"([0-9])+(\.([0-9]+))*([\-]([0-9])+)+",
        r"([0-9])+[,]([0-9])+[\-]([0-9])+[,]([0-9])+",
        r"([0-9])+[ης]+([\-]([0-9])+)+",
        r"([0-9]){1,4}[\/]([0-9]){1,2}([\/]([0-9]){0,4}){0,1}",
        r"[A-Za-z]+\@[A-Za-z]+(\-[A-Za-z]+)*\.[A-Za-z]+",
        r"([a-zA-Z]+)(\-([a-zA-Z]+))+",
        rf"(?<=[{lower}])\.(?=[{upper}])",
        rf"(?<=[{a}]),(?=[{a}])",
        rf"(?<=[{a}])(?:{_alternation(_HYPHENS)})(?=[{a}])",
        rf"(?<=[{a}])[:<>=/](?=[{a}])",
    ]
    return prefixes, suffixes, infixes, None


# Romanian clitics written with a hyphen, split off as their own tokens.
_RO_CLITIC_PREFIXES = (
    "a- c- ce- cu- d- de- dintr- e- făr- i- l- le- m- mi- n- ne- p- pe- prim- printr- s- se- te- "
    "v- într- ș- și- ți-"
).split()
_RO_CLITIC_SUFFIXES = (
    "-a -aceasta -ai -al -ale -alta -am -ar -astea -atâta -au -aș -ați -i -ilor -l -le -lea -mea "
    "-meu -mi -mă -n -ndărătul -ne -o -oi -or -s -se -si -te -ul -ului -un -uri -urile -urilor "
    "-veți -vă -ăștia -și -ți"
).split()
_RO_LETTER_VARIANTS = {"Ă": "ĂA", "Â": "ÂA", "Î": "ÎI", "Ș": "ȘŞS", "Ț": "ȚŢT"}


def _romanian_variants(words: Sequence[str]) -> list[str]:
    """Each word in lower, upper and title case, with and without its diacritics (and with the
    old cedilla forms of ș and ț), sorted."""
    import itertools

    variants: set[str] = set()
    for word in words:
        choices = [_RO_LETTER_VARIANTS.get(ch, ch) for ch in word.upper()]
        for letters in itertools.product(*choices):
            variant = "".join(letters)
            variants.update((variant, variant.lower(), variant.title()))
    return [re.escape(v) for v in sorted(variants)]


def _url_pattern(lower: str) -> str:
    """A web address, e-mail or host name as one token (spaCy's ``url_match``)."""
    host_char = "A-Za-z0-9\u00a1-\uffff"
    return (
        r"^(?:(?:[\w\+\-\.]{2,})://)?"  # scheme
        r"(?:\S+(?::\S*)?@)?"  # user:password@
        r"(?:"
        r"(?!(?:10|127)(?:\.\d{1,3}){3})"  # no private or loopback addresses
        r"(?!(?:169\.254|192\.168)(?:\.\d{1,3}){2})"
        r"(?!172\.(?:1[6-9]|2\d|3[0-1])(?:\.\d{1,3}){2})"
        r"(?:[1-9]\d?|1\d\d|2[01]\d|22[0-3])"  # an IPv4 address
        r"(?:\.(?:1?\d{1,2}|2[0-4]\d|25[0-5])){2}"
        r"(?:\.(?:[1-9]\d?|1\d\d|2[0-4]\d|25[0-4]))"
        r"|"
        rf"(?:(?:[{host_char}][{host_char}_-]{{0,62}})?[{host_char}]\.)+"  # host labels
        rf"(?:[{lower}]{{2,63}})"  # a lower-case top-level domain
        r")"
        r"(?::\d{2,5})?"  # port
        r"(?:[/?#]\S*)?$"  # path
    )


# ----------------------------------------------------------------------------------------------
# Special cases
# ----------------------------------------------------------------------------------------------

_EMOTICONS = r"""
:) :-) :)) :-)) :))) :-))) (: (-: =) (= :] :-] [: [-: [= =] :o) (o: :} :-} 8) 8-) (-8 ;) ;-) (; (-;
:( :-( :(( :-(( :((( :-((( ): )-: =( >:( :') :'-) :'( :'-( :/ :-/ =/ =| :| :-| ]= =[ :1 :P :-P
:p :-p :O :-O :o :-o :0 :-0 :() >:o :* :-* :3 :-3 =3 :> :-> :X :-X :x :-x :D :-D ;D ;-D =D xD
XD xDD XDD 8D 8-D ^_^ ^__^ ^___^ >.< >.> <.< ._. ;_; -_- -__- v.v V.V v_v V_V o_o o_O O_o O_O
0_o o_0 0_0 o.O O.o O.O o.o 0.0 o.0 0.o @_@ <3 <33 <333 </3 (^_^) (-_-) (._.) (>_<) (*_*) (¬_¬)
ಠ_ಠ ಠ︵ಠ (ಠ_ಠ) ¯\(ツ)/¯ (╯°□°）╯︵┻━┻ ><(((*>
""".split()


def _base_specials() -> dict[str, tuple[str, ...]]:
    """Special cases of every language: emoticons, single letters with a period, a few more."""
    specials: dict[str, tuple[str, ...]] = {}
    for orth in ["'", '\\")', "<space>", "''", "C++", "\\t", "\\n", "\u2014"]:
        specials[orth] = (orth,)
    for letter in "abcdefghijklmnopqrstuvwxyzäöü":
        specials[letter + "."] = (letter + ".",)
    for emoticon in _EMOTICONS:
        specials[emoticon] = (emoticon,)
    for unit in "cfkCFK":
        specials[f"°{unit}."] = ("°", unit, ".")
    return specials


def _with_typographic_apostrophes(specials: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Every special case with ' also with ’ (as spaCy adds them)."""
    out = dict(specials)
    for orth, pieces in specials.items():
        if "'" in orth:
            out[orth.replace("'", "’")] = tuple(p.replace("'", "’") for p in pieces)
    return out


def _english_specials() -> dict[str, tuple[str, ...]]:
    """English contractions ("don't" -> do n't, "cannot" -> can not), times and abbreviations."""
    exc: dict[str, tuple[str, ...]] = {}

    def both_cases(word: str) -> list[str]:
        return [word, word.title()]

    def add(word: str, *endings: str) -> None:
        for w in both_cases(word):
            exc[w + "".join(endings)] = (w, *endings)

    for w in both_cases("i"):
        exc[w + "'m"], exc[w + "m"] = (w, "'m"), (w, "m")
        exc[w + "'ma"], exc[w + "ma"] = (w, "'m", "a"), (w, "m", "a")
    for pron in ["i", "you", "he", "she", "it", "we", "they"]:
        for endings in [("'ll",), ("ll",), ("'ll", "'ve"), ("ll", "ve"), ("'d",), ("d",),
                        ("'d", "'ve"), ("d", "ve")]:
            add(pron, *endings)
    for pron in ["i", "you", "we", "they"]:
        add(pron, "'ve"), add(pron, "ve")
    for pron in ["you", "we", "they"]:
        add(pron, "'re"), add(pron, "re")
    for pron in ["he", "she", "it"]:
        add(pron, "'s"), add(pron, "s")
    for word, number in [("who", ""), ("what", ""), ("when", ""), ("where", ""), ("why", ""),
                         ("how", ""), ("there", ""), ("that", "sing"), ("this", "sing"),
                         ("these", "plur"), ("those", "plur")]:
        if number != "plur":
            add(word, "'s"), add(word, "s")
        for endings in [("'ll",), ("ll",), ("'ll", "'ve"), ("ll", "ve")]:
            add(word, *endings)
        if number != "sing":
            for endings in [("'re",), ("re",), ("'ve",), ("ve",)]:
                add(word, *endings)
        for endings in [("'d",), ("d",), ("'d", "'ve"), ("d", "ve")]:
            add(word, *endings)
    for verb in ["ca", "could", "do", "does", "did", "had", "may", "might", "must", "need",
                 "ought", "sha", "should", "wo", "would"]:
        for endings in [("n't",), ("nt",), ("n't", "'ve"), ("nt", "ve")]:
            add(verb, *endings)
    for verb in ["could", "might", "must", "should", "would"]:
        add(verb, "'ve"), add(verb, "ve")
    for verb in ["ai", "are", "is", "was", "were", "have", "has", "dare"]:
        add(verb, "n't"), add(verb, "nt")
    for word in ["doin", "goin", "nothin", "nuthin", "ol", "somethin"]:
        for w in both_cases(word):
            exc[w], exc[w + "'"] = (w,), (w + "'",)
    for word in ["em", "ll", "nuff"]:
        exc[word], exc["'" + word] = (word,), ("'" + word,)
    for hour in range(1, 13):
        for period in ["a.m.", "am", "p.m.", "pm"]:
            exc[f"{hour}{period}"] = (str(hour), period)
    exc.update({
        "y'all": ("y'", "all"), "yall": ("y", "all"),
        "how'd'y": ("how", "'d", "'y"), "How'd'y": ("How", "'d", "'y"),
        "not've": ("not", "'ve"), "notve": ("not", "ve"),
        "Not've": ("Not", "'ve"), "Notve": ("Not", "ve"),
        "cannot": ("can", "not"), "Cannot": ("Can", "not"),
        "gonna": ("gon", "na"), "Gonna": ("Gon", "na"),
        "gotta": ("got", "ta"), "Gotta": ("Got", "ta"),
        "let's": ("let", "'s"), "Let's": ("Let", "'s"),
        "c'mon": ("c'm", "on"), "C'mon": ("C'm", "on"),
    })
    whole = (
        "'S 's \u2018S \u2018s and/or w/o 're 'Cause 'cause 'cos 'Cos 'coz 'Coz 'cuz 'Cuz 'bout "
        "ma'am Ma'am o'clock O'clock lovin' Lovin' lovin Lovin havin' Havin' havin Havin doin' "
        "Doin' doin Doin goin' Goin' goin Goin Mt. Ak. Ala. Apr. Ariz. Ark. Aug. Calif. Colo. "
        "Conn. Dec. Del. Feb. Fla. Ga. Ia. Id. Ill. Ind. Jan. Jul. Jun. Kan. Kans. Ky. La. Mar. "
        "Mass. Mich. Minn. Miss. N.C. N.D. N.H. N.J. N.M. N.Y. Neb. Nebr. Nev. Nov. Oct. Okla. "
        "Ore. Pa. S.C. Sep. Sept. Tenn. Va. Wash. Wis. 'd a.m. Adm. Bros. co. Co. Corp. D.C. Dr. "
        "e.g. E.g. E.G. Gen. Gov. i.e. I.e. I.E. Inc. Jr. Ltd. Md. Messrs. Mo. Mont. Mr. Mrs. "
        "Ms. p.m. Ph.D. Prof. Rep. Rev. Sen. St. vs. v.s."
    )
    for orth in whole.split():
        exc[orth] = (orth,)
    # Words that look like contractions but are ordinary words.
    for word in ["Ill", "ill", "Its", "its", "Hell", "hell", "Shell", "shell", "Shed", "shed",
                 "were", "Were", "Well", "well", "Whore", "whore"]:
        exc.pop(word, None)
    return exc


# ----------------------------------------------------------------------------------------------
# The splitter
# ----------------------------------------------------------------------------------------------

_MAX_CACHE = 500_000  # chunks remembered per splitter before the cache is cleared
_RECENT_TEXTS = 4096  # whole texts whose words are remembered (about one batch)


class WordSplitter:
    """Splits text into words like spaCy's tokenizer with one language's rules."""

    def __init__(self, rules: TokenizerRules,
                 refine: Callable[[str], list[str]] | None = None):
        self.rules = rules
        self.refine = refine  # cuts tokens further (Japanese script runs)
        self._cache = _ChunkCache(self.tokenize_chunk)
        self._classes = _ChunkCache(self._sentence_classes)
        self._recent: dict[str, list[str]] = {}

    def split(self, text: str) -> list[str]:
        """The words of ``text``, in order (no whitespace, no empty strings). The list is
        shared with later callers asking for the same text: do not change it."""
        # Filters that follow one another split the same texts: remember the last ones.
        words = self._recent.get(text)
        if words is None:
            # One cached look-up per chunk, looped over in C; misses tokenize the chunk.
            words = list(chain.from_iterable(map(self._cache.__getitem__, text.split())))
            if len(self._recent) >= _RECENT_TEXTS:
                self._recent.clear()
            self._recent[text] = words
        return words

    def chunk_tokens(self, chunk: str) -> list[str]:
        """Tokens of one whitespace-free chunk, cached."""
        return self._cache[chunk]

    def count_sentences(self, text: str) -> int:
        """Number of sentences in ``text`` (spaCy's sentencizer on these tokens)."""
        if not text or text.isspace():
            return 0
        _, terminal_re = _sentence_terminals()
        if terminal_re.search(text) is None:  # no sentence end anywhere: one sentence
            return 1
        if _ODD_WHITESPACE.search(text.strip()) is None:
            # Chunks separated by single spaces: no whitespace tokens between them.
            classes = "".join(map(self._classes.__getitem__, text.split()))
        else:
            classes = "".join(_token_class(t) for t, _, _ in _tokens_with_whitespace(self, text))
        # A sentence starts at the first token and at each word that follows terminal marks
        # (with only punctuation between).
        return 1 + len(_NEW_SENTENCE.findall(classes))

    def _sentence_classes(self, chunk: str) -> str:
        return "".join(map(_token_class, self._cache[chunk]))

    def split_sentences(self, text: str) -> list[str]:
        """``text`` cut into consecutive pieces, one per sentence, covering all of it (what
        DataTrove's ``split_into_sentences`` returns)."""
        located = _tokens_with_whitespace(self, text)
        starts = sentence_starts([t for t, _, _ in located])
        if not starts:
            return [text] if text else []
        ends = [located[j - 1][2] for j in starts[1:]]
        ends.append(len(text))
        bounds = [0] + ends[:-1]
        return [text[a:b] for a, b in zip(bounds, ends)]

    def tokenize_chunk(self, chunk: str) -> list[str]:
        """Tokens of one whitespace-free chunk."""
        specials = self.rules.specials
        special = specials.get(chunk)
        if special is not None:
            return list(special)
        if self.refine is not None and self.refine(chunk) == [chunk] and chunk.isalnum():
            return [chunk]
        prefixes, middle, suffixes = self._split_affixes(chunk)
        tokens = prefixes + self._split_middle(middle) + suffixes[::-1]
        if self.rules.rejoin and len(tokens) > 1:
            tokens = self._rejoin_specials(tokens)
        if self.refine is not None:
            tokens = [piece for token in tokens for piece in self.refine(token)]
        return tokens

    def _split_affixes(self, string: str) -> tuple[list[str], str, list[str]]:
        """Peel prefixes and suffixes off, one at a time, until none is left or what remains
        (or what would remain) is a special case."""
        rules = self.rules
        specials = rules.specials
        prefixes: list[str] = []
        suffixes: list[str] = []
        last_size = -1
        while string and len(string) != last_size:
            if rules.token_match is not None and rules.token_match(string):
                break
            if string in specials:
                break
            last_size = len(string)
            match = rules.prefix_search(string)
            pre_len = match.end() if match else 0
            if pre_len:
                minus_pre = string[pre_len:]
                if minus_pre and minus_pre in specials:
                    prefixes.append(string[:pre_len])
                    string = minus_pre
                    break
            match = rules.suffix_search(string[pre_len:])
            suf_len = (match.end() - match.start()) if match else 0
            if suf_len:
                minus_suf = string[:-suf_len]
                if minus_suf and minus_suf in specials:
                    suffixes.append(string[-suf_len:])
                    string = minus_suf
                    break
            if pre_len and suf_len and pre_len + suf_len <= len(string):
                prefixes.append(string[:pre_len])
                suffixes.append(string[-suf_len:])
                string = string[pre_len:-suf_len]
            elif pre_len:
                prefixes.append(string[:pre_len])
                string = string[pre_len:]
            elif suf_len:
                suffixes.append(string[-suf_len:])
                string = string[:-suf_len]
        return prefixes, string, suffixes

    def _split_middle(self, string: str) -> list[str]:
        """What is left after the affixes: a special case, a URL, or pieces cut at infixes."""
        if not string:
            return []
        rules = self.rules
        special = rules.specials.get(string)
        if special is not None:
            return list(special)
        if (rules.token_match is not None and rules.token_match(string)) or (
            rules.url_match is not None and rules.url_match(string)
        ):
            return [string]
        pieces: list[str] = []
        start = 0
        for match in rules.infix_finditer(string):
            infix_start, infix_end = match.start(), match.end()
            if infix_start == 0:  # an infix never starts a chunk
                continue
            if infix_start != start:
                pieces.append(string[start:infix_start])
            if infix_start != infix_end:
                pieces.append(string[infix_start:infix_end])
            start = infix_end
        if start < len(string):
            pieces.append(string[start:])
        return pieces

    def _rejoin_specials(self, tokens: list[str]) -> list[str]:
        """Special cases that the affix rules cut (emoticons, abbreviations ending in a
        period...) put back together: longest match first, then leftmost, no overlaps."""
        rejoin = self.rules.rejoin
        n = len(tokens)
        found: list[tuple[int, int]] = []
        for i in range(n):
            for j in range(min(n, i + _MAX_REJOIN), i + 1, -1):
                if tuple(tokens[i:j]) in rejoin:
                    found.append((i, j))
        if not found:
            return tokens
        found.sort(key=lambda span: (span[1] - span[0], -span[0]), reverse=True)
        taken: set[int] = set()
        chosen = []
        for i, j in found:
            if i not in taken and (j - 1) not in taken:
                chosen.append((i, j))
            taken.update(range(i, j))
        out: list[str] = []
        pos = 0
        for i, j in sorted(chosen):
            out += tokens[pos:i]
            out += rejoin[tuple(tokens[i:j])]
            pos = j
        return out + tokens[pos:]


_MAX_REJOIN = 8


# ----------------------------------------------------------------------------------------------
# Sentences (spaCy's sentencizer, which DataTrove's split_into_sentences uses)
# ----------------------------------------------------------------------------------------------

_WHITESPACE_OR_CHUNK = re.compile(r"\s+|\S+")


@functools.lru_cache(maxsize=1)
def _sentence_terminals() -> tuple[frozenset[str], re.Pattern]:
    from recipeflow.operators.text.text_stats import SENTENCIZER_TERMINALS

    return frozenset(SENTENCIZER_TERMINALS), re.compile(
        "[" + "".join(re.escape(c) for c in SENTENCIZER_TERMINALS) + "]"
    )


def _is_punct(token: str) -> bool:
    """spaCy's ``is_punct``: every character is Unicode punctuation (category P*)."""
    return all(unicodedata.category(c).startswith("P") for c in token)


class _ChunkCache(dict):
    """A per-process cache that computes a missing entry with ``compute`` (bounded size)."""

    def __init__(self, compute: Callable[[str], Any]):
        super().__init__()
        self._compute = compute

    def __missing__(self, key: str) -> Any:
        if len(self) >= _MAX_CACHE:
            self.clear()
        value = self[key] = self._compute(key)
        return value


_IS_PUNCT = _ChunkCache(_is_punct)
# Whitespace other than single spaces between chunks makes whitespace tokens.
_ODD_WHITESPACE = re.compile(r"\s\s|[^\S ]")
# Token classes for sentence splitting: T a terminal mark, P other punctuation, W anything else.
_NEW_SENTENCE = re.compile("T[TP]*W")


def _token_class(token: str) -> str:
    terminals, _ = _sentence_terminals()
    if token in terminals:
        return "T"
    return "P" if _IS_PUNCT[token] else "W"


def _tokens_with_whitespace(splitter: "WordSplitter", text: str) -> list[tuple[str, int, int]]:
    """(token, start, end) for every token spaCy makes of ``text``, whitespace tokens included:
    a run of whitespace is a token unless it is exactly one space."""
    out: list[tuple[str, int, int]] = []
    for match in _WHITESPACE_OR_CHUNK.finditer(text):
        piece, start = match.group(), match.start()
        if piece[0].isspace():
            if piece != " " or start == 0:
                skip = 1 if (piece[0] == " " and start > 0) else 0
                out.append((piece[skip:], start + skip, match.end()))
            continue
        for token in splitter.chunk_tokens(piece):
            at = text.index(token, start)
            out.append((token, at, at + len(token)))
            start = at + len(token)
    return out


def sentence_starts(tokens: Sequence[str]) -> list[int]:
    """Indices of the tokens that start a sentence, as spaCy's sentencizer decides: a sentence
    ends after a terminal mark (. ! ? 。...) once a token that is not punctuation follows."""
    if not tokens:
        return []
    terminals, _ = _sentence_terminals()
    starts = [0]
    seen_terminal = False
    for i, token in enumerate(tokens):
        is_terminal = token in terminals
        if seen_terminal and not is_terminal and not _IS_PUNCT[token]:
            starts.append(i)
            seen_terminal = False
        elif is_terminal:
            seen_terminal = True
    return starts


# ----------------------------------------------------------------------------------------------
# Languages
# ----------------------------------------------------------------------------------------------


def _compile_rules(language: str, specials: dict[str, tuple[str, ...]]) -> TokenizerRules:
    prefixes, suffixes, infixes, token_match = _profile(language)
    rules = TokenizerRules(
        prefix_search=re.compile("(?:" + "|".join(prefixes) + ")").match,
        suffix_search=re.compile("|".join(p + "$" for p in suffixes)).search,
        infix_finditer=re.compile("|".join(infixes)).finditer,
        specials=specials,
        token_match=re.compile(token_match).match if token_match else None,
        url_match=re.compile(_url_pattern(_classes().lower)).match,
    )
    rules.rejoin = _rejoin_table(rules)
    return rules


def _rejoin_table(rules: TokenizerRules) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Special cases that the affix rules would cut, keyed by the pieces they are cut into."""
    plain = WordSplitter(TokenizerRules(
        rules.prefix_search, rules.suffix_search, rules.infix_finditer, {},
        rules.token_match, rules.url_match,
    ))
    table: dict[tuple[str, ...], tuple[str, ...]] = {}
    for orth, pieces in rules.specials.items():
        has_affix = (
            rules.prefix_search(orth) or rules.suffix_search(orth)
            or next(rules.infix_finditer(orth), None) is not None
        )
        if not has_affix:
            continue
        cut = tuple(plain.tokenize_chunk(orth))
        if len(cut) > 1 and len(cut) <= _MAX_REJOIN:
            table[cut] = pieces
    return table


@functools.lru_cache(maxsize=None)
def _rules_for(language: str) -> TokenizerRules:
    """The rules of a language: its punctuation profile (or the neutral one) and its special
    cases (English's are generated here, the others come from spaCy's exception data)."""
    specials = _base_specials()
    specials.update(_english_specials() if language == "en" else special_cases(language))
    profile = language if language in _PROFILES else "xx"
    return _compile_rules(profile, _with_typographic_apostrophes(specials))


# Languages with their own punctuation rules; every other language uses the neutral ones.
_PROFILES = frozenset({
    "en", "de", "nl", "da", "sv", "nb", "fr", "it", "es", "pt", "ca", "fa", "pl", "ro", "el",
})
# Languages whose DataTrove tokenizer is spaCy's under another code.
_SAME_RULES_AS = {"no": "nb"}


@functools.lru_cache(maxsize=None)
def splitter(language: str) -> WordSplitter:
    """The word splitter for an ISO 639-1 code (``en``, ``de``...), built once per process."""
    code = normalize_language(language)
    refine = japanese_script_runs if code == "ja" else None
    return WordSplitter(_rules_for(_SAME_RULES_AS.get(code, code)), refine)


_KANJI = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆ヵヶ"
_JAPANESE_RUN = re.compile(
    f"[{_KANJI}]+|[\u3040-\u309f]+|[\u30a0-\u30ff\uff66-\uff9f]+|[\u3000-\u303f]+"
    f"|[^{_KANJI}\u3000-\u30ff\uff66-\uff9f]+"
)


def japanese_script_runs(token: str) -> list[str]:
    """A token cut where the script changes (kanji, hiragana, katakana, CJK punctuation, other): a cheap stand-in
    for SudachiPy's morphemes, which DataTrove uses for Japanese (kanji stems, kana endings and
    particles, katakana loan words mostly fall on these boundaries)."""
    return _JAPANESE_RUN.findall(token)


def normalize_language(language: str) -> str:
    """``en``, ``eng``, ``en_Latn`` and ``EN`` all name English; the bare code is used."""
    code = (language or "en").strip().lower().replace("-", "_").split("_")[0]
    return _ISO3_TO_1.get(code, code)


_ISO3_TO_1 = {
    "eng": "en", "deu": "de", "fra": "fr", "spa": "es", "ita": "it", "por": "pt", "nld": "nl",
    "cmn": "zh", "zho": "zh", "jpn": "ja", "kor": "ko", "rus": "ru", "ara": "ar", "arb": "ar",
}


def split_words(text: str, language: str = "en") -> list[str]:
    """The words DataTrove's ``split_into_words(text, language)`` gives, with our rules."""
    return splitter(language).split(text)


if __name__ == "__main__":  # tokenize stdin, one word a line
    for word in split_words(sys.stdin.read(), sys.argv[1] if len(sys.argv) > 1 else "en"):
        print(word)
