"""Deduplicating against a dataset's earlier versions (``scope: history``).

A deduplicator with ``scope: history`` compares the documents of a run with every document
the dataset has already published. The engine stores, with each committed version, the
signatures (hashes, band keys) of the documents that version published, and hands them back
to the next run as leading shards ahead of the new ones. This module holds what the operators
need for that: the ``scope`` parameter and how stored signatures become history shards.

History documents come first in input order and are given the highest keep priority, so a
published document always wins its group: the new duplicates are dropped, never the
published ones (the engine discards the decisions of history shards).
"""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa
from pydantic import Field

from recipeflow.operators import document as doc
from recipeflow.operators.dedup.keep import PRIORITY
from recipeflow.operators.base import OperatorParams

# Parameters that change which document survives, or how the work is split, but not a
# document's signature: signatures stored under other values of these still serve as history.
SIGNATURE_NEUTRAL_PARAMS = frozenset({"scope", "mode", "partitions", "keep", "score_field"})


class ScopeParams(OperatorParams):
    """The ``scope`` of a deduplicator."""

    scope: Literal["run", "history"] = Field(
        "run",
        description="`run`: duplicates within this run's documents. `history`: also against "
        "every document the output dataset's earlier versions published (their signatures "
        "are stored with each version), so a refresh publishes only documents new to the "
        "corpus. Published documents always win their group.",
    )


class HistoryScope:
    """The history hooks of :class:`~recipeflow.operators.dedup.deduplicator.Deduplicator` for a
    deduplicator whose parameters include :class:`ScopeParams`."""

    params: OperatorParams
    with_priority: bool  # from Deduplicator

    def history_signature_params(self) -> dict[str, Any] | None:
        if getattr(self.params, "scope", "run") != "history":
            return None
        dumped = self.params.model_dump(mode="json")
        return {k: v for k, v in dumped.items() if k not in SIGNATURE_NEUTRAL_PARAMS}

    def as_history(self, signatures: pa.Table) -> pa.Table:
        return as_history(signatures, self.with_priority)


def as_history(signatures: pa.Table, with_priority: bool) -> pa.Table:
    """Stored signatures made ready to lead a run's shards: the highest priority when the
    keep policy uses one (a published document always wins), no priority column otherwise."""
    if PRIORITY in signatures.column_names:
        signatures = signatures.drop_columns([PRIORITY])
    if with_priority:
        signatures = doc.set_column(signatures, PRIORITY, pa.array([float("inf")] * len(signatures), pa.float64()))
    return signatures
