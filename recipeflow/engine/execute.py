"""The work of one task, in plain Python: run a stage on a shard, compute a barrier's
signatures, resolve a barrier. The Prefect flow (:mod:`recipeflow.orchestration.flow`) only
schedules these, each under the cache entry it computed once (:mod:`.cache_address`).

Every result is written under a content address in the work folder, with ``result.json``
written last; a task whose result exists returns it without doing the work again, so a
re-run or a killed run resumes from finished shards.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import itertools
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import pyarrow as pa

from recipeflow.io import storage
from recipeflow.io import writers
from recipeflow.engine import operator_hooks
from recipeflow.engine.cache_address import RESULT, CacheEntry
from recipeflow.engine.planner import OpRef, Stage
from recipeflow.engine.shard_input import ShardInput, StageOutput, iter_batches
from recipeflow.engine.stored_results import StoredResults
from recipeflow.operators import document as doc
from recipeflow.operators.base import BarrierDecision, BarrierOperator
from recipeflow.operators.drops import Drops
from recipeflow.operators.dedup.deduplicator import Deduplicator
from recipeflow.operators.dedup.keep import shard_offsets, to_shard_rows
from recipeflow.operators.chain import StepCounts, batch_tokens, run_chain

# Under the work root: what generators (LLM rewriting) generated, per chunk (not a task result,
# so `cache gc` leaves it alone: see cache_admin).
GENERATIONS = operator_hooks.GENERATIONS


def _finished(address_dir: str, reuse: bool = True) -> dict[str, Any] | None:
    """The stored result of a finished task at ``address_dir`` (unless ``reuse`` is off)."""
    if not reuse:
        return None
    try:
        return storage.read_json(storage.join(address_dir, RESULT))
    except FileNotFoundError:
        return None


def _write_stream(table: pa.Table | None, url: str) -> tuple[str | None, int]:
    if table is None:
        return None, 0
    written = writers.write_table(table, url)
    return written.path, written.rows


# -- stages ---------------------------------------------------------------------------------


def file_digest(url: str | None) -> str | None:
    """sha256 of a file's bytes (a decision file written before digests were stored)."""
    return None if url is None else hashlib.sha256(storage.read_bytes(url)).hexdigest()


@dataclass(frozen=True)
class StageTables:
    """What a stage made of one shard, before it is stored: each stream's documents."""

    kept: pa.Table
    rejected: pa.Table | None  # None: nothing rejected
    unreadable: pa.Table | None  # None: every record read
    counts: list[dict[str, Any]]
    reports: dict[str, Any]


def run_stage(
    stage: Stage,
    inp: ShardInput,
    decision_url: str | None,
    entry: CacheEntry,
    work_root: str,
    reuse: bool = True,
) -> StageOutput:
    """Run one stage on one shard: apply the barrier's decision (if any), then the fused ops.
    ``entry`` is the stage cache entry (:func:`cache_address.stage_entry`) of this work; the
    shard's files are its own (a batch of shards shares files: :mod:`.packs`)."""
    done = stored_stage(entry, work_root, reuse)
    if done is not None:
        return done
    tables = compute_stage(stage, inp, decision_url, work_root, reuse)
    folder = entry.folder(work_root)
    kept_path, kept_rows = _write_stream(tables.kept, storage.join(folder, "kept.parquet"))
    rejected_path, rejected_rows = _write_stream(tables.rejected, storage.join(folder, "rejected.parquet"))
    unreadable_path, unreadable_rows = _write_stream(tables.unreadable, storage.join(folder, "unreadable.parquet"))
    output = StageOutput(
        key=inp.key,
        address=entry.address,
        kept=kept_path,  # type: ignore[arg-type]
        kept_rows=kept_rows,
        rejected=rejected_path,
        rejected_rows=rejected_rows,
        unreadable=unreadable_path,
        unreadable_rows=unreadable_rows,
        counts=tables.counts,
        reports=tables.reports,
    )
    store_stage_output(output, entry, work_root)
    return output


