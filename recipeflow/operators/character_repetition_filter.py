"""``character_repetition_filter`` (Data-Juicer): keep documents whose character n-gram
repetition ratio is within bounds."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import Field, PositiveInt

from recipeflow.operators.base import NonNegative, Ratio
from recipeflow.operators.text.datajuicer_text import DataJuicerFilterParams, RangeFilter
from recipeflow.operators.text.text_stats import window_hashes
from recipeflow.operators.registry import register


class CharacterRepetitionFilterParams(DataJuicerFilterParams):
    rep_len: PositiveInt = Field(10, description="Length of the character n-grams.")
    min_ratio: Ratio | None = Field(0.0, description="Drop documents below this ratio.")
    max_ratio: NonNegative | None = Field(0.5, description="Drop documents above this ratio.")


_CHUNK_CHARACTERS = 1 << 21  # texts are hashed in chunks of about this many characters


def ngram_counts_per_text(texts: list[str], n: int) -> list[np.ndarray]:
    """For each text, how often each distinct character n-gram occurs (any order).

    The n-grams are 64-bit polynomial hashes of their code points, computed for a chunk of
    texts at once and counted by sorting; two different n-grams of one text collide with a
    probability of about (n-grams)² / 2⁶⁵."""
    out: list[np.ndarray] = []
    start = 0
    while start < len(texts):
        chunk, size = [], 0
        while start < len(texts) and (not chunk or size + len(texts[start]) <= _CHUNK_CHARACTERS):
            chunk.append(texts[start])
            size += len(texts[start])
            start += 1
        joined = "".join(chunk).encode("utf-32-le", "surrogatepass")
        code_points = np.frombuffer(joined, dtype=np.uint32).astype(np.uint64)
        grams = window_hashes(code_points, n) if size >= n else np.empty(0, dtype=np.uint64)
        offset = 0
        for text in chunk:
            total = len(text) - n + 1
            if total <= 0:
                out.append(np.empty(0, dtype=np.int64))
            else:
                ordered = np.sort(grams[offset : offset + total])
                changes = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
                out.append(np.diff(changes, prepend=0, append=total))
            offset += len(text)
    return out


def repetition_ratio(counts: np.ndarray, total: int) -> float:
    """Data-Juicer's character repetition ratio: the occurrences of the ``sqrt(distinct)`` most
    frequent n-grams (only n-grams occurring more than once count) over all n-grams."""
    distinct = len(counts)
    repeated = counts[counts > 1]  # few: the top n-grams are among them
    top = min(int(math.sqrt(distinct)), len(repeated))
    if top <= 0:
        return 0.0
    if top < len(repeated):
        repeated = np.partition(repeated, len(repeated) - top)[len(repeated) - top :]
    return int(repeated.sum()) / total


@register
class CharacterRepetitionFilter(RangeFilter):
    """Keep documents whose character n-gram repetition ratio is within [min_ratio, max_ratio]
    (Data-Juicer's ``character_repetition_filter``).

    Statistic ``char_rep_ratio``: over the ``rep_len``-character n-grams, the occurrences of the
    ``int(sqrt(distinct n-grams))`` most frequent ones (at most as many as there are repeated
    n-grams) divided by the number of n-grams; 0 for texts shorter than ``rep_len``.
    """

    name = "character_repetition_filter"
    version = "1"
    Params = CharacterRepetitionFilterParams
    statistic = "char_rep_ratio"

    def measure(self, texts: list[str]) -> list[Any]:
        n = self.params.rep_len
        return [
            repetition_ratio(counts, len(text) - n + 1) if len(counts) else 0.0
            for text, counts in zip(texts, ngram_counts_per_text(texts, n))
        ]

    def bounds(self) -> tuple[float | None, float | None]:
        return self.params.min_ratio, self.params.max_ratio
