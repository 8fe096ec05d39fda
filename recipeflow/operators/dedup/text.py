"""Text normalisation and shingling shared by the deduplicators.

Near-duplicate detection compares *simplified* text, as DataTrove's MinHash does
(``datatrove.utils.text.simplify_text``): lower case, numbers made ``0``, punctuation, symbols
and control characters made spaces, diacritics removed, whitespace collapsed. The character
classes are Unicode categories rather than a hand-written list: punctuation (P*), symbols (S*),
controls (Cc) and separators (Z*) become spaces, format characters (Cf: soft hyphens,
zero-width joiners) are deleted, and letters lose their combining marks (Mn) after NFD
decomposition. That covers every character DataTrove's list covers, and a few more.

Regular expressions over such large classes cost ~30 ns a character in ``re``; instead every
code point is looked up in a table (built once per process) with numpy, which is ~10x faster.
Pure-ASCII texts take a byte-level path with the same result.

Shingles are hashed without building their strings: every word (xxh3) or character is hashed
once, then ``n`` consecutive hashes are combined with a vectorized, order-sensitive mix. Two
equal shingles always get the same 64-bit value; two different ones collide with probability
about 2**-62.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata

import numpy as np
import xxhash

# Numbers: digits joined by single decimal separators become one 0 (DataTrove's pattern
# joins at most two groups; a chain such as an IP address is one number here).
_ASCII_NUMBER = re.compile(rb"[0-9]+(?:[.,][0-9]+)*")
# ASCII fast path: every printable non-alphanumeric ASCII character is punctuation or a symbol.
_ASCII_TO_SPACE = bytes(
    32 if (c < 32 or c == 127 or (32 < c < 127 and not chr(c).isalnum())) else c for c in range(256)
)

# Odd 64-bit constants (from the golden ratio and MurmurHash3) for the shingle mix.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)

_SPACE, _DELETE, _ZERO = 32, -1, 48
# Decimal separators DataTrove's number pattern accepts between digits, as a lookup table.
_SEPARATORS = ".,\u060c\u066b\u2396\u2397\u2398"
_IS_SEPARATOR = np.zeros(max(map(ord, _SEPARATORS)) + 2, dtype=bool)
_IS_SEPARATOR[[ord(c) for c in _SEPARATORS]] = True


@functools.lru_cache(maxsize=2)
def _fold_table(lowercase: bool) -> np.ndarray:
    """What every code point becomes (int32, one entry per code point), built once per process
    (~0.1 s): letters lower-cased and stripped of diacritics (NFD, combining marks dropped)
    when that leaves one character; punctuation, symbols, separators and controls a space;
    format characters and combining marks deleted (-1); decimal digits ``0``."""
    table = np.arange(sys.maxunicode + 1, dtype=np.int32)
    # Planes 2-13 hold only CJK ideographs (no case, no marks) or nothing; plane 14 holds
    # format tags and variation selectors; 15-16 are private use.
    for first, last in ((0, 0x20000), (0xE0000, 0xE1000)):
        for cp in range(first, last):
            table[cp] = _fold(chr(cp), lowercase)
    return table


def _fold(char: str, lowercase: bool) -> int:
    category = unicodedata.category(char)
    kind = category[0]
    if kind == "L":
        if category == "Lo" and ord(char) >= 0x3400 and not 0xF900 <= ord(char) <= 0xFAFF:
            return ord(char)  # CJK and Hangul: no case, nothing to strip
        folded = unicodedata.normalize("NFD", char.lower() if lowercase else char)
        folded = "".join(c for c in folded if unicodedata.category(c) != "Mn")
        return ord(folded) if len(folded) == 1 else ord(char)
    if kind in "PSZ" or category == "Cc":
        return _SPACE
    if category in ("Cf", "Mn"):
        return _DELETE
    if category == "Nd":
        return _ZERO
    return ord(char)


def _collapse_numbers(folded: np.ndarray, original: np.ndarray) -> np.ndarray:
    """A run of digits, joined by single decimal separators, becomes one ``0``."""
    digit = folded == _ZERO
    if not digit.any():
        return folded
    between = np.zeros(len(digit), dtype=bool)
    between[1:-1] = digit[:-2] & digit[2:] & ~digit[1:-1]
    candidates = np.flatnonzero(between)
    joined = candidates[_IS_SEPARATOR[np.minimum(original[candidates], len(_IS_SEPARATOR) - 1)]]
    if len(joined):
        folded = folded.copy()
        folded[joined] = _ZERO
        digit[joined] = True
    repeat = np.zeros(len(digit), dtype=bool)
    repeat[1:] = digit[1:] & digit[:-1]
    return folded[~repeat]


def simplify(text: str, lowercase: bool = True) -> bytes:
    """DataTrove-style simplified text, UTF-8 encoded, words separated by ASCII spaces (split
    it with ``bytes.split()``)."""
    if text.isascii():  # much of a crawl: pure byte operations
        data = text.encode("ascii")
        if lowercase:
            data = data.lower()
        return _ASCII_NUMBER.sub(b"0", data).translate(_ASCII_TO_SPACE)
    original = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    folded = _fold_table(lowercase)[original]
    kept = folded != _DELETE
    if not kept.all():
        folded, original = folded[kept], original[kept]
    folded = _collapse_numbers(folded, original)
    return folded.astype("<u4").tobytes().decode("utf-32-le", "surrogatepass").encode("utf-8", "surrogatepass")


def fmix64(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: a fixed bijection that spreads every input bit."""
    values = values ^ (values >> _S33)
    values = values * _M1
    values = values ^ (values >> _S33)
    values = values * _M2
    return values ^ (values >> _S33)


