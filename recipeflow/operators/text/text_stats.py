"""Text statistics shared by the DataTrove-compatible filters (Gopher, C4, FineWeb).

The character sets are those DataTrove's filters test against, so that a statistic computed
here equals DataTrove's for the same words. Per-word properties are cached per process: words
repeat, and a dictionary look-up from C is far cheaper than a Python loop over characters.
"""

from __future__ import annotations

import bisect
from collections import Counter
from typing import Any, Iterable, Sequence

import numpy as np

# Characters that make a word "a symbol" in the Gopher quality rules: ASCII and CJK punctuation,
# a few symbols, and the control characters (tab and newline excepted).
_CONTROL_CHARS = "".join(
    chr(c) for c in [*range(0, 9), 11, 12, *range(13, 32), *range(127, 160)]
)
PUNCTUATION = (
    "!/—”:％１〈&(、━\\【#%「」，】；+^]~“《„';’{|∶´[=-`*．（–？！：$～«〉,><》)?）。…@_.\"}►»"
    + _CONTROL_CHARS
)

# Sentence-ending punctuation of all scripts (Unicode's sentence terminals): FineWeb's
# "line ends with terminal punctuation" test uses this set.
SENTENCE_TERMINALS = (
    "!.?\u0589\u061d\u061e\u061f\u06d4\u0700\u0701\u0702\u07f9\u0837\u0839\u083d\u083e\u0964"
    "\u0965\u104a\u104b\u1362\u1367\u1368\u166e\u1735\u1736\u17d4\u17d5\u17d6\u17d9\u17da"
    "\u1803\u1809\u1944\u1945\u1aa8\u1aa9\u1aaa\u1aab\u1b5a\u1b5b\u1b5e\u1b5f\u1b7d\u1b7e"
    "\u1c3b\u1c3c\u1c7e\u1c7f\u203c\u203d\u2047\u2048\u2049\u2e2e\u2e3c\u2e53\u2e54\u3002"
    "\ua4ff\ua60e\ua60f\ua6f3\ua6f7\ua876\ua877\ua8ce\ua8cf\ua92f\ua9c8\ua9c9\uaa5d\uaa5e"
    "\uaa5f\uaaf0\uaaf1\uabeb\ufe52\ufe56\ufe57\uff01\uff0e\uff1f\uff61"
    "\U00010a56\U00010a57\U00010f55\U00010f56\U00010f57\U00010f58\U00010f59\U00010f86"
    "\U00010f87\U00010f88\U00010f89\U00011047\U00011048\U000110be\U000110bf\U000110c0"
    "\U000110c1\U00011141\U00011142\U00011143\U000111c5\U000111c6\U000111cd\U000111de"
    "\U000111df\U00011238\U00011239\U0001123b\U0001123c\U000112a9\U0001144b\U0001144c"
    "\U000115c2\U000115c3\U000115c9\U000115ca\U000115cb\U000115cc\U000115cd\U000115ce"
    "\U000115cf\U000115d0\U000115d1\U000115d2\U000115d3\U000115d4\U000115d5\U000115d6"
    "\U000115d7\U00011641\U00011642\U0001173c\U0001173d\U0001173e\U00011944\U00011946"
    "\U00011a42\U00011a43\U00011a9b\U00011a9c\U00011c41\U00011c42\U00011ef7\U00011ef8"
    "\U00011f43\U00011f44\U00016a6e\U00016a6f\U00016af5\U00016b37\U00016b38\U00016b44"
    "\U00016e98\U0001bc9f\U0001da88"
)
# Those that spaCy's sentencizer (which DataTrove's sentence splitting uses) ends sentences at:
# the same set less a few recent additions to Unicode.
SENTENCIZER_TERMINALS = "".join(
    c for c in SENTENCE_TERMINALS
    if c not in "\u061d\u061e\u0837\u0839\u083d\u083e\u17d4\u17d5\u17d6\u17d9\u17da\u1b7d\u1b7e"
    "\u2e53\u2e54\U00010f55\U00010f56\U00010f57\U00010f58\U00010f59\U00010f86\U00010f87"
    "\U00010f88\U00010f89\U00011944\U00011946\U00011ef7\U00011ef8\U00011f43\U00011f44\U00016e98"
)
TERMINAL_PUNCTUATION = tuple(SENTENCE_TERMINALS)
PUNCTUATION_SET = frozenset(PUNCTUATION) | frozenset(SENTENCE_TERMINALS)


