"""The text side of benchmark decontamination: one normalization, shared by the index (benchmark
items) and the documents, and 64-bit word n-gram hashes.

Normalization (``NORMALIZATION`` names it; it is part of the index key):

1. Unicode NFKC (full-width letters, ligatures, compatibility forms become plain ones);
2. lowercase (``str.lower``);
3. every character of the Unicode categories P* (punctuation), S* (symbols), Z* (separators),
   Cc and Cf (control, format), and all whitespace, is a word boundary;
4. words are the non-empty runs between boundaries (so whitespace is collapsed).

"Don't stop!" and "DON'T  stop." are both ``don t stop``. Digits and diacritics are kept.

An n-gram's hash: each word is hashed with xxh3-64 (of its UTF-8 bytes), then the words of a
window of length k are combined as a polynomial ``sum(w[i+j] * P**(k-1-j))`` mod 2**64 and
finished with splitmix64's mixer of ``that ^ k``, so a k-gram and an n-gram never share a hash by
construction. Windows never cross document boundaries.
"""

from __future__ import annotations

import unicodedata
from typing import Sequence

import numpy as np
import regex
import xxhash

NORMALIZATION = "nfkc-lower-split_on_PSZ_Cc_Cf_space-v1"

_BOUNDARY_CLASS = r"\p{P}\p{S}\p{Z}\p{Cc}\p{Cf}\s"
_BOUNDARIES = regex.compile(f"[{_BOUNDARY_CLASS}]+")
_WORD_RUNS = regex.compile(f"[^{_BOUNDARY_CLASS}]+")


def _ascii_boundary_table() -> bytes:
    """bytes.translate table: ASCII boundary characters (same rule as the regex) -> space."""
    out = bytearray(range(256))
    for i in range(128):
        c = chr(i)
        if unicodedata.category(c)[0] in "PSZ" or unicodedata.category(c) in ("Cc", "Cf") or c.isspace():
            out[i] = 32
    return bytes(out)


_ASCII_TABLE = _ascii_boundary_table()

_PRIME = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier of the polynomial (golden ratio)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def normalize(text: str) -> str:
    """The normalized text: its words joined by single spaces (for people and tests)."""
    return " ".join(w if isinstance(w, str) else w.decode() for w in normalized_words(text))


def normalized_words(text: str) -> list[str | bytes]:
    """The words of ``text`` after normalization. ASCII text takes a bytes fast path (same
    words, as bytes): both are hashed from their UTF-8 bytes."""
    text = unicodedata.normalize("NFKC", text).lower()
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_TABLE).split()
    return [w for w in _BOUNDARIES.split(text) if w]


def words_with_spans(text: str) -> tuple[list[str], list[int], list[int]]:
    """The normalized words with the character span of ``text`` each came from (for cutting
    matches out). Each run between boundaries of the original text is normalized on its own; a
    run whose NFKC form holds a boundary (e.g. "½") gives several words sharing its span."""
    words, starts, ends = [], [], []
    for match in _WORD_RUNS.finditer(text):
        for word in normalized_words(match.group()):
            words.append(word if isinstance(word, str) else word.decode())
            starts.append(match.start())
            ends.append(match.end())
    return words, starts, ends


class WordHasher:
    """xxh3-64 of words, remembered (word frequencies are Zipfian: most lookups hit)."""

    def __init__(self, max_words: int = 2_000_000):
        self._cache: dict[str | bytes, int] = {}
        self._max_words = max_words

    def hash_words(self, words: Sequence[str | bytes]) -> np.ndarray:
        cache = self._cache
        if len(cache) > self._max_words:
            cache.clear()
        digest = xxhash.xxh3_64_intdigest
        out = []
        append = out.append
        for w in words:
            h = cache.get(w)
            if h is None:
                h = cache[w] = digest(w.encode("utf-8") if isinstance(w, str) else w)
            append(h)
        return np.array(out, dtype=np.uint64)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, vectorized (uint64 arithmetic wraps)."""
    h = h ^ (h >> np.uint64(30))
    h = h * _MIX1
    h = h ^ (h >> np.uint64(27))
    h = h * _MIX2
    return h ^ (h >> np.uint64(31))


def window_hashes(word_hashes: np.ndarray, doc_of_word: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The hash of every window of ``k`` consecutive words that stays inside one document, and
    each window's start (an index into ``word_hashes``)."""
    total = len(word_hashes)
    if total < k:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    count = total - k + 1
    with np.errstate(over="ignore"):
        acc = word_hashes[:count].copy()
        for j in range(1, k):
            acc *= _PRIME
            acc += word_hashes[j:count + j]
        hashes = _mix(acc ^ np.uint64(k))
    starts = np.arange(count, dtype=np.int64)
    inside = doc_of_word[:count] == doc_of_word[k - 1:]
    return hashes[inside], starts[inside]


def gram_hash(word_hashes: np.ndarray) -> int:
    """The hash of one whole word sequence (a short item's single gram)."""
    k = len(word_hashes)
    return int(window_hashes(word_hashes, np.zeros(k, np.int64), k)[0][0])
