"""``sample``: a deterministic random sample of documents, without replacement.

Also the seeded document order that ``mix`` selects by.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import xxhash
from pydantic import Field, model_validator

from recipeflow.operators import document as doc
from recipeflow.operators.base import BarrierDecision, OperatorParams, Selector
from recipeflow.operators.drops import Drops
from recipeflow.operators.registry import register
from recipeflow.operators.top_k import concat_column, shard_decisions, share_of

ORDER = "order"
MAX_SEED = 2**64 - 1


def seeded_order(ids: list[str], seed: int) -> pa.Array:
    """A pseudo-random rank per document: xxh3-64 of its id under ``seed``. The same (seed, id)
    always gets the same rank, whatever the shard, worker or Python version."""
    return pa.array([xxhash.xxh3_64_intdigest(i.encode("utf-8"), seed=seed) for i in ids], pa.uint64())


def by_seeded_order(ranks: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """``rows`` (default: all) sorted by their seeded rank; equal ranks (the same id twice) in
    input order."""
    rows = np.arange(len(ranks)) if rows is None else rows
    return rows[np.argsort(ranks[rows], kind="stable")]


class SampleParams(OperatorParams):
    fraction: float | None = Field(None, gt=0, le=1, description="Fraction of documents to keep.")
    count: int | None = Field(None, ge=0, description="Number of documents to keep (all, if fewer).")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Another seed gives another sample.")

    @model_validator(mode="after")
    def _exactly_one(self):
        if (self.fraction is None) == (self.count is None):
            raise ValueError("give exactly one of fraction and count")
        return self


@register
class Sample(Selector):
    """Keep a deterministic random sample of documents (a fraction or a count), without replacement.

    Each document's rank is a hash of (seed, id) — not Python's ``random`` — and the documents
    with the lowest ranks are kept: the same seed and ids give the same sample on any machine,
    shard layout or executor, and a larger sample contains a smaller one with the same seed.
    ``fraction`` keeps round_half_up(fraction × documents); ``count`` keeps that many (all, if
    there are fewer). Others are dropped with ``not_sampled``.
    """

    name = "sample"
    version = "1"
    Params = SampleParams

    last_summary: dict[str, Any] | None = None

    def signatures(self, batch: pa.Table) -> pa.Table:
        return pa.table({ORDER: seeded_order(batch.column(doc.ID).to_pylist(), self.params.seed)})

    def resolve(self, signatures: list[pa.Table]) -> list[BarrierDecision]:
        p = self.params
        ranks = concat_column(signatures, ORDER, np.uint64)
        wanted = share_of(p.fraction, len(ranks)) if p.fraction is not None else p.count
        ordered = by_seeded_order(ranks)
        detail = f"seed={p.seed}, kept {min(wanted, len(ranks))} of {len(ranks)}"
        drops = Drops()
        drops.add(ordered[wanted:], "not_sampled", detail=detail)
        self.last_summary = {
            "documents": int(len(ranks)),
            "wanted": int(wanted),
            "selected": int(min(wanted, len(ranks))),
            "seed": p.seed,
        }
        return shard_decisions([len(s) for s in signatures], drops)