class WordCache(dict):
    """A per-process cache of one property of words (a flag, a hash, a stripped form), computed
    on first sight: words repeat so much that a dictionary lookup beats recomputing."""

    def __init__(self, predicate):
        super().__init__()
        self._predicate = predicate

    def __missing__(self, word: str) -> Any:
        if len(self) > 1_000_000:
            self.clear()
        value = self[word] = self._predicate(word)
        return value


def _has_alpha(word: str) -> bool:
    return any(c.isalpha() for c in word)


def _is_not_symbol(word: str) -> bool:
    return any(c not in PUNCTUATION_SET for c in word)


HAS_ALPHA = WordCache(_has_alpha)  # the word holds at least one letter
NOT_SYMBOL = WordCache(_is_not_symbol)  # the word holds something besides punctuation


def count_true(words: Sequence[str], prop: WordCache) -> int:
    """How many words have the property (dictionary look-ups from C, no Python loop)."""
    return sum(map(prop.__getitem__, words))


def duplicates(items: Iterable[str]) -> tuple[int, int]:
    """(number of items seen before, total characters of those repeats): each item after its
    first occurrence counts as a duplicate."""
    counts = Counter(items)
    n_dup = 0
    dup_chars = 0
    for item, count in counts.items():
        if count > 1:
            n_dup += count - 1
            dup_chars += (count - 1) * len(item)
    return n_dup, dup_chars


def top_ngram_chars(words: Sequence[str], n: int) -> int:
    """Characters covered by the most frequent word n-gram: the length of the n-gram (words
    joined by one space) times its count. Ties go to the n-gram seen first; 0 without n-grams."""
    if len(words) < n:
        return 0
    grams = Counter(zip(*[words[i:] for i in range(n)]))
    top_count = max(grams.values())
    # Counters keep first-seen order, so the first n-gram with the top count is the one
    # DataTrove's most_common(1) returns.
    top = next(gram for gram, count in grams.items() if count == top_count)
    return (sum(map(len, top)) + n - 1) * top_count


def repeated_ngram_chars(words: Sequence[str], n: int) -> int:
    """Characters in word n-grams that repeat an earlier n-gram, scanning left to right and
    skipping past each repeat (so overlapping repeats count once). N-grams are compared as the
    concatenation of their words. (The filters use :func:`repeated_ngram_chars_by_size`, which
    compares hashes instead of strings.)"""
    n_grams = len(words) - n + 1
    if n_grams <= 0:
        return 0
    grams = list(map("".join, zip(*[words[i:] for i in range(n)])))
    # n-gram -> position of its first occurrence (later positions written first, then
    # overwritten by earlier ones).
    first = dict(zip(reversed(grams), range(n_grams - 1, -1, -1)))
    identities = np.fromiter(map(first.__getitem__, grams), dtype=np.int64, count=n_grams)
    return _repeated_chars(identities, np.fromiter(map(len, grams), dtype=np.int64, count=n_grams), n)


# Polynomial hashes of word concatenations, modulo 2**64: the hash of a + b is
# hash(a) * BASE**len(b) + hash(b), so the hashes of all n-grams' concatenations come from
# per-word values with a few vector operations.
_MASK = (1 << 64) - 1
_BASE = 0x100000001B3


def _word_hash(word: str) -> int:
    value = 0
    for char in word:
        value = (value * _BASE + ord(char)) & _MASK
    return value


WORD_HASH = WordCache(_word_hash)
WORD_SHIFT = WordCache(lambda word: pow(_BASE, len(word), 1 << 64))  # BASE ** len(word)