def stored_stage(entry: CacheEntry, work_root: str, reuse: bool = True) -> StageOutput | None:
    """The result of a stage on a shard done alone, from its entry's own ``result.json``, if
    finished and its files are still there (a batch's shards: :mod:`.stored_results`)."""
    return stage_output(StoredResults(work_root, reuse).own(entry))


def stage_output(stored: dict[str, Any] | None) -> StageOutput | None:
    """A stage's stored result of one shard (:meth:`StoredResults.read`), as the flow uses it."""
    return None if stored is None else StageOutput(**stored)


def stage_streams(tables: StageTables) -> dict[str, pa.Table | None]:
    """A stage's documents of one shard by stream, as a shard's files name them."""
    return {"kept": tables.kept, "rejected": tables.rejected, "unreadable": tables.unreadable}


def store_stage_output(output: StageOutput, entry: CacheEntry, work_root: str) -> None:
    """Mark a stage's work on a shard finished: its ``result.json``, once its files exist."""
    storage.write_json(storage.join(entry.folder(work_root), RESULT), output.stored())


def stage_operators(stage: Stage, work_root: str, reuse: bool = True) -> list[tuple[str, Any]]:
    """The stage's fused operators as (step, operator), ready for shards: their caches and
    stored indexes given. A batch task makes them once for all its shards, as one shard's
    batches share them (an operator's report is taken per shard)."""
    steps = stage.build_ops()
    # Caches (generations, judgments) beside the stage results; indexes built once per content.
    operator_hooks.prepare_ops(stage, steps, work_root, reuse)
    return steps


def compute_stage(stage: Stage, inp: ShardInput, decision_url: str | None, work_root: str, reuse: bool = True,
                  steps: list[tuple[str, Any]] | None = None) -> StageTables:
    """A stage's work on one shard, in memory: apply the barrier's decision (if any), then the
    fused ops (``steps``: :func:`stage_operators`, made here when not given)."""
    if steps is None:
        steps = stage_operators(stage, work_root, reuse)
    counts = [StepCounts(step=s, operator=op.name) for s, op in steps]
    barrier_count = StepCounts(stage.barrier.step, stage.barrier.name) if stage.barrier else None
    barrier_op = stage.barrier.build() if stage.barrier else None
    decision_table = writers.read_table(decision_url) if decision_url else None
    read_count = StepCounts(step=f"read:{inp.source.input_name}", operator="read") if inp.source else None
    route_count = StepCounts(step=f"route:{stage.node}", operator="route") if inp.route else None

    kept: list[pa.Table] = []
    rejected: list[pa.Table] = []
    unreadable: list[pa.Table] = []
    row = 0
    for batch, bad in iter_batches(inp, routed=route_count):
        if read_count is not None:
            bad_rows = len(bad) if bad is not None else 0
            # Reading sees the documents before the route takes its share.
            read_rows = route_count.docs_in - read_count.docs_out if route_count else len(batch)
            read_count.docs_in += read_rows + bad_rows
            read_count.docs_out += read_rows
            read_count.count_reasons(bad, default=doc.UNREADABLE)
            read_tokens = route_count.tokens_in if route_count else batch_tokens(batch)
            if read_tokens is not None:  # a dataset input that was tokenized already
                if route_count:
                    read_tokens -= read_count.tokens_out or 0
                read_count.tokens_in = (read_count.tokens_in or 0) + read_tokens
                read_count.tokens_out = (read_count.tokens_out or 0) + read_tokens
        if bad is not None and len(bad):
            unreadable.append(bad)
        if barrier_op is not None:
            assert barrier_count is not None and decision_table is not None
            decision = decision_slice(decision_table, row, len(batch))
            row += len(batch)
            barrier_count.count_in(batch)
            result = barrier_op.apply(batch, decision)  # type: ignore[attr-defined]
            dropped = len(result.rejected) if result.rejected is not None else 0
            # Copies a selector repeats (mix upsampling, rehydration) are added documents.
            barrier_count.docs_added += len(result.kept) - (len(batch) - dropped)
            batch = result.kept
            barrier_count.count_out(batch)
            barrier_count.count_reasons(result.rejected)
            if result.rejected is not None and len(result.rejected):
                rejected.append(
                    doc.set_column(result.rejected, doc.REJECTED_AT, [stage.barrier.step] * len(result.rejected))  # type: ignore[union-attr]
                )
        chained = run_chain(steps, batch, counts)
        kept.append(chained.kept)
        rejected.extend(chained.rejected)

    if not kept:  # an empty shard still has an (empty) output, so downstream reads are uniform
        kept.append(_empty_batch())
    all_counts = [c for c in (read_count, route_count, barrier_count) if c is not None] + counts
    return StageTables(
        kept=writers.concat(kept),
        rejected=writers.concat(rejected) if rejected else None,
        unreadable=writers.concat(unreadable) if unreadable else None,
        counts=[c.as_dict() for c in all_counts],
        reports=operator_hooks.take_reports(steps),
    )


