"""The base of every deduplicator: a barrier that drops documents duplicating others across
the whole dataset, with a keep policy and, with ``scope: history``, the signatures of what
earlier versions published."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from recipeflow.operators.base import BarrierOperator, Kind
from recipeflow.operators.dedup.keep import KeepParams


class Deduplicator(BarrierOperator):
    """Drops documents that duplicate others across the whole dataset."""

    kind = Kind.deduplicator

    def keep_params(self) -> KeepParams | None:
        """The keep policy (:mod:`.keep`); None keeps the first document in input order."""
        return None

    @property
    def with_priority(self) -> bool:
        """Whether signatures carry a keep priority (every policy but `first`)."""
        keep = self.keep_params()
        return keep is not None and keep.needs_priority

    def history_signature_params(self) -> dict[str, Any] | None:
        """With ``scope: history``, the parameters this operator's signatures depend on: the
        engine finds the signatures stored with earlier versions by them and passes them to
        :meth:`resolve` / :meth:`resolve_partition` as leading shards (after
        :meth:`as_history`). ``None``: only this run's documents are compared."""
        return None

    def history_input_fields(self) -> tuple[str, ...]:
        """Fields its signatures are made from that an earlier step writes (``embed``'s
        vectors): the engine puts those steps' provenance (model sha256) in the history key,
        so signatures made by another model are never compared."""
        return ()

    def as_history(self, signatures: pa.Table) -> pa.Table:
        """Stored signatures of published documents, made ready to lead this run's shards so
        that they win every group (see :mod:`.history`)."""
        return signatures
