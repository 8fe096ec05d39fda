"""Annotate mode over one shard: mappers run, every filter computes statistics and decisions
on every document that reaches it, and the result is one table of per-step columns."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from recipeflow.engine import shard_input
from recipeflow.io import storage
from recipeflow.io import writers
from recipeflow.engine.shard_input import ShardInput
from recipeflow.engine.planner import OpRef
from recipeflow.operators import document as doc
from recipeflow.operators.chain import N_TOKENS
from recipeflow.operators.base import Filter, StreamOperator
from recipeflow.analyze.model import AnalyzeError, ShardAnalysis, DROPPED_AT, FIRST_REJECTED_AT, ROW_COLUMN


class _DocumentColumns:
    """Per-document values of a shard, column by column, filled as steps run."""

    def __init__(self) -> None:
        self.size = 0
        self.columns: dict[str, list[Any]] = {}

    def grow(self, size: int) -> None:
        for values in self.columns.values():
            values.extend([None] * (size - len(values)))
        self.size = size

    def put(self, name: str, rows: Sequence[int], values: Iterable[Any]) -> None:
        column = self.columns.setdefault(name, [None] * self.size)
        for row, value in zip(rows, values):
            column[row] = value

    def get(self, name: str, row: int) -> Any:
        column = self.columns.get(name)
        return None if column is None else column[row]

    def table(self) -> pa.Table:
        arrays = {"row": pa.array(range(self.size), pa.int64())}
        arrays.update({name: _arrow_column(values) for name, values in self.columns.items()})
        return pa.table(arrays)


def _arrow_column(values: list[Any]) -> pa.Array:
    """An Arrow column of any statistic's values; mixed types become strings."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def stat_key(index: int, statistic: str) -> str:
    return f"s{index}:{statistic}"


def reason_key(index: int) -> str:
    return f"r{index}"


def reason_statistic_key(index: int) -> str:
    return f"rs{index}"


def _filter_step(
    ref: OpRef, op: Filter, batch: pa.Table, columns: _DocumentColumns, rejected: list[pa.Table]
) -> pa.Table:
    """Statistics and decisions of ``op`` for every document of ``batch``; nothing dropped.

    Runs the filter's own ``annotate``, as a real run does, so later steps (and routes) see
    every field it writes (``language_id``'s ``lang``, a classifier's scores, C4's kept lines).
    Its statistics are the ``stat_*`` columns it writes."""
    # Earlier steps' statistics are set aside, so every stat_* column the filter returns is its
    # own (a second text_length_filter writes stat_text_length again, maybe with equal values).
    earlier = [c for c in batch.column_names if c.startswith(doc.STAT_PREFIX)]
    try:
        annotated, decisions = op.annotate(batch.drop_columns(earlier))
    except NotImplementedError as exc:
        raise AnalyzeError(
            f"{ref.step}: filter {ref.name!r} does not implement compute_stats() and decide(), "
            "which analyze needs (see recipeflow/operators/base.py, class Filter)"
        ) from exc
    decisions = list(decisions)
    if len(decisions) != len(batch):
        raise AnalyzeError(
            f"{ref.step}: filter {ref.name!r} decided {len(decisions)} documents of {len(batch)}"
        )
    rows = annotated.column(ROW_COLUMN).to_pylist()
    own = [c for c in annotated.column_names if c.startswith(doc.STAT_PREFIX)]
    for column in own:
        columns.put(stat_key(ref.index, column[len(doc.STAT_PREFIX):]), rows, annotated.column(column).to_pylist())
    for column in earlier:  # kept for later steps unless this filter wrote it again
        if column not in own:
            annotated = doc.set_column(annotated, column, batch.column(column))
    columns.put(reason_key(ref.index), rows, [d.reason if d else None for d in decisions])
    columns.put(reason_statistic_key(ref.index), rows, [d.statistic if d else None for d in decisions])
    first = [
        i for i, (row, d) in enumerate(zip(rows, decisions))
        if d is not None and columns.get(FIRST_REJECTED_AT, row) is None
    ]
    if first:
        columns.put(FIRST_REJECTED_AT, [rows[i] for i in first], [ref.index] * len(first))
        taken = annotated.take(pa.array(first, pa.int64()))
        rejected.append(doc.with_rejection(taken, ref.name, [decisions[i] for i in first], ref.step))  # type: ignore[misc]
    return annotated


