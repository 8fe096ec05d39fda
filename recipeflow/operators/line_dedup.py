"""``line_dedup``: remove lines or paragraphs repeated across the dataset (boilerplate)."""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import Field

from recipeflow.operators import document as doc
from recipeflow.operators.dedup.keep import shard_offsets, to_shard_rows
from recipeflow.operators.base import BarrierDecision, OperatorParams, Rejection, StepResult, split_by_decisions
from recipeflow.operators.dedup.deduplicator import Deduplicator
from recipeflow.operators.registry import register

_UNITS = "units"
# The per-document list of unit hashes to remove, carried from merge to apply (never written).
_REMOVE = "__line_dedup_remove"
_POSITION, _UNIT = "position", "unit"
# Paragraphs are separated by a line break, one or more blank lines, and the next line break.
_PARAGRAPH_BREAK = re.compile(r"(\n[^\S\n]*\n\s*)")


class LineDedupParams(OperatorParams):
    unit: Literal["line", "paragraph"] = Field(
        "line", description="What is counted and removed: lines, or paragraphs (separated by blank lines)."
    )
    min_count: int = Field(
        2,
        ge=2,
        description="Remove a unit when this many documents (or more) contain it; each document "
        "counts once, however often it repeats the unit.",
    )
    min_length: int = Field(
        0,
        ge=0,
        description="Only units of at least this many characters (surrounding whitespace "
        "excluded) are counted and removed; shorter ones always stay.",
    )
    partitions: int = Field(
        1,
        ge=1,
        description="Split the counting into this many tasks by unit hash; the result does not "
        "depend on it.",
    )


def split_units(text: str, unit: str) -> list[str]:
    """Lines, or paragraphs interleaved with the separators between them (odd indices)."""
    return text.split("\n") if unit == "line" else _PARAGRAPH_BREAK.split(text)


def unit_hash(unit: str) -> int:
    """A unit's identity: the 64-bit xxh3 of its text without surrounding whitespace, signed
    (Arrow and Parquet store int64 more plainly than uint64)."""
    value = xxhash.xxh3_64_intdigest(unit.strip().encode("utf-8"))
    return value - (1 << 64) if value >= 1 << 63 else value


