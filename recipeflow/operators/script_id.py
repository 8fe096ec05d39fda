"""``script_id``: the dominant writing system (Unicode script) of each document's letters.

Scripts are named with ISO 15924 codes: ``Latn``, ``Cyrl``, ``Grek``, ``Arab``, ``Hebr``,
``Deva``, ``Thai``, ``Hani``..., plus the two CJK writing systems that mix scripts: ``Jpan``
(Han with Hiragana/Katakana) and ``Kore`` (Hangul with Han). ``Zyyy`` (common) means the text
has no letters; ``Zzzz`` (unknown) that its letters belong to a script not in the table below.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from typing import Sequence

import pyarrow as pa
from pydantic import Field

from recipeflow.operators import document as doc
from recipeflow.operators.base import Mapper, OperatorParams
from recipeflow.operators.registry import register

NO_LETTERS = "Zyyy"
UNKNOWN_SCRIPT = "Zzzz"
JAPANESE = "Jpan"
KOREAN = "Kore"
# Kana (or Hangul) must be at least this share of a text's CJK letters for the Han letters
# to count as Japanese (Korean): Chinese text quoting a Japanese name stays Chinese.
CJK_MERGE_SHARE = 0.1

# First word of a letter's Unicode name -> ISO 15924 code. Python's unicodedata has no
# script property; a letter's name starts with its script for every script listed here.
_SCRIPT_OF_NAME_WORD = {
    "LATIN": "Latn", "CYRILLIC": "Cyrl", "GREEK": "Grek", "COPTIC": "Copt", "ARMENIAN": "Armn",
    "GEORGIAN": "Geor", "GLAGOLITIC": "Glag", "HEBREW": "Hebr", "ARABIC": "Arab",
    "SYRIAC": "Syrc", "THAANA": "Thaa", "NKO": "Nkoo", "SAMARITAN": "Samr", "MANDAIC": "Mand",
    "DEVANAGARI": "Deva", "BENGALI": "Beng", "GURMUKHI": "Guru", "GUJARATI": "Gujr",
    "ORIYA": "Orya", "TAMIL": "Taml", "TELUGU": "Telu", "KANNADA": "Knda",
    "MALAYALAM": "Mlym", "SINHALA": "Sinh", "THAI": "Thai", "LAO": "Laoo", "TIBETAN": "Tibt",
    "MYANMAR": "Mymr", "KHMER": "Khmr", "MONGOLIAN": "Mong", "ETHIOPIC": "Ethi",
    "CHEROKEE": "Cher", "CANADIAN": "Cans", "OGHAM": "Ogam", "RUNIC": "Runr",
    "TIFINAGH": "Tfng", "JAVANESE": "Java", "BALINESE": "Bali", "SUNDANESE": "Sund",
    "ADLAM": "Adlm", "VAI": "Vaii", "BAMUM": "Bamu", "YI": "Yiii", "GOTHIC": "Goth",
    "DESERET": "Dsrt", "OSAGE": "Osge", "LIMBU": "Limb", "LEPCHA": "Lepc",
    "HANGUL": "Hang", "HIRAGANA": "Hira", "HENTAIGANA": "Hira", "KATAKANA": "Kana",
    "BOPOMOFO": "Bopo", "CJK": "Hani", "IDEOGRAPHIC": "Hani",
}
# Letters of no particular script (ISO "Common"): letterlike symbols, mathematical
# alphanumerics, modifier letters. They say nothing about the writing system.
_COMMON_NAME_WORDS = {
    "MODIFIER", "MATHEMATICAL", "DOUBLE", "SCRIPT", "BLACK", "SUPERSCRIPT", "SUBSCRIPT",
    "PLANCK", "TURNED", "FEMININE", "MASCULINE", "MICRO", "CARON", "EULER", "OHM", "KELVIN",
    "ANGSTROM", "INFORMATION", "ROMAN", "ALEF", "BET", "GIMEL", "DALET", "VERTICAL",
}
# Wide and narrow forms name their script second: "FULLWIDTH LATIN CAPITAL LETTER A".
_WIDTH_WORDS = {"FULLWIDTH", "HALFWIDTH"}
# The table covers code points below this (through CJK Extension G); letters above it are
# rare enough to leave uncounted.
_TABLE_END = 0x32400


def _script_of_letter(char: str) -> str | None:
    """ISO 15924 code of a letter; None for letters of no particular script."""
    words = re.split(r"[ -]", unicodedata.name(char, ""))
    if words[0] in _WIDTH_WORDS and len(words) > 1:
        words = words[1:]
    if words[0] in _COMMON_NAME_WORDS:
        return None
    return _SCRIPT_OF_NAME_WORD.get(words[0], UNKNOWN_SCRIPT)


@functools.cache
def _tables() -> tuple[list[str | None], dict[str, str]]:
    """(translation table: code point -> one private-use character standing for its script,
    or None for non-letters; that character -> ISO code). Built once per process (~0.2 s), so
    counting scripts is one ``str.translate`` and one ``Counter`` in C per document."""
    marker_of: dict[str, str] = {}
    table: list[str | None] = [None] * _TABLE_END
    for code_point in range(_TABLE_END):
        char = chr(code_point)
        if not char.isalpha():
            continue
        script = _script_of_letter(char)
        if script is not None:
            table[code_point] = marker_of.setdefault(script, chr(0xE000 + len(marker_of)))
    return table, {marker: script for script, marker in marker_of.items()}


def script_counts(text: str, max_chars: int | None = None) -> Counter[str]:
    """Letters per ISO 15924 script in ``text`` (an evenly spaced sample of about
    ``max_chars`` characters when it is longer)."""
    if max_chars is not None and len(text) > max_chars:
        text = text[:: -(-len(text) // max_chars)]
    table, script_of_marker = _tables()
    counts = Counter(text.translate(table))
    return Counter({script_of_marker[m]: n for m, n in counts.items() if m in script_of_marker})


def writing_systems(counts: Counter[str]) -> Counter[str]:
    """Merge Han with kana into ``Jpan``, or with Hangul into ``Kore``, when the kana (Hangul)
    are a real part of the text's CJK letters."""
    merged = Counter(counts)
    han = merged.get("Hani", 0)
    kana = merged.get("Hira", 0) + merged.get("Kana", 0)
    hangul = merged.get("Hang", 0)
    if kana and kana >= hangul and kana >= CJK_MERGE_SHARE * (han + kana):
        merged[JAPANESE] = han + kana
        for code in ("Hani", "Hira", "Kana"):
            merged.pop(code, None)
    elif hangul and hangul >= CJK_MERGE_SHARE * (han + hangul):
        merged[KOREAN] = han + hangul
        for code in ("Hani", "Hang"):
            merged.pop(code, None)
    return merged