# -- barriers -------------------------------------------------------------------------------

_DROP = "__drop"
_REPEAT = "__repeat"
_DECISION_COLUMNS = {
    "__reason": "reason",
    "__statistic": "statistic",
    "__value": "value",
    "__detail": "detail",
}


def compute_signatures(
    barrier: OpRef, inp: ShardInput, entry: CacheEntry, work_root: str, reuse: bool = True
) -> str:
    """Phase 1 of a barrier: the small per-document signatures of one shard (a file of its
    own; a batch of shards shares files: :mod:`.packs`)."""
    done = stored_signatures(entry, work_root, reuse)
    if done is not None:
        return done
    return _store_table(signatures_of(barrier, inp), entry.folder(work_root), "signatures.parquet")


def stored_signatures(entry: CacheEntry, work_root: str, reuse: bool = True) -> str | None:
    """Where a shard's stored signatures are, if finished alone and still there (a batch's
    shards: :mod:`.stored_results`)."""
    return signatures_path(StoredResults(work_root, reuse).own(entry))


def signatures_path(stored: dict[str, Any] | None) -> str | None:
    """Where a shard's signatures are, from their stored result (:meth:`StoredResults.read`)."""
    return None if stored is None else stored["path"]


def signatures_of(barrier: OpRef, inp: ShardInput) -> pa.Table:
    """A barrier's signatures of one shard's documents."""
    op = barrier.build()
    assert isinstance(op, BarrierOperator)
    parts = [op.signatures(batch) for batch, _ in iter_batches(inp)]
    return writers.concat(parts) if parts else op.signatures(_empty_batch())


def _store_table(table: pa.Table, folder: str, name: str) -> str:
    """Write a task's one result table, then its result.json (last: the task is finished)."""
    path = writers.write_table(table, storage.join(folder, name)).path
    storage.write_json(storage.join(folder, RESULT), {"path": path})
    return path


def release_memory() -> None:
    """Give freed memory back to the system: a worker process otherwise keeps what its biggest
    task needed (Arrow's mimalloc and glibc's malloc both hold freed pages), while the next
    task holds its own beside it."""
    pa.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _glibc() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:  # not glibc (macOS, musl): nothing to trim
        return None


_LIBC = _glibc()


def _read_signatures(
    op: BarrierOperator, paths: list[str], history: int, columns: list[str] | None = None
) -> list[pa.Table]:
    """Signature tables in order; the first ``history`` are stored signatures of documents
    earlier versions published (``scope: history``), made ready to lead by the operator."""
    return [_read_signature_file(op, path, i < history, columns) for i, path in enumerate(paths)]


def _read_signature_file(op: BarrierOperator, path: str, is_history: bool, columns: list[str] | None) -> pa.Table:
    if not is_history:
        return writers.read_table(path, columns=columns)
    assert isinstance(op, Deduplicator)
    # Stored under other keep policies, a history file may lack the priority column.
    stored = writers.column_names(path)
    wanted = None if columns is None else [c for c in columns if c in stored]
    table = op.as_history(writers.read_table(path, columns=wanted))
    return table if columns is None else table.select(columns)


