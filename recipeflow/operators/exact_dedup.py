"""``exact_dedup``: drop documents whose text is identical to an earlier one."""

from __future__ import annotations

import pyarrow as pa
import xxhash

from recipeflow.operators import document as doc
from recipeflow.operators.base import (
    BarrierDecision,
    Deduplicator,
    OperatorParams,
    Rejection,
)
from recipeflow.operators.registry import register


class ExactDedupParams(OperatorParams):
    pass


@register
class ExactDedup(Deduplicator):
    """Remove documents with identical text, keeping the first in input order.

    A barrier: each shard hashes its texts (128-bit xxh3), one step finds the first occurrence
    of every hash across all shards in input order, then each shard drops its later copies
    (reason ``exact_duplicate``, detail names the kept document's id).
    """

    name = "exact_dedup"
    version = "1"
    Params = ExactDedupParams

    def signatures(self, batch: pa.Table) -> pa.Table:
        hashes = [xxhash.xxh3_128_digest(t.encode("utf-8")) for t in batch.column(doc.TEXT).to_pylist()]
        return pa.table(
            {
                "hash": pa.array(hashes, type=pa.binary(16)),
                doc.ID: batch.column(doc.ID),
            }
        )

    def resolve(self, signatures: list[pa.Table]) -> list[BarrierDecision]:
        first_id: dict[bytes, str] = {}
        decisions = []
        for shard in signatures:
            drop: dict[int, Rejection] = {}
            for row, (digest, doc_id) in enumerate(
                zip(shard.column("hash").to_pylist(), shard.column(doc.ID).to_pylist())
            ):
                kept_id = first_id.get(digest)
                if kept_id is None:
                    first_id[digest] = doc_id
                else:
                    drop[row] = Rejection("exact_duplicate", detail=f"duplicate_of={kept_id}")
            decisions.append(BarrierDecision(drop=drop))
        return decisions