def window_hashes(values: np.ndarray, n: int) -> np.ndarray:
    """The polynomial hash (modulo 2**64, the same base) of every run of ``n`` consecutive
    ``values`` (code points, or word hashes), ``len(values) - n + 1`` of them, in about
    2·log2(n) vector operations: a window of 2k is two windows of k."""
    if n == 1:
        return values.astype(np.uint64, copy=False)
    if n % 2:
        shorter = window_hashes(values[:-1], n - 1)
        return shorter * np.uint64(_BASE) + values[n - 1 :].astype(np.uint64, copy=False)
    half = window_hashes(values, n // 2)
    return half[: len(half) - n // 2] * np.uint64(pow(_BASE, n // 2, 1 << 64)) + half[n // 2 :]


def repeated_ngram_chars_by_size(words: Sequence[str], sizes: Sequence[int]) -> list[int]:
    """:func:`repeated_ngram_chars` for each n of ``sizes``, from 64-bit polynomial hashes of
    the n-grams' concatenations instead of the strings themselves: all sizes come from per-word
    values with a few vector operations, and the scan runs over integers. Two different
    n-grams of one document collide with a probability of about (n-grams)² / 2⁶⁵."""
    results = dict.fromkeys(sizes, 0)
    if not words or not sizes:
        return [results[n] for n in sizes]
    count = len(words)
    hashes = np.fromiter(map(WORD_HASH.__getitem__, words), dtype=np.uint64, count=count)
    shifts = np.fromiter(map(WORD_SHIFT.__getitem__, words), dtype=np.uint64, count=count)
    ends = np.zeros(count + 1, dtype=np.int64)  # characters before each word
    np.cumsum(np.fromiter(map(len, words), dtype=np.int64, count=count), out=ends[1:])
    wanted = set(sizes)
    grams = hashes  # hashes of the n-grams' concatenations, for n = 1, 2, ...
    for n in range(1, max(sizes) + 1):
        n_grams = count - n + 1
        if n_grams <= 0:
            break
        if n > 1:
            grams = grams[:n_grams] * shifts[n - 1 :] + hashes[n - 1 :]
        if n in wanted:
            results[n] = _repeated_chars(grams, ends[n:] - ends[:n_grams], n)
    return [results[n] for n in sizes]


def _repeated_chars(grams: np.ndarray, lengths: np.ndarray, n: int) -> int:
    """The scan over n-gram identities (equal n-grams, equal values) and their lengths.

    Only positions whose n-gram occurred before can be repeats, so the scan visits just those
    (found with numpy), knowing which earlier positions the skips jumped over: an n-gram whose
    earlier occurrences were all jumped over counts as new.
    """
    n_grams = len(grams)
    _, first_index, inverse = np.unique(grams, return_index=True, return_inverse=True)
    if len(first_index) == n_grams:  # nothing repeats: the common case
        return 0
    first_of = first_index[inverse]  # position of each n-gram's first occurrence
    later = np.flatnonzero(first_of != np.arange(n_grams))
    skip_starts: list[int] = []
    seen_later: set[int] = set()
    skip_end = 0
    repeated = 0
    for position in later.tolist():
        if position < skip_end:
            continue
        gram_id = int(first_of[position])
        if gram_id in seen_later or not _in_windows(gram_id, skip_starts, n - 1):
            repeated += int(lengths[position])
            skip_starts.append(position + 1)
            skip_end = position + n
        else:
            seen_later.add(gram_id)
    return repeated


def _in_windows(position: int, starts: list[int], width: int) -> bool:
    """Whether ``position`` lies in one of the windows [start, start + width) (sorted starts)."""
    i = bisect.bisect_right(starts, position) - 1
    return i >= 0 and position < starts[i] + width


def safe_ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, or 0.0 for an empty denominator (an empty document has no
    repeated lines, no hashes per word...)."""
    return numerator / denominator if denominator else 0.0