class SignatureFiles:
    """A barrier's signature files as an operator's :class:`SignatureSource`: read a few
    columns at a time, or one column's values at some rows a file at a time, so a partition
    task holds what it works on, not every signature column."""

    def __init__(self, op: BarrierOperator, paths: list[str], history: int):
        self.op, self.paths, self.history = op, paths, history
        self._sizes: list[int] | None = None

    def read(self, columns: list[str] | None) -> list[pa.Table]:
        return _read_signatures(self.op, self.paths, self.history, columns)

    def shard_sizes(self) -> list[int]:
        if self._sizes is None:
            self._sizes = [writers.row_count(p) for p in self.paths]
        return self._sizes

    def take(self, column: str, positions: np.ndarray) -> pa.Array:
        positions = np.asarray(positions, dtype=np.int64)
        order = np.argsort(positions, kind="stable")
        shard_of, rows = to_shard_rows(positions[order], shard_offsets(self.shard_sizes()))
        pieces = []
        for shard in np.unique(shard_of).tolist():
            values = _read_signature_file(self.op, self.paths[shard], shard < self.history, [column]).column(0)
            pieces.append(values.take(pa.array(rows[shard_of == shard], pa.int64())).combine_chunks())
        if not pieces:  # no rows asked for: an empty column of the column's type
            if not self.paths:
                return pa.array([], pa.null())
            return _read_signature_file(self.op, self.paths[0], self.history > 0, [column]).column(0).slice(0, 0).combine_chunks()
        taken = pa.concat_arrays(pieces)
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        return taken.take(pa.array(back, pa.int64()))


def _write_this_run(
    decisions: list[BarrierDecision], shard_sizes: list[int], history: int, folder: str, summary: dict[str, Any] | None
) -> "Resolution":
    """Store the decisions of this run's shards; those of the ``history`` leading shards are
    discarded (their documents are published already). The summary gets the history's size."""
    if history and summary is not None:
        summary = {**summary, "history_documents": sum(shard_sizes[:history])}
    return _write_decisions(decisions[history:], shard_sizes[history:], folder, summary)


def resolve_barrier(
    barrier: OpRef,
    signature_paths: list[str],
    entry: CacheEntry,
    work_root: str,
    reuse: bool = True,
    history: int = 0,
) -> "Resolution":
    """Phase 2 of a barrier: one global decision, stored per shard. The first ``history``
    signature files are the dataset's earlier versions (see ``_read_signatures``)."""
    folder = entry.folder(work_root)
    done = _finished(folder, reuse)
    if done is not None:
        return Resolution(**done)
    op = barrier.build()
    assert isinstance(op, BarrierOperator)
    source = SignatureFiles(op, signature_paths, history)
    decisions = op.resolve_from(source)
    resolution = _write_this_run(decisions, source.shard_sizes(), history, folder, op.last_summary)
    del decisions
    release_memory()
    return resolution


def resolve_partition(
    barrier: OpRef,
    signature_paths: list[str],
    partition: int,
    partitions: int,
    entry: CacheEntry,
    work_root: str,
    reuse: bool = True,
    history: int = 0,
) -> str:
    """Phase 2a of a partitioned barrier: one partition's partial result."""
    folder = entry.folder(work_root)
    done = _finished(folder, reuse)
    if done is not None:
        return done["path"]
    op = barrier.build()
    assert isinstance(op, BarrierOperator)
    partial = op.resolve_partition_from(SignatureFiles(op, signature_paths, history), partition, partitions)
    path = _store_table(partial, folder, "partial.parquet")
    del partial
    release_memory()
    return path


def merge_partitions(
    barrier: OpRef,
    partial_paths: list[str],
    signature_paths: list[str],
    entry: CacheEntry,
    work_root: str,
    reuse: bool = True,
    history: int = 0,
) -> "Resolution":
    """Phase 2b of a partitioned barrier: one decision per shard from the partial results."""
    folder = entry.folder(work_root)
    done = _finished(folder, reuse)
    if done is not None:
        return Resolution(**done)
    op = barrier.build()
    assert isinstance(op, BarrierOperator)
    shard_sizes = [writers.row_count(p) for p in signature_paths]
    decisions = op.merge([writers.read_table(p) for p in partial_paths], shard_sizes)
    return _write_this_run(decisions, shard_sizes, history, folder, op.last_summary)