def combine_windows(unit_hashes: np.ndarray, n: int) -> np.ndarray:
    """One 64-bit hash per window of ``n`` consecutive unit hashes: a weighted sum with a
    distinct odd weight per position (so order matters), then MurmurHash3's finalizer.

    A sequence shorter than ``n`` (but not empty) is one window: a short document still has a
    shingle, so identical short documents are found.
    """
    count = len(unit_hashes)
    if count == 0:
        return unit_hashes
    n = min(n, count)
    windows = count - n + 1
    weights = _position_weights(n)
    with np.errstate(over="ignore"):
        mixed = unit_hashes[:windows] * weights[0]
        for offset in range(1, n):
            mixed += unit_hashes[offset : offset + windows] * weights[offset]
        return fmix64(mixed)


@functools.lru_cache(maxsize=16)
def _position_weights(n: int) -> np.ndarray:
    """Odd weights, one per position of a window (fixed: part of every shingle's hash)."""
    with np.errstate(over="ignore"):
        return fmix64(np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN) | np.uint64(1)


def word_hashes(simplified: bytes) -> np.ndarray:
    """The 64-bit xxh3 hash of every word of simplified text."""
    words = simplified.split()
    return np.fromiter(map(xxhash.xxh3_64_intdigest, words), dtype=np.uint64, count=len(words))


def char_hashes(simplified: bytes) -> np.ndarray:
    """A 64-bit hash of every character of simplified text, whitespace collapsed to one space."""
    text = b" ".join(simplified.split()).decode("utf-8", "surrogatepass")
    codepoints = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
    with np.errstate(over="ignore"):
        return fmix64(codepoints * _GOLDEN + _GOLDEN)


def shingle_hashes(text: str, ngram_size: int, tokens: str = "word", lowercase: bool = True) -> np.ndarray:
    """The hashes of a document's shingles: n-grams of words or characters of its simplified
    text (uint64, in text order, repeats included)."""
    simplified = simplify(text, lowercase)
    units = word_hashes(simplified) if tokens == "word" else char_hashes(simplified)
    return combine_windows(units, ngram_size)


# ----------------------------------------------------------------------------------------------
# Exact-match normalisation (exact_dedup)
# ----------------------------------------------------------------------------------------------

# The ASCII characters of Unicode's punctuation categories (P*); $+<=>^`|~ are symbols (S*).
_ASCII_PUNCTUATION = re.compile(rb"""[!"#%&'()*,\-./:;?@\[\\\]_{}]+""")


@functools.lru_cache(maxsize=1)
def _punctuation_mask() -> np.ndarray:
    """True for every code point of Unicode's punctuation categories (all in planes 0-1)."""
    mask = np.zeros(sys.maxunicode + 1, dtype=bool)
    for cp in range(0x20000):
        if unicodedata.category(chr(cp))[0] == "P":
            mask[cp] = True
    return mask


def remove_punctuation(text: str) -> str:
    """``text`` without Unicode punctuation (categories P*)."""
    if text.isascii():
        return _ASCII_PUNCTUATION.sub(b"", text.encode("ascii")).decode("ascii")
    codepoints = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    kept = codepoints[~_punctuation_mask()[codepoints]]
    return kept.tobytes().decode("utf-32-le", "surrogatepass")


def exact_key(text: str, lowercase: bool, normalize_whitespace: bool, remove_punct: bool) -> str:
    """What two documents must share to be exact duplicates, under the chosen normalisation."""
    if lowercase:
        text = text.lower()
    if remove_punct:
        text = remove_punctuation(text)
    if normalize_whitespace:
        text = " ".join(text.split())
    return text
