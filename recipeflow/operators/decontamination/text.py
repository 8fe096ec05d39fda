"""The text side of benchmark decontamination: the normalization, shared by the index (benchmark
items) and the documents, and 64-bit word n-gram hashes.

Two normalizations; the chosen one's :attr:`Normalization.key` is part of the index key.

``recipeflow`` (the default; ``NORMALIZATION`` is its key):

1. Unicode NFKC (full-width letters, ligatures, compatibility forms become plain ones);
2. lowercase (``str.lower``);
3. every character of the Unicode categories P* (punctuation), S* (symbols), Z* (separators),
   Cc and Cf (control, format), and all whitespace, is a word boundary;
4. words are the non-empty runs between boundaries (so whitespace is collapsed).

"Don't stop!" and "DON'T  stop." are both ``don t stop``. Digits and diacritics are kept.

``datatrove``: the words DataTrove's ``NGramsDecontFilter`` compares, for corpora and indexes
that must decide exactly as DataTrove does. Its ``simplify_text`` with the default
``TextNormConfig`` (lowercase; every number, digits joined by at most one decimal separator,
becomes ``0``; the characters of its fixed punctuation list become spaces; whitespace collapsed;
NFD and combining marks (Mn) dropped), then its word tokenizer for ``language`` (spaCy's rules
for English, re-implemented by :mod:`recipeflow.operators.text.words`), tokens stripped and
empty ones dropped. Symbols outside that list ("→", "©") are words here, and English
contractions are split as spaCy splits them ("cannot" -> "can not").

An n-gram's hash: each word is hashed to 64 bits (a polynomial of its code points, see
:func:`word_hashes`), then the words of a window of length k are combined as a polynomial ``sum(w[i+j] * P**(k-1-j))`` mod 2**64 and
finished with splitmix64's mixer of ``that ^ k``, so a k-gram and an n-gram never share a hash by
construction. Windows never cross document boundaries.
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from recipeflow.operators.text.words import split_words

NORMALIZATION = "nfkc-lower-split_on_PSZ_Cc_Cf_space-v1"
NormalizationName = Literal["recipeflow", "datatrove"]

_PRIME = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier of the polynomials (golden ratio)
_PRIME_INVERSE = np.uint64(pow(int(_PRIME), -1, 2**64))
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_CHUNK = 1 << 19  # code points hashed at once (bounds the temporary arrays)


@functools.cache
def _boundary_table() -> np.ndarray:
    """A bool per Unicode code point: True for word boundaries (P*, S*, Z*, Cc, Cf, spaces)."""
    table = np.zeros(0x110000, bool)
    for cp in range(0x110000):
        c = chr(cp)
        category = unicodedata.category(c)
        if category[0] in "PSZ" or category in ("Cc", "Cf") or c.isspace():
            table[cp] = True
    return table


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _prepare(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


# DataTrove's punctuation list (datatrove.utils.text.PUNCTUATION, 0.10.1): all ASCII punctuation,
# these typographic and CJK forms (the full-width digit one is on its list too), and the C0 and
# C1 control characters other than tab and newline.
_DATATROVE_PUNCTUATION = (
    string.punctuation
    + "\u2014\u201d\uff05\uff11\u3008\u3001\u2501\u3010\u300c\u300d\uff0c\u3011\uff1b\u2236"
    + "\u00b4\u201c\u300a\u201e\u2019\uff0e\uff08\u2013\uff1f\uff01\uff1a\uff5e\u00ab"
    + "\u3009\u300b\uff09\u3002\u2026\u25ba\u00bb"
    + "".join(chr(c) for c in [*range(0, 9), *range(11, 32), *range(127, 160)])
)
_DATATROVE_TO_SPACE = str.maketrans(_DATATROVE_PUNCTUATION, " " * len(_DATATROVE_PUNCTUATION))
# DataTrove's number pattern: digits of any script, optionally one decimal separator and digits
# (``\d`` matches every Unicode decimal digit in a str pattern).
_DATATROVE_NUMBER = re.compile(r"\d+(?:[.,\u060c\u066b\u2396\u2397\u2398]\d+)?")
_WHITESPACE = re.compile(r"\s+")


@functools.cache
def _combining_marks() -> dict[int, None]:
    """A str.translate table deleting every combining mark (Mn)."""
    return {cp: None for cp in range(0x110000) if unicodedata.category(chr(cp)) == "Mn"}


def datatrove_simplify(text: str) -> str:
    """DataTrove's ``simplify_text`` with its default ``TextNormConfig``, step by step in its
    order (lowercase, numbers, punctuation, whitespace, diacritics)."""
    text = _DATATROVE_NUMBER.sub("0", text.lower()).translate(_DATATROVE_TO_SPACE)
    text = _WHITESPACE.sub(" ", text.strip())
    if not text.isascii():  # NFD changes no ASCII character
        text = unicodedata.normalize("NFD", text).translate(_combining_marks())
    return text.strip()


@dataclass(frozen=True)
class Normalization:
    """Which normalization (see the module's docstring) and, for ``datatrove``, the language
    whose word tokenizer splits the simplified text."""

    name: NormalizationName = "recipeflow"
    language: str = "en"

    @property
    def key(self) -> str:
        """Names the normalization in the index key and the index file."""
        if self.name == "recipeflow":
            return NORMALIZATION
        return f"datatrove-simplify_text-words_{self.language}-v1"

    def prepare(self, text: str) -> str:
        """``text`` made ready for :func:`word_hashes`: its words are the runs between the
        characters :meth:`boundaries` marks."""
        if self.name == "recipeflow":
            return _prepare(text)
        return " ".join(split_words(datatrove_simplify(text), self.language))

    def boundaries(self) -> np.ndarray:
        """A bool per code point: True where words end in a prepared text."""
        return _boundary_table() if self.name == "recipeflow" else _space_table()


DEFAULT = Normalization()


@functools.cache
def _space_table() -> np.ndarray:
    """Boundaries of texts whose words are joined by spaces (newlines join texts)."""
    table = np.zeros(0x110000, bool)
    table[[ord(" "), ord("\n")]] = True
    return table


def _runs(is_word: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends (exclusive) of the runs of True."""
    padded = np.concatenate([[False], is_word, [False]]).astype(np.int8)
    change = np.diff(padded)
    return np.nonzero(change == 1)[0], np.nonzero(change == -1)[0]


def normalized_words(text: str, normalization: Normalization = DEFAULT) -> list[str]:
    """The words of ``text`` after normalization."""
    prepared = normalization.prepare(text)
    starts, ends = _runs(~normalization.boundaries()[_code_points(prepared)])
    return [prepared[a:b] for a, b in zip(starts.tolist(), ends.tolist())]


def normalize(text: str, normalization: Normalization = DEFAULT) -> str:
    """The normalized text: its words joined by single spaces (for people and tests)."""
    return " ".join(normalized_words(text, normalization))


def words_with_spans(text: str) -> tuple[list[str], list[int], list[int]]:
    """The normalized words (``recipeflow`` normalization) with the character span of ``text``
    each came from (for cutting matches out). Each run between boundaries of the original text is normalized on its own; a
    run whose NFKC form holds a boundary (e.g. "½") gives several words sharing its span."""
    words, starts, ends = [], [], []
    run_starts, run_ends = _runs(~_boundary_table()[_code_points(text)])
    for a, b in zip(run_starts.tolist(), run_ends.tolist()):
        run = text[a:b]
        if run.isascii():  # NFKC changes no ASCII letter or digit: one word, lowercased
            words.append(run.lower())
            starts.append(a)
            ends.append(b)
            continue
        for word in normalized_words(run):
            words.append(word)
            starts.append(a)
            ends.append(b)
    return words, starts, ends


_POWERS: dict[int, np.ndarray] = {}


def _powers(base: int, length: int) -> np.ndarray:
    """base**i mod 2**64 for i < length (computed once per process, grown when needed)."""
    have = _POWERS.get(base)
    if have is None or len(have) < length:
        size = max(length, 1 << 20, 2 * len(have) if have is not None else 0)
        out = np.full(size, np.uint64(base), dtype=np.uint64)
        out[0] = 1
        have = _POWERS[base] = np.cumprod(out, dtype=np.uint64)
    return have[:length]


def word_hashes(texts: Sequence[str], prepared: bool = False,
                normalization: Normalization = DEFAULT) -> tuple[np.ndarray, np.ndarray]:
    """Every normalized word of ``texts`` as a 64-bit hash, in order, and the text each word
    is from. Vectorized: the prepared texts (:meth:`Normalization.prepare`) are joined into one
    array of code points; a word's hash is the polynomial of its code points,
    ``sum(cp[j] * P**(end-1-j))``, read off prefix sums of ``cp[j] * P**-j`` (P is odd, so
    invertible mod 2**64), then mixed with its length. ``prepared``: the texts are normalized
    words already (joined by spaces)."""
    table = normalization.boundaries()
    all_hashes, all_docs = [], []
    chunk: list[str] = []
    first_doc, size = 0, 0
    for i, text in enumerate(texts):
        chunk.append(text if prepared else normalization.prepare(text))
        size += len(chunk[-1]) + 1
        if size >= _CHUNK:
            h, d = _chunk_hashes(chunk, table)
            all_hashes.append(h)
            all_docs.append(d + first_doc)
            first_doc, chunk, size = i + 1, [], 0
    if chunk:
        h, d = _chunk_hashes(chunk, table)
        all_hashes.append(h)
        all_docs.append(d + first_doc)
    if not all_hashes:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    return np.concatenate(all_hashes), np.concatenate(all_docs)


def _chunk_hashes(prepared: list[str], table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    joined = "\n".join(prepared)  # a newline is a boundary: no word spans two texts
    cp = _code_points(joined)
    starts, ends = _runs(~table[cp])
    if len(starts) == 0:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    inverse_powers = _powers(int(_PRIME_INVERSE), len(cp))
    powers = _powers(int(_PRIME), len(cp))
    with np.errstate(over="ignore"):
        prefix = np.cumsum(cp.astype(np.uint64) * inverse_powers, dtype=np.uint64)
        before = np.where(starts > 0, prefix[np.maximum(starts - 1, 0)], np.uint64(0))
        raw = (prefix[ends - 1] - before) * powers[ends - 1]
        hashes = _mix(raw ^ (ends - starts).astype(np.uint64))
    text_starts = np.cumsum([0] + [len(t) + 1 for t in prepared[:-1]])
    docs = np.searchsorted(text_starts, starts, side="right") - 1
    return hashes, docs.astype(np.int64)


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
