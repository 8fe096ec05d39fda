"""Run a barrier operator in-process the way the engine does (signatures per shard, one
resolve, apply per shard), for the operator tests of this folder. Every resolve runs twice:
on the signature tables in memory, and as the engine runs it, from the stored signature files
a column at a time (``resolve_from`` / ``resolve_partition_from``); the decisions must agree."""

from __future__ import annotations

import tempfile

import pyarrow as pa

from recipeflow.engine.execute import SignatureFiles
from recipeflow.io import writers
from recipeflow.operators import registry


def run_dedup(name: str, params: dict, docs: list[dict], shard_size: int = 3) -> tuple[list[dict], list[dict]]:
    """(kept rows, rejected rows) of a barrier over ``docs`` cut into shards."""
    op = registry.get(name)(params)
    table = pa.Table.from_pylist(docs)
    shards = [table.slice(o, shard_size) for o in range(0, len(table), shard_size)] or [table]
    signatures = [op.signatures(s) for s in shards]
    if op.partitions() > 1:
        partials = [
            op.resolve_partition(
                [s.select(op.partition_columns(p, op.partitions()) or s.column_names) for s in signatures],
                p,
                op.partitions(),
            )
            for p in range(op.partitions())
        ]
        decisions = op.merge(partials, [len(s) for s in signatures])
    else:
        decisions = op.resolve(signatures)
    assert _resolved_from_files(name, params, signatures) == decisions
    kept: list[dict] = []
    rejected: list[dict] = []
    for shard, decision in zip(shards, decisions):
        result = op.apply(shard, decision)
        kept += result.kept.to_pylist()
        if result.rejected is not None:
            rejected += result.rejected.to_pylist()
    return kept, rejected


def _resolved_from_files(name: str, params: dict, signatures: list[pa.Table]) -> list:
    op = registry.get(name)(params)
    with tempfile.TemporaryDirectory() as folder:
        paths = [writers.write_table(s, f"{folder}/shard-{i:05d}.parquet").path for i, s in enumerate(signatures)]
        source = SignatureFiles(op, paths, history=0)
        if op.partitions() == 1:
            return op.resolve_from(source)
        partials = [op.resolve_partition_from(source, p, op.partitions()) for p in range(op.partitions())]
        return op.merge(partials, source.shard_sizes())


def texts(rows: list[dict]) -> list[str]:
    return [r["text"] for r in rows]
