"""Run a fused chain of streamable operators over batches, counting what each one did."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from recipeflow.operators import document as doc
from recipeflow.operators.base import StreamOperator


# The column `tokenize` writes; once documents carry it, every count also counts tokens.
N_TOKENS = "n_tokens"


# Rejected batches this small are counted in Python (a few microseconds; Arrow's value_counts
# costs ~15 us a call, paid per small shard).
_COUNT_IN_PYTHON = 64


@dataclass
class StepCounts:
    """Documents (and, once they carry ``n_tokens``, tokens) in and out of one step, and how
    many documents each rejection reason removed (summed over batches and shards)."""

    step: str
    operator: str
    docs_in: int = 0
    docs_out: int = 0
    docs_added: int = 0  # new documents a generator wrote beside its input's
    reasons: dict[str, int] = field(default_factory=dict)  # rejection reason -> documents
    tokens_in: int | None = None  # None: the documents had no n_tokens here
    tokens_out: int | None = None
    overwrote: list[str] = field(default_factory=list)  # input fields it wrote over

    @property
    def rejected(self) -> int:
        return self.docs_in + self.docs_added - self.docs_out

    def as_dict(self) -> dict[str, Any]:
        """What ``dataclasses.asdict`` gives, without its deep copy of every field (thousands of
        small shards' counts are made per task)."""
        out = dict(vars(self))
        out["reasons"] = dict(self.reasons)
        out["overwrote"] = list(self.overwrote)
        return out

    def count_in(self, batch: pa.Table) -> None:
        self.docs_in += len(batch)
        self.tokens_in = _add_tokens(self.tokens_in, batch)

    def count_out(self, batch: pa.Table) -> None:
        self.docs_out += len(batch)
        self.tokens_out = _add_tokens(self.tokens_out, batch)

    def count_reasons(self, rejected: pa.Table | None, default: str = "rejected") -> None:
        """Add the rejected documents of ``rejected`` under their ``reject_reason``."""
        if rejected is None or len(rejected) == 0:
            return
        if doc.REJECT_REASON in rejected.column_names:
            column = rejected.column(doc.REJECT_REASON)
            if len(column) <= _COUNT_IN_PYTHON:
                found = Counter(default if r is None else r for r in column.to_pylist()).items()
            else:
                found = [(item["values"], item["counts"]) for item in
                         pc.value_counts(pc.fill_null(column, default)).to_pylist()]
            for reason, n in found:
                self.reasons[reason] = self.reasons.get(reason, 0) + n
        else:
            self.reasons[default] = self.reasons.get(default, 0) + len(rejected)


def batch_tokens(batch: pa.Table) -> int | None:
    """The sum of ``n_tokens`` over ``batch``, or None when its documents have none."""
    if batch.schema.get_field_index(N_TOKENS) < 0:  # not column_names: a list built per call
        return None
    return int(pc.sum(batch.column(N_TOKENS)).as_py() or 0)


def _add_tokens(total: int | None, batch: pa.Table) -> int | None:
    tokens = batch_tokens(batch)
    if tokens is None:
        return total
    return (total or 0) + tokens


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
        count.count_in(batch)
        for name in op.written_fields():
            if name in batch.column_names and name not in count.overwrote:
                count.overwrote.append(name)
        if len(batch):
            result = op.process(batch)
            batch = result.kept
            count.docs_added += result.added
            count.count_reasons(result.rejected)
            if result.rejected is not None and len(result.rejected):
                rejected.append(
                    doc.set_column(
                        result.rejected,
                        doc.REJECTED_AT,
                        pa.array([step] * len(result.rejected), type=pa.string()),
                    )
                )
        count.count_out(batch)
    return ChainResult(kept=batch, rejected=rejected)