@dataclass(frozen=True)
class Resolution:
    """A barrier's global decision: each shard's decision (a part of one file, or a file), and
    what it found."""

    paths: list[str]
    summary: dict[str, Any] | None = None
    # each decision's digest: of its content (or, stored as a file of its own, of the file)
    digests: list[str] = field(default_factory=list)


def _write_decisions(
    decisions: list[BarrierDecision], shard_sizes: list[int], folder: str, summary: dict[str, Any] | None
) -> Resolution:
    """Every shard's decision as its rows of one file (``decisions.parquet``; thousands of
    shards are one file to write, and their parts share row groups), a shard's own file where
    its decision has other columns than the first shard's. Each decision's digest is of its
    content, so a stage's cache address does not depend on where the decision is stored."""
    paths: list[str] = [""] * len(decisions)
    digests: list[str] = [""] * len(decisions)
    packed = storage.join(folder, "decisions.parquet")
    tables = (decision_table(decision, rows) for decision, rows in zip(decisions, shard_sizes))
    first = next(tables, None)
    if first is not None:

        def of_first_schema() -> Iterator[pa.Table]:
            start = 0
            for i, table in enumerate(itertools.chain([first], tables)):
                if not table.schema.equals(first.schema):
                    apart = writers.write_table(table, storage.join(folder, f"shard-{i:05d}.parquet"))
                    paths[i], digests[i] = apart.path, apart.sha256
                    continue
                paths[i] = writers.part_url(packed, start, start + len(table))
                digests[i] = _content_digest(table)
                start += len(table)
                yield table

        writers.write_parquet_stream(of_first_schema(), packed, first.schema)
    resolution = Resolution(paths=paths, summary=summary, digests=digests)
    storage.write_json(storage.join(folder, RESULT), dataclasses.asdict(resolution))
    return resolution


def _content_digest(table: pa.Table) -> str:
    """sha256 of a table's Arrow IPC stream: equal tables, equal digests."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as stream:
        stream.write_table(table)
    return "arrow:" + hashlib.sha256(sink.getvalue()).hexdigest()


def decision_table(decision: BarrierDecision, rows: int) -> pa.Table:
    """A barrier decision for one shard as a table with one row per document."""
    dropped = np.zeros(rows, np.bool_)
    dropped[decision.drop.rows()] = True
    by_field = decision.drop.full_columns(rows)
    columns: dict[str, Any] = {_DROP: pa.array(dropped)}
    for column, attr in _DECISION_COLUMNS.items():
        columns[column] = by_field[attr]
    repeat = np.ones(rows, np.int32)
    for row, copies in (decision.repeats or {}).items():
        repeat[row] = copies
    columns[_REPEAT] = pa.array(repeat)
    for name, values in (decision.fields or {}).items():
        columns[name] = pa.array(values)
    return pa.table(columns)


def decision_slice(table: pa.Table, offset: int, length: int) -> BarrierDecision:
    """The part of a shard's decision that covers rows [offset, offset + length)."""
    part = table.slice(offset, length)
    drop = Drops.of_columns(
        part.column(_DROP).to_numpy(), {attr: part.column(column) for column, attr in _DECISION_COLUMNS.items()}
    )
    repeats = {}
    if _REPEAT in part.column_names:
        repeat = part.column(_REPEAT).to_numpy()
        repeats = {int(i): int(repeat[i]) for i in np.flatnonzero(repeat != 1)}
    fields = {
        name: part.column(name).to_pylist()
        for name in part.column_names
        if name not in (_DROP, _REPEAT) and name not in _DECISION_COLUMNS
    }
    return BarrierDecision(drop=drop, fields=fields or None, repeats=repeats or None)


def _empty_batch() -> pa.Table:
    return pa.table({doc.ID: pa.array([], pa.string()), doc.TEXT: pa.array([], pa.string())})
