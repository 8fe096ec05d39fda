"""What a task reads and what it leaves: shard inputs (a raw source shard or an upstream
stage's output), stage outputs (references to files), and reading a shard as Arrow batches,
marked with their origin and restricted to the reading node's route."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from recipeflow.engine.planner import stable_hash
from recipeflow.io import readers
from recipeflow.io import writers
from recipeflow.operators import document as doc
from recipeflow.operators.chain import StepCounts
from recipeflow.recipe.models import RouteSpec

BATCH_SIZE = 1000
# Bump when the reading of raw inputs changes: part of every source shard's address.
READER_VERSION = "1"


@dataclass(frozen=True)
class ShardInput:
    """What one stage task reads: a raw source shard, or an upstream stage's Parquet output."""

    key: str  # stable name, orders shards and names tasks
    fingerprint: str  # content address of the documents it holds
    source: readers.SourceShard | None = None
    parquet: str | None = None
    origin: str | None = None  # the `from` entry it was read through (see document.ORIGIN)
    route: RouteSpec | None = None  # the reading node takes only documents it routes
    rows: int | None = None  # documents in ``parquet`` (a source shard counts its records)

    @property
    def documents(self) -> int:
        """How many documents (source records) the shard holds, for progress."""
        if self.source is not None:
            return sum(s.stop - s.start for s in self.source.slices)
        return self.rows or 0

    def address_part(self) -> str:
        """What of this input decides a task's output: its documents, origin and route."""
        route = self.route.model_dump_json() if self.route is not None else None
        return f"{self.fingerprint}|{self.origin}|{route}"


@dataclass(frozen=True)
class StageOutput:
    """A stage's result for one shard: references to files, never the data itself."""

    key: str
    address: str
    kept: str
    kept_rows: int
    rejected: str | None = None
    rejected_rows: int = 0
    unreadable: str | None = None
    unreadable_rows: int = 0
    counts: list[dict[str, Any]] = field(default_factory=list)
    # step -> what a reporting operator found in this shard (operator_hooks.Reports)
    reports: dict[str, Any] = field(default_factory=dict)

    def stored(self) -> dict[str, Any]:
        """This result as a result file holds it (JSON): its fields as they are. Not
        ``dataclasses.asdict``, which deep-copies every count (a tenth of a millisecond a shard)."""
        return dict(vars(self))

    def cache_entries(self) -> set[str]:
        """The cache entries holding this shard's documents: ``packs/<address>`` when packed
        with other shards' (:mod:`recipeflow.engine.packs`), else its own ``stages/<address>``."""
        return {"/".join(writers.split_part(url)[0].split("/")[-3:-1])
                for url in (self.kept, self.rejected, self.unreadable) if url}

    def as_input(self) -> ShardInput:
        return ShardInput(key=self.key, fingerprint=f"{self.address}:kept", parquet=self.kept, rows=self.kept_rows)

    def rejected_input(self) -> ShardInput | None:
        if not self.rejected:
            return None
        return ShardInput(
            key=f"{self.key}.rejected", fingerprint=f"{self.address}:rejected", parquet=self.rejected,
            rows=self.rejected_rows,
        )


def source_input(shard: readers.SourceShard, scans: dict[str, readers.FileScan]) -> ShardInput:
    """A raw shard, addressed by the content of its files and how they are read."""
    fingerprint = stable_hash(
        {
            "reader": READER_VERSION,
            "shard": _as_dict(shard),
            "sha256": [scans[s.url].sha256 for s in shard.slices],
        }
    )
    return ShardInput(key=shard.key, fingerprint=fingerprint, source=shard)


def _as_dict(shard: readers.SourceShard) -> dict[str, Any]:
    """``dataclasses.asdict(shard)`` without its deep copies (a run of 5,000 shards makes
    5,000 of these on the flow's critical path); the same value, so addresses are unchanged."""
    out = dict(vars(shard))
    out["slices"] = tuple(dict(vars(s)) for s in shard.slices)
    return out


def iter_batches(
    inp: ShardInput, batch_size: int = BATCH_SIZE, routed: StepCounts | None = None
) -> Iterator[tuple[pa.Table, pa.Table | None]]:
    """(documents, unreadable records) per batch, in order, marked with their origin and
    restricted to the node's route (``routed`` counts documents before and after it)."""
    for batch, bad in _read_batches(inp, batch_size):
        if inp.origin is not None:
            batch = doc.set_column(batch, doc.ORIGIN, pa.array([inp.origin] * len(batch), pa.string()))
        if inp.route is not None:
            if routed is not None:
                routed.count_in(batch)
            batch = route_batch(batch, inp.route)
            if routed is not None:
                routed.count_out(batch)
        yield batch, bad


def route_batch(batch: pa.Table, route: RouteSpec) -> pa.Table:
    """The rows whose ``route.field`` is in ``route.values`` (or not in ``route.exclude``)."""
    if len(batch) == 0:
        return batch
    if route.field not in batch.column_names:
        raise KeyError(
            f"route field {route.field!r} is not a field of the documents (fields: "
            f"{', '.join(c for c in batch.column_names if not c.startswith('__'))}); "
            f"add an operator that writes it (e.g. language_id for `lang`, script_id for `script`)"
        )
    column = batch.column(route.field)
    wanted = route.values if route.values is not None else route.exclude
    value_set = pa.array([v for v in wanted if v is not None], type=column.type)
    member = pc.fill_null(pc.is_in(column, value_set=value_set), False)
    if None in wanted:
        member = pc.or_(member, pc.is_null(column))
    return batch.filter(member if route.values is not None else pc.invert(member))


def _read_batches(inp: ShardInput, batch_size: int) -> Iterator[tuple[pa.Table, pa.Table | None]]:
    if inp.source is not None:
        yield from readers.read_shard(inp.source, batch_size=batch_size)
        return
    assert inp.parquet is not None
    table = writers.read_table(inp.parquet)
    # A rejected stream read by another node carries on as plain documents.
    table = table.drop_columns([c for c in doc.REJECTION_COLUMNS if c in table.column_names])
    for offset in range(0, len(table), batch_size):
        yield table.slice(offset, batch_size), None
