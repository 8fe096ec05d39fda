"""The text side of benchmark decontamination: one normalization, shared by the index (benchmark
items) and the documents, and 64-bit word n-gram hashes.

Normalization (``NORMALIZATION`` names it; it is part of the index key):

1. Unicode NFKC (full-width letters, ligatures, compatibility forms become plain ones);
2. lowercase (``str.lower``);
3. every character of the Unicode categories P* (punctuation), S* (symbols), Z* (separators),
   Cc and Cf (control, format), and all whitespace, is a word boundary;
4. words are the non-empty runs between boundaries (so whitespace is collapsed).

"Don't stop!" and "DON'T  stop." are both ``don t stop``. Digits and diacritics are kept.

An n-gram's hash: each word is hashed to 64 bits (a polynomial of its code points, see
:func:`word_hashes`), then the words of a window of length k are combined as a polynomial ``sum(w[i+j] * P**(k-1-j))`` mod 2**64 and
finished with splitmix64's mixer of ``that ^ k``, so a k-gram and an n-gram never share a hash by
construction. Windows never cross document boundaries.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Sequence

import numpy as np

NORMALIZATION = "nfkc-lower-split_on_PSZ_Cc_Cf_space-v1"

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


def _runs(is_word: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends (exclusive) of the runs of True."""
    padded = np.concatenate([[False], is_word, [False]]).astype(np.int8)
    change = np.diff(padded)
    return np.nonzero(change == 1)[0], np.nonzero(change == -1)[0]


def normalized_words(text: str) -> list[str]:
    """The words of ``text`` after normalization."""
    prepared = _prepare(text)
    starts, ends = _runs(~_boundary_table()[_code_points(prepared)])
    return [prepared[a:b] for a, b in zip(starts.tolist(), ends.tolist())]


def normalize(text: str) -> str:
    """The normalized text: its words joined by single spaces (for people and tests)."""
    return " ".join(normalized_words(text))


def words_with_spans(text: str) -> tuple[list[str], list[int], list[int]]:
    """The normalized words with the character span of ``text`` each came from (for cutting
    matches out). Each run between boundaries of the original text is normalized on its own; a
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


def word_hashes(texts: Sequence[str], prepared: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Every normalized word of ``texts`` as a 64-bit hash, in order, and the text each word
    is from. Vectorized: the texts are joined (NFKC, lowercase) into one array of code points;
    a word's hash is the polynomial of its code points, ``sum(cp[j] * P**(end-1-j))``, read off
    prefix sums of ``cp[j] * P**-j`` (P is odd, so invertible mod 2**64), then mixed with its
    length. ``prepared``: the texts are normalized words already (joined by spaces)."""
    table = _boundary_table()
    all_hashes, all_docs = [], []
    chunk: list[str] = []
    first_doc, size = 0, 0
    for i, text in enumerate(texts):
        chunk.append(text if prepared else _prepare(text))
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
