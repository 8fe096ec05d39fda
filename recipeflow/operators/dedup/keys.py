"""Deduplication by an exact key (a text's or a URL's 128-bit hash) as a partitioned barrier.

1. **signatures** (per shard): per document its id, its key (16 bytes of xxh3-128; null when
   the document has nothing to compare, e.g. no URL) and, for keep policies other than
   `first`, a priority;
2. **groups** (``partitions`` tasks): partition ``p`` owns the keys whose first byte is
   ``p`` modulo ``partitions``; in each group of equal keys one document wins (highest
   priority, then input order) and the others are listed as duplicates of it;
3. **merge**: the lists become per-shard drops (reason and ``duplicate_of=<kept id>``).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pyarrow as pa

from recipeflow.operators import document as doc
from recipeflow.operators.dedup.keep import (
    PRIORITY,
    duplicate_of,
    first_per_group,
    priorities,
)
from recipeflow.operators.base import BarrierDecision, SignatureSource
from recipeflow.operators.drops import Drops
from recipeflow.operators.dedup.deduplicator import Deduplicator

KEY = "key"
KEY_BYTES = 16
_POSITION, _KEPT, _KEPT_ID = "position", "kept_position", "kept_id"


def key_matrix(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(keys as a documents x 16 uint8 matrix, validity) of a fixed-size-binary column."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if len(array) == 0:
        return np.zeros((0, KEY_BYTES), np.uint8), valid
    data = np.frombuffer(array.buffers()[1], dtype=np.uint8)
    start = array.offset * KEY_BYTES
    return data[start : start + len(array) * KEY_BYTES].reshape(len(array), KEY_BYTES), valid


def group_labels(keys: np.ndarray) -> np.ndarray:
    """An integer label per row of a keys matrix: equal keys, equal labels."""
    halves = np.ascontiguousarray(keys).view(np.uint64).reshape(len(keys), 2)
    order = np.lexsort((halves[:, 1], halves[:, 0]))
    ordered = halves[order]
    new_group = np.ones(len(order), dtype=bool)
    new_group[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    labels = np.empty(len(order), dtype=np.int64)
    labels[order] = np.cumsum(new_group) - 1
    return labels


def duplicates_in_partition(
    signatures: list[pa.Table], partition: int, partitions: int, with_priority: bool,
    ids_at: Callable[[np.ndarray], pa.Array] | None = None,
) -> pa.Table:
    """The documents of this partition's keys that lose to an equal-keyed one:
    (global position, kept document's position, kept document's id). The ids come from the
    signatures, or from ``ids_at`` (positions -> ids) when they were not read."""
    tables = [t for t in signatures if t.num_rows]
    if not tables:
        return _duplicates_table(np.zeros(0, np.int64), np.zeros(0, np.int64), [])
    table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    keys, valid = key_matrix(table.column(KEY))
    owned = np.flatnonzero(valid & (keys[:, 0] % partitions == partition))
    labels = group_labels(keys[owned])
    priority = table.column(PRIORITY).to_numpy()[owned] if with_priority else None
    winners = first_per_group(labels, owned.astype(np.int64), priority)
    losers = winners != owned
    positions, kept = owned[losers].astype(np.int64), winners[losers]
    ids = ids_at(kept) if ids_at is not None else table.column(doc.ID).take(pa.array(kept, pa.int64()))
    return _duplicates_table(positions, kept, ids.to_pylist())


def _duplicates_table(positions: np.ndarray, kept: np.ndarray, kept_ids: list[Any]) -> pa.Table:
    return pa.table(
        {
            _POSITION: pa.array(positions, pa.int64()),
            _KEPT: pa.array(kept, pa.int64()),
            _KEPT_ID: pa.array(kept_ids, pa.string()),
        }
    )


def decisions_from_duplicates(
    partials: list[pa.Table], shard_sizes: list[int], reason: str
) -> list[BarrierDecision]:
    """One decision per shard: drop every listed duplicate."""
    drops = Drops()
    for partial in partials:
        drops.add(partial.column(_POSITION).to_numpy(), reason, detail=duplicate_of(partial.column(_KEPT_ID).combine_chunks()))
    return [BarrierDecision(drop=part) for part in drops.split(shard_sizes)]


class KeyDeduplicator(Deduplicator):
    """A deduplicator whose duplicates share a key; subclasses say what the key is."""

    reason: str = "duplicate"

    def keys(self, batch: pa.Table) -> list[bytes | None]:
        """One 16-byte key per document; None: the document is never a duplicate."""
        raise NotImplementedError

    def signatures(self, batch: pa.Table) -> pa.Table:
        columns: dict[str, Any] = {
            KEY: pa.array(self.keys(batch), type=pa.binary(KEY_BYTES)),
            doc.ID: batch.column(doc.ID),
        }
        keep = self.keep_params()
        if keep is not None and keep.needs_priority:
            columns[PRIORITY] = priorities(batch, keep, self.name)
        return pa.table(columns)

    def partitions(self) -> int:
        return int(getattr(self.params, "partitions", 1))

    def partition_columns(self, partition: int, partitions: int) -> list[str] | None:
        return [KEY, doc.ID] + ([PRIORITY] if self.with_priority else [])

    def resolve_partition(self, signatures: list[pa.Table], partition: int, partitions: int) -> pa.Table:
        return duplicates_in_partition(signatures, partition, partitions, self.with_priority)

    def resolve_partition_from(self, source: SignatureSource, partition: int, partitions: int) -> pa.Table:
        # Keys (16 bytes a document) first; the ids (longer) only of the documents that win.
        keys = source.read([KEY] + ([PRIORITY] if self.with_priority else []))
        return duplicates_in_partition(keys, partition, partitions, self.with_priority,
                                       lambda rows: source.take(doc.ID, rows))

    def resolve(self, signatures: list[pa.Table]) -> list[BarrierDecision]:
        partial = self.resolve_partition(signatures, 0, 1)
        return self.merge([partial], [len(s) for s in signatures])

    def resolve_from(self, source: SignatureSource) -> list[BarrierDecision]:
        return self.merge([self.resolve_partition_from(source, 0, 1)], source.shard_sizes())

    def merge(self, partials: list[pa.Table], shard_sizes: list[int]) -> list[BarrierDecision]:
        self.last_summary = {"duplicates": int(sum(p.num_rows for p in partials))}
        return decisions_from_duplicates(partials, shard_sizes, self.reason)
