"""``exact_dedup``: drop documents whose text is identical to an earlier one."""

from __future__ import annotations

import pyarrow as pa
import xxhash
from pydantic import Field

from recipeflow.operators import document as doc
from recipeflow.operators.base import (
    BarrierDecision,
    Deduplicator,
    OperatorParams,
    Rejection,
)
from recipeflow.operators.registry import register

_HASH = "hash"


class ExactDedupParams(OperatorParams):
    partitions: int = Field(
        1,
        ge=1,
        description="Split the global step into this many tasks by hash range (for large "
        "corpora); the result does not depend on it.",
    )


@register
class ExactDedup(Deduplicator):
    """Remove documents with identical text, keeping the first in input order.

    A barrier: each shard hashes its texts (128-bit xxh3), the first occurrence of every hash
    is found across all shards in input order (in one task, or in ``partitions`` tasks that
    each own a range of hashes), then each shard drops its later copies (reason
    ``exact_duplicate``, detail names the kept document's id).
    """

    name = "exact_dedup"
    version = "1"
    Params = ExactDedupParams

    def signatures(self, batch: pa.Table) -> pa.Table:
        texts = batch.column(doc.TEXT).to_pylist()
        hashes = [xxhash.xxh3_128_digest(t.encode("utf-8")) for t in texts]
        return pa.table({_HASH: pa.array(hashes, type=pa.binary(16)), doc.ID: batch.column(doc.ID)})

    def resolve(self, signatures: list[pa.Table]) -> list[BarrierDecision]:
        return self.merge([self.resolve_partition(signatures, 0, 1)], [len(s) for s in signatures])

    def partitions(self) -> int:
        return self.params.partitions

    def resolve_partition(
        self, signatures: list[pa.Table], partition: int, partitions: int
    ) -> pa.Table:
        """The later copies among the hashes this partition owns: (shard, row, kept id)."""
        first_id: dict[bytes, str] = {}
        shards, rows, kept_ids = [], [], []
        for shard, table in enumerate(signatures):
            hashes = table.column(_HASH).to_pylist()
            ids = table.column(doc.ID).to_pylist()
            for row, (digest, doc_id) in enumerate(zip(hashes, ids)):
                if digest[0] % partitions != partition:
                    continue
                kept_id = first_id.get(digest)
                if kept_id is None:
                    first_id[digest] = doc_id
                else:
                    shards.append(shard)
                    rows.append(row)
                    kept_ids.append(kept_id)
        return pa.table(
            {
                "shard": pa.array(shards, pa.int64()),
                "row": pa.array(rows, pa.int64()),
                "kept_id": pa.array(kept_ids, pa.string()),
            }
        )

    def merge(self, partials: list[pa.Table], shard_sizes: list[int]) -> list[BarrierDecision]:
        decisions = [BarrierDecision(drop={}) for _ in shard_sizes]
        for partial in partials:
            for shard, row, kept_id in zip(
                partial.column("shard").to_pylist(),
                partial.column("row").to_pylist(),
                partial.column("kept_id").to_pylist(),
            ):
                decisions[shard].drop[row] = Rejection(
                    "exact_duplicate", detail=f"duplicate_of={kept_id}"
                )
        return decisions
