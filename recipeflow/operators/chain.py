"""Run a fused chain of streamable operators over batches, counting what each one did."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import pyarrow as pa

from recipeflow.operators import document as doc
from recipeflow.operators.base import StreamOperator


@dataclass
class StepCounts:
    """Documents in and out of one step (summed over batches and shards)."""

    step: str
    operator: str
    docs_in: int = 0
    docs_out: int = 0
    docs_added: int = 0  # new documents a generator wrote beside its input's
    overwrote: list[str] = field(default_factory=list)  # input fields it wrote over

    @property
    def rejected(self) -> int:
        return self.docs_in + self.docs_added - self.docs_out


@dataclass
class ChainResult:
    kept: pa.Table
    rejected: list[pa.Table] = field(default_factory=list)


def run_chain(
    steps: Sequence[tuple[str, StreamOperator]], batch: pa.Table, counts: Sequence[StepCounts]
) -> ChainResult:
    """Pass ``batch`` through each (step id, operator) in order; ``counts`` are updated in place.

    A step sees only what the previous steps kept, as in Data-Juicer and DataTrove.
    """
    rejected: list[pa.Table] = []
    for (step, op), count in zip(steps, counts):
        count.docs_in += len(batch)
        for name in op.written_fields():
            if name in batch.column_names and name not in count.overwrote:
                count.overwrote.append(name)
        if len(batch):
            result = op.process(batch)
            batch = result.kept
            count.docs_added += result.added
            if result.rejected is not None and len(result.rejected):
                rejected.append(
                    doc.set_column(
                        result.rejected,
                        doc.REJECTED_AT,
                        pa.array([step] * len(result.rejected), type=pa.string()),
                    )
                )
        count.docs_out += len(batch)
    return ChainResult(kept=batch, rejected=rejected)