@register
class LineDedup(Deduplicator):
    """Remove lines (or paragraphs) that occur in at least ``min_count`` documents.

    C4/Dolma-style boilerplate removal: navigation, cookie notices, footers and other text
    repeated across pages disappears from every document that holds it. Units are compared
    without their surrounding whitespace; blank units and units shorter than ``min_length``
    characters are never removed. A document left with no text is rejected (reason
    ``empty_after_line_dedup``, statistic ``removed_units``). A barrier: shards hash their
    units, ``partitions`` tasks count them by hash, each shard then rewrites its texts.
    """

    name = "line_dedup"
    version = "1"
    Params = LineDedupParams

    # -- phase 1: distinct unit hashes per document --------------------------------------------

    def counted_units(self, text: str) -> set[int]:
        pieces = split_units(text, self.params.unit)
        if self.params.unit == "paragraph":
            pieces = pieces[::2]  # odd pieces are separators
        min_length = max(self.params.min_length, 1)
        return {unit_hash(piece) for piece in pieces if len(piece.strip()) >= min_length}

    def signatures(self, batch: pa.Table) -> pa.Table:
        per_document = [sorted(self.counted_units(t)) for t in batch.column(doc.TEXT).to_pylist()]
        offsets = np.zeros(len(per_document) + 1, dtype=np.int32)
        offsets[1:] = np.cumsum([len(u) for u in per_document])
        values = np.fromiter((h for units in per_document for h in units), dtype=np.int64, count=int(offsets[-1]))
        units = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, pa.int64()))
        return pa.table({_UNITS: units})

    # -- phase 2: count per hash, in partitions -------------------------------------------------

    def partitions(self) -> int:
        return self.params.partitions

    def partition_columns(self, partition: int, partitions: int) -> list[str] | None:
        return [_UNITS]

    def resolve_partition(self, signatures: list[pa.Table], partition: int, partitions: int) -> pa.Table:
        """Every (document, unit) of this partition's frequent units, by global position."""
        positions, units = self._owned_units(signatures, partition, partitions)
        if len(units) == 0:
            return _occurrences(np.zeros(0, np.int64), np.zeros(0, np.int64))
        distinct, counts = np.unique(units, return_counts=True)
        frequent = distinct[counts >= self.params.min_count]
        hit = np.isin(units, frequent)
        return _occurrences(positions[hit], units[hit])

    @staticmethod
    def _owned_units(signatures: list[pa.Table], partition: int, partitions: int) -> tuple[np.ndarray, np.ndarray]:
        """(global position of the document, unit hash) of the units this partition owns."""
        positions, units = [], []
        start = 0
        for table in signatures:
            for chunk in table.column(_UNITS).chunks:
                values = pc.list_flatten(chunk).to_numpy()
                parents = pc.list_parent_indices(chunk).to_numpy() + start
                owned = values.view(np.uint64) % np.uint64(partitions) == partition
                positions.append(parents[owned])
                units.append(values[owned])
                start += len(chunk)
        if not units:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(positions).astype(np.int64), np.concatenate(units)

    def resolve(self, signatures: list[pa.Table]) -> list[BarrierDecision]:
        return self.merge([self.resolve_partition(signatures, 0, 1)], [len(s) for s in signatures])

    def merge(self, partials: list[pa.Table], shard_sizes: list[int]) -> list[BarrierDecision]:
        """Per shard, per document, the unit hashes to remove (None: nothing to remove)."""
        removals: list[list[list[int] | None]] = [[None] * size for size in shard_sizes]
        offsets = shard_offsets(shard_sizes)
        for partial in partials:
            shards, rows = to_shard_rows(partial.column(_POSITION).to_numpy(), offsets)
            for shard, row, unit in zip(shards.tolist(), rows.tolist(), partial.column(_UNIT).to_pylist()):
                current = removals[shard][row]
                if current is None:
                    removals[shard][row] = [unit]
                else:
                    current.append(unit)
        for shard in removals:  # a canonical order, whatever the partitions
            for units in shard:
                if units is not None:
                    units.sort()
        self.last_summary = {
            "repeated_units": int(sum(len(np.unique(p.column(_UNIT).to_numpy())) for p in partials)),
            "documents_with_repeated_units": int(sum(u is not None for shard in removals for u in shard)),
        }
        return [BarrierDecision(drop={}, fields={_REMOVE: shard}) for shard in removals]

    # -- phase 3: rewrite texts -----------------------------------------------------------------

    def rewrite(self, text: str, remove: set[int]) -> tuple[str, int]:
        """The text without the units to remove, and how many were removed."""
        pieces = split_units(text, self.params.unit)
        min_length = max(self.params.min_length, 1)

        def removed(piece: str) -> bool:
            return len(piece.strip()) >= min_length and unit_hash(piece) in remove

        if self.params.unit == "line":
            kept = [line for line in pieces if not removed(line)]
            return "\n".join(kept), len(pieces) - len(kept)
        out: list[str] = []
        count = 0
        for index in range(0, len(pieces), 2):
            if removed(pieces[index]):
                count += 1
            else:  # the separator that preceded it, unless it now comes first
                out.append((pieces[index - 1] if index and out else "") + pieces[index])
        return "".join(out), count

    def apply(self, batch: pa.Table, decision: BarrierDecision) -> StepResult:
        removals = (decision.fields or {}).get(_REMOVE) or [None] * len(batch)
        texts = batch.column(doc.TEXT).to_pylist()
        new_texts: list[str] = []
        decisions: list[Rejection | None] = []
        for text, remove in zip(texts, removals):
            if not remove:
                new_texts.append(text)
                decisions.append(None)
                continue
            rewritten, count = self.rewrite(text, set(remove))
            if rewritten.strip():
                new_texts.append(rewritten)
                decisions.append(None)
            else:  # rejected with its original text, so the rejected output shows what it was
                new_texts.append(text)
                decisions.append(Rejection("empty_after_line_dedup", "removed_units", float(count)))
        rewritten_batch = doc.set_column(batch, doc.TEXT, pa.array(new_texts, pa.string()))
        return split_by_decisions(rewritten_batch, decisions, self.name)


def _occurrences(positions: np.ndarray, units: np.ndarray) -> pa.Table:
    return pa.table({_POSITION: pa.array(positions, pa.int64()), _UNIT: pa.array(units, pa.int64())})
