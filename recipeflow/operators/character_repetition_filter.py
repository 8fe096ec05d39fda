"""``character_repetition_filter`` (Data-Juicer): keep documents whose character n-gram
repetition ratio is within bounds."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import Field, PositiveInt

from recipeflow.operators._datajuicer_text import DataJuicerFilterParams, RangeFilter
from recipeflow.operators.registry import register


class CharacterRepetitionFilterParams(DataJuicerFilterParams):
    rep_len: PositiveInt = Field(10, description="Length of the character n-grams.")
    min_ratio: float | None = Field(0.0, description="Drop documents below this ratio.")
    max_ratio: float | None = Field(0.5, description="Drop documents above this ratio.")


def ngram_counts(text: str, n: int) -> np.ndarray:
    """How often each distinct character n-gram of ``text`` occurs (any order).

    Exact, and faster than a Python dict: the n-grams are fixed-width rows of UTF-32 code
    units, counted by Arrow's hash table.
    """
    count = len(text) - n + 1
    code_points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    rows = np.ascontiguousarray(sliding_window_view(code_points, n))
    buffers = [None, pa.py_buffer(rows)]
    grams = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4 * n), count, buffers)
    return pc.value_counts(grams).field("counts").to_numpy()


def repetition_ratio(counts: np.ndarray, total: int) -> float:
    """Data-Juicer's character repetition ratio: the occurrences of the ``sqrt(distinct)`` most
    frequent n-grams (only n-grams occurring more than once count) over all n-grams."""
    distinct = len(counts)
    repeated = distinct - int(np.count_nonzero(counts == 1))
    top = min(int(math.sqrt(distinct)), repeated)
    if top <= 0:
        return 0.0
    return int(np.partition(counts, distinct - top)[distinct - top :].sum()) / total


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
        out: list[Any] = []
        for text in texts:
            total = len(text) - n + 1
            out.append(repetition_ratio(ngram_counts(text, n), total) if total > 0 else 0.0)
        return out

    def bounds(self) -> tuple[float | None, float | None]:
        return self.params.min_ratio, self.params.max_ratio