def _mapper_step(
    ref: OpRef, op: StreamOperator, batch: pa.Table, columns: _DocumentColumns, rejected: list[pa.Table]
) -> pa.Table:
    """Run a mapper (or generator) as in a real run; record the documents it drops."""
    result = op.process(batch)
    if ROW_COLUMN not in result.kept.column_names:
        raise AnalyzeError(
            f"{ref.step}: operator {ref.name!r} did not keep the documents' other columns, "
            "so analyze cannot follow documents through it"
        )
    if N_TOKENS in result.kept.column_names and N_TOKENS not in batch.column_names:
        # tokenize: the token-length distribution is this step's statistic.
        columns.put(stat_key(ref.index, N_TOKENS), result.kept.column(ROW_COLUMN).to_pylist(),
                    result.kept.column(N_TOKENS).to_pylist())
    if result.rejected is None or not len(result.rejected):
        return result.kept
    dropped = result.rejected.column(ROW_COLUMN).to_pylist()
    columns.put(DROPPED_AT, dropped, [ref.index] * len(dropped))
    first = [row for row in dropped if columns.get(FIRST_REJECTED_AT, row) is None]
    columns.put(FIRST_REJECTED_AT, first, [ref.index] * len(first))
    in_sequence = pc.is_in(result.rejected.column(ROW_COLUMN), value_set=pa.array(first, pa.int64()))
    rejected.append(
        doc.set_column(
            result.rejected.filter(in_sequence), doc.REJECTED_AT, [ref.step] * len(first)
        )
    )
    return result.kept


def _kept_in_sequence(batch: pa.Table, columns: _DocumentColumns) -> pa.Table:
    rows = batch.column(ROW_COLUMN).to_pylist()
    mask = [columns.get(FIRST_REJECTED_AT, row) is None for row in rows]
    return batch.filter(pa.array(mask, pa.bool_()))


def _write(tables: list[pa.Table], url: str) -> tuple[str | None, int]:
    """Documents as a node reading them expects (without the internal row column)."""
    tables = [t.drop_columns([ROW_COLUMN]) for t in tables if len(t)]
    if not tables:
        return None, 0
    written = writers.write_table(writers.concat(tables), url)
    return written.path, written.rows


def annotate_shard(
    refs: Sequence[OpRef], inp: ShardInput, limit: int | None, folder: str, keep_streams: bool
) -> ShardAnalysis:
    """Annotate the first ``limit`` documents of a shard (all when None) with every analysed
    step of a node; write the per-document table (and the kept/rejected streams when asked)."""
    steps = [(ref, ref.build()) for ref in refs if not ref.is_barrier]
    columns = _DocumentColumns()
    kept: list[pa.Table] = []
    rejected: list[pa.Table] = []
    docs = unreadable = 0
    truncated = False
    for batch, bad in shard_input.iter_batches(inp):
        if limit is not None and docs >= limit:
            truncated = truncated or len(batch) > 0
            break
        unreadable += len(bad) if bad is not None else 0
        if limit is not None and len(batch) > limit - docs:
            batch, truncated = batch.slice(0, limit - docs), True
        if not len(batch):
            continue
        batch = doc.set_column(batch, ROW_COLUMN, pa.array(range(docs, docs + len(batch)), pa.int64()))
        docs += len(batch)
        columns.grow(docs)
        for ref, op in steps:
            if not len(batch):
                break
            if isinstance(op, Filter):
                batch = _filter_step(ref, op, batch, columns, rejected)
            else:
                batch = _mapper_step(ref, op, batch, columns, rejected)  # type: ignore[arg-type]
        kept.append(_kept_in_sequence(batch, columns))

    table_path = writers.write_table(columns.table(), storage.join(folder, "documents.parquet")).path
    streams: dict[str, Any] = {}
    if keep_streams:
        streams["kept"], streams["kept_rows"] = _write(kept, storage.join(folder, "kept.parquet"))
        streams["rejected"], streams["rejected_rows"] = _write(
            rejected, storage.join(folder, "rejected.parquet")
        )
    return ShardAnalysis(
        key=inp.key, limit=limit, docs=docs, truncated=truncated, unreadable=unreadable,
        table=table_path, **streams,
    )
