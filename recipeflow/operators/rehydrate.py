"""``rehydrate``: repeat documents by the size of the duplicate cluster they came from.

FineWeb2 (Penedo et al., 2025) found that after deduplication, documents whose duplicate
cluster was of a middling size are worth more than unique ones or those of huge clusters
(spam, boilerplate), and "rehydrates": it puts back some copies, by cluster size. Here any
numeric field works (``dup_cluster_size``, which ``minhash_dedup`` writes, a
quality score...): ``repeats`` maps ranges of its value to how many times a document appears.

    - rehydrate:
        field: dup_cluster_size
        repeats: {"1": 1, "2-4": 2, "5-100": 3, "101+": 1}

A document whose value falls in no range appears once; a range with 0 copies removes its
documents (reason ``rehydrate_zero``). Copies after the first get ids ``<id>#2``, ``<id>#3``...
and count as added documents of the step (``docs_added`` in the manifest).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from recipeflow.operators.base import Mapper, OperatorParams, Rejection, StepResult, repeat_rows, split_by_decisions
from recipeflow.operators.registry import register

ZERO = "rehydrate_zero"
_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:(\+)|-\s*(-?\d+(?:\.\d+)?))?\s*$")


def parse_range(text: str) -> tuple[float, float]:
    """``"3"`` -> [3, 3], ``"2-4"`` -> [2, 4], ``"101+"`` -> [101, inf]."""
    match = _RANGE.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a range; write `3`, `2-4` or `101+`")
    low = float(match.group(1))
    high = math.inf if match.group(2) else float(match.group(3)) if match.group(3) else low
    if high < low:
        raise ValueError(f"range {text!r} ends below its start")
    return low, high


class RehydrateParams(OperatorParams):
    field: str = Field("dup_cluster_size", description="Numeric field whose value picks the range")
    repeats: dict[str, int] = Field(
        min_length=1,
        description="Range of the field's value -> copies of the document: `\"1\": 1`, "
        "`\"2-4\": 2`, `\"101+\": 1` (0 removes; values in no range: 1 copy)",
    )

    @field_validator("repeats")
    @classmethod
    def _ranges(cls, repeats: dict[str, int]) -> dict[str, int]:
        ranges = sorted((parse_range(text), text) for text in repeats)
        for (first, a), (second, b) in zip(ranges, ranges[1:]):
            if second[0] <= first[1]:
                raise ValueError(f"ranges {a!r} and {b!r} overlap")
        for text, copies in repeats.items():
            if copies < 0:
                raise ValueError(f"copies for {text!r} must be >= 0; got {copies}")
        return repeats


@register
class Rehydrate(Mapper):
    """Repeat documents by ranges of a numeric field (FineWeb2's rehydration by cluster size)."""

    name = "rehydrate"
    version = "1"
    Params = RehydrateParams
    adds_text = True  # repeats documents

    def process(self, batch: pa.Table) -> StepResult:
        field = self.params.field
        if len(batch) == 0:
            return StepResult(kept=batch)
        if field not in batch.column_names:
            raise KeyError(
                f"rehydrate: the documents have no field {field!r} (fields: "
                f"{', '.join(c for c in batch.column_names if not c.startswith('__'))}); "
                "minhash_dedup writes dup_cluster_size into the documents it keeps"
            )
        values = np.asarray(pc.cast(batch.column(field), pa.float64()).to_numpy(zero_copy_only=False))
        copies = np.ones(len(batch), np.int64)
        for text, count in self.params.repeats.items():
            low, high = parse_range(text)
            copies[(values >= low) & (values <= high)] = count  # NaN (missing) matches no range
        decisions = [
            Rejection(ZERO, statistic=field, value=float(v), detail=f"{field}={v:g}: 0 copies") if c == 0 else None
            for v, c in zip(values.tolist(), copies.tolist())
        ]
        result = split_by_decisions(batch, decisions, self.name)
        repeats = {i: int(c) for i, c in enumerate(copies.tolist()) if c > 1}
        if repeats:
            result.kept = repeat_rows(batch, decisions, repeats, result.kept)
        result.added = int(copies[copies > 1].sum() - (copies > 1).sum())
        return result