def dominant_script(text: str, max_chars: int | None = None) -> tuple[str, float]:
    """(the writing system with the most letters, its share of the letters); ``Zyyy`` and 0.0
    when there are no letters. Ties go to the code first in alphabetical order."""
    systems = writing_systems(script_counts(text, max_chars))
    letters = sum(systems.values())
    if not letters:
        return NO_LETTERS, 0.0
    script, count = min(systems.items(), key=lambda item: (-item[1], item[0]))
    return script, count / letters


class ScriptIdParams(OperatorParams):
    field: str = Field("script", description="Field for the ISO 15924 code of the dominant script.")
    ratio_field: str | None = Field(
        "script_ratio",
        description="Field for the dominant script's share of the letters (null: not written).",
    )
    max_chars: int | None = Field(
        10_000,
        ge=1,
        description="Look at an evenly spaced sample of about this many characters of longer "
        "documents (null: every character).",
    )


@register
class ScriptId(Mapper):
    """Write the dominant Unicode script of each document's letters (ISO 15924: Latn, Cyrl, Jpan...).

    Counts the letters (``str.isalpha``) of each script in the text — an evenly spaced sample
    of ``max_chars`` characters for long documents — with a per-process table built from
    Unicode character names. Han merges with Hiragana/Katakana into ``Jpan`` and with Hangul
    into ``Kore`` when those make at least 10% of the CJK letters. ``Zyyy``: no letters;
    ``Zzzz``: letters of a script not in the table. Digits, punctuation and marks don't count.
    """

    name = "script_id"
    version = "1"
    Params = ScriptIdParams

    def scripts(self, texts: Sequence[str]) -> tuple[list[str], list[float]]:
        found = [dominant_script(text, self.params.max_chars) for text in texts]
        return [script for script, _ in found], [ratio for _, ratio in found]

    def map_batch(self, batch: pa.Table) -> pa.Table:
        scripts, ratios = self.scripts(batch.column(doc.TEXT).to_pylist())
        batch = doc.set_column(batch, self.params.field, pa.array(scripts, pa.string()))
        if self.params.ratio_field is not None:
            batch = doc.set_column(batch, self.params.ratio_field, pa.array(ratios, pa.float64()))
        return batch
