"""``recipeflow analyze``: what a recipe's filters would drop, without dropping anything.

The recipe runs (as one Prefect flow run, ``recipeflow-analyze``, see
:mod:`recipeflow.orchestration.analyze_flow`) over a sample: the first N
documents of each analysed node, in input order. Per shard, one task runs the node's
operators in *annotate mode*:

* mappers (and generators) run as in a real run: they change the text later filters see, and
  a document a mapper drops (say ``html_extract``'s ``no_text``) is gone for later steps;
* every filter computes its statistics and decisions on every document that reaches it, even
  one an earlier filter rejected, so its counts *alone* cover the whole sample; the counts *in
  sequence* follow what a real run does (a document is rejected by the first step that drops it);
* barriers (deduplicators, selectors) are not run: they need the whole dataset. Later steps see
  documents as if the barrier kept them all.

A node reading ``<node>`` or ``<node>.rejected`` gets what that node kept, or rejected in
sequence, within its own sample (barrier rejections are missing, as barriers do not run). A
node's ``route`` applies as in a run: its sample is the first N documents the route takes.

Thresholds per statistic come from the filter's parameters by a naming convention: every
numeric parameter whose name starts with ``min_`` or ``max_`` is a threshold. With one
statistic, all of them are its thresholds; with several, ``min_<x>`` / ``max_<x>`` goes to the
statistic whose name matches ``<x>`` best (see :func:`match_thresholds`); the rest are shown for
the filter as a whole.

Nothing is written to the recipe's outputs: per-shard results live in a temporary folder that
is removed when the flow run ends. The report is an HTML file (:mod:`analyze_report`), a table
on the terminal, and two artifacts of the flow run.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recipeflow.io import readers
from recipeflow.io import storage
from recipeflow.io import writers
from recipeflow.engine.shard_input import ShardInput
from recipeflow.engine.planner import OpRef, plan_recipe, stable_hash
from recipeflow.recipe.models import REJECTED_SUFFIX, Recipe, RouteSpec
from recipeflow.operators.base import Filter
from recipeflow.analyze.annotate import reason_key, reason_statistic_key, stat_key
from recipeflow.analyze.model import AnalyzeError, HISTOGRAM_BINS, Histogram, MIN_ANALYSIS_SHARD, NodeAnalysis, PERCENTILES, SampleInput, ShardAnalysis, StatisticAnalysis, StepAnalysis, TOP_VALUES, DROPPED_AT, FIRST_REJECTED_AT
from recipeflow.analyze.thresholds import match_thresholds, threshold_params


# ---------------------------------------------------------------------------------------------
# Summing up a node


def _stat_columns(table: pa.Table, index: int) -> list[str]:
    prefix = stat_key(index, "")
    return [name for name in table.column_names if name.startswith(prefix)]


def _int_column(table: pa.Table, name: str) -> np.ndarray:
    """An integer step-index column as floats, with NaN for null (or absent)."""
    if name not in table.column_names:
        return np.full(len(table), np.nan)
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=float)


def _string_column(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.full(len(table), None, dtype=object)
    return np.asarray(table.column(name).to_pylist(), dtype=object)


def numeric_summary(values: np.ndarray) -> dict[str, float]:
    """Percentiles (linear interpolation), min, max and mean."""
    points = np.percentile(values, PERCENTILES)
    summary = {f"p{p}": float(v) for p, v in zip(PERCENTILES, points)}
    summary.update(min=float(values.min()), max=float(values.max()), mean=float(values.mean()))
    return summary


def histogram(values: np.ndarray, bins: int = HISTOGRAM_BINS) -> Histogram:
    """Equal-width bins over [min, max]; one bin per integer when integers span few values."""
    low, high = float(values.min()), float(values.max())
    if np.all(values == np.round(values)) and high - low + 1 <= bins:
        edges = np.arange(low - 0.5, high + 1.5, 1.0)
    elif low == high:
        edges = np.array([low - 0.5, high + 0.5])
    else:
        edges = np.linspace(low, high, bins + 1)
    counts, _ = np.histogram(values, bins=edges)
    return Histogram(edges=[float(e) for e in edges], counts=[int(c) for c in counts])


def _statistic(
    name: str, column: pa.ChunkedArray, reached: np.ndarray, thresholds: dict[str, float]
) -> StatisticAnalysis:
    """Distribution of one statistic over the documents that reached its filter."""
    values = column.filter(pa.array(reached, pa.bool_()))
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        numbers = np.asarray(pc.drop_null(values).cast(pa.float64()).to_numpy(zero_copy_only=False))
        numbers = numbers[np.isfinite(numbers)]
        stat = StatisticAnalysis(name, "numeric", len(numbers), len(values) - len(numbers))
        if len(numbers):
            stat.summary, stat.histogram = numeric_summary(numbers), histogram(numbers)
    else:
        present = [v for v in values.to_pylist() if v is not None]
        texts = [str(v).lower() if isinstance(v, bool) else str(v) for v in present]
        ranked = sorted(Counter(texts).items(), key=lambda item: (-item[1], item[0]))
        stat = StatisticAnalysis(name, "categorical", len(present), len(values) - len(present))
        stat.top_values = ranked[:TOP_VALUES]
    stat.thresholds = thresholds
    return stat


def _operator_kind(ref: OpRef) -> str:
    return ref.cls.kind.value


def _summarise_filter(step: StepAnalysis, ref: OpRef, table: pa.Table, reached: np.ndarray, first: np.ndarray) -> None:
    """Drop counts alone and in sequence, reasons and per-statistic distributions."""
    reasons = _string_column(table, reason_key(ref.index))
    rejected_alone = reached & np.array([r is not None for r in reasons], dtype=bool)
    in_sequence = first == ref.index
    step.dropped_alone = int(rejected_alone.sum())
    step.dropped_in_sequence = int(in_sequence.sum())
    step.reasons = dict(sorted(Counter(reasons[rejected_alone].tolist()).items()))

    operator = ref.build()
    names = [c.split(":", 1)[1] for c in _stat_columns(table, ref.index)]
    declared = operator.thresholds() if isinstance(operator, Filter) else {}
    if declared:  # the filter says which bound decides on which statistic
        matched = {name: dict(declared.get(name, {})) for name in names}
        step.thresholds = {p: v for bounds in declared.values() for p, v in bounds.items()}
        step.unmatched_thresholds = {
            p: v for s, bounds in declared.items() if s not in names for p, v in bounds.items()
        }
    else:
        step.thresholds = threshold_params(operator.params)
        matched, step.unmatched_thresholds = match_thresholds(step.thresholds, names)
    if not names:  # no document reached it: its statistics are unknown
        step.unmatched_thresholds = dict(step.thresholds)
    blamed = _string_column(table, reason_statistic_key(ref.index))
    for name in names:
        stat = _statistic(name, table.column(stat_key(ref.index, name)), reached, matched[name])
        stat.dropped_alone = int((rejected_alone & (blamed == name)).sum())
        stat.dropped_in_sequence = int((in_sequence & (blamed == name)).sum())
        step.statistics.append(stat)


def summarise_node(
    name: str, sources: list[str], refs: Sequence[OpRef], shards: Sequence[ShardAnalysis]
) -> NodeAnalysis:
    """Sum a node's shard results up into distributions and drop counts per step."""
    parts = [writers.read_table(s.table) for s in shards]
    nonempty = [p for p in parts if len(p)]
    table = writers.concat(nonempty) if nonempty else pa.table({})
    dropped_at = _int_column(table, DROPPED_AT)
    first = _int_column(table, FIRST_REJECTED_AT)
    steps: list[StepAnalysis] = []
    for ref in refs:
        step = StepAnalysis(ref.step, ref.index, ref.name, _operator_kind(ref), dict(ref.params))
        steps.append(step)
        if ref.is_barrier:
            step.analysed = False
            continue
        # Reached: no mapper dropped it before this step (NaN compares False).
        reached = ~(dropped_at < ref.index)
        step.docs_in = int(reached.sum())
        step.docs_in_sequence = int((reached & ~(first < ref.index)).sum())
        if issubclass(ref.cls, Filter):
            _summarise_filter(step, ref, table, reached, first)
        else:
            step.dropped_alone = int((dropped_at == ref.index).sum())
            step.dropped_in_sequence = int((first == ref.index).sum())
            # What a mapper measured (tokenize: n_tokens), over the documents it kept.
            for column in _stat_columns(table, ref.index):
                kept_here = reached & ~(dropped_at == ref.index)
                step.statistics.append(_statistic(column.split(":", 1)[1], table.column(column), kept_here, {}))
    return NodeAnalysis(
        name=name,
        sources=list(sources),
        documents=len(table),
        unreadable=sum(s.unreadable for s in shards),
        kept_in_sequence=int(np.isnan(first).sum()),
        steps=steps,
        has_filters=any(issubclass(r.cls, Filter) for r in refs),
    )


# ---------------------------------------------------------------------------------------------
# Which nodes to analyse


@dataclass(frozen=True)
class NodeWork:
    """A node to annotate: its operators in recipe order, and whether later nodes read it."""

    name: str
    sources: tuple[str, ...]
    refs: tuple[OpRef, ...]
    keep_streams: bool
    route: RouteSpec | None = None  # the node reads only the documents its route takes


def nodes_to_annotate(recipe: Recipe) -> tuple[list[NodeWork], list[str]]:
    """Nodes with filters and the nodes they read from, in dependency order; and the others."""
    plan = plan_recipe(recipe)
    refs = {
        node.name: tuple(r for s in node.stages for r in ([s.barrier] if s.barrier else []) + list(s.ops))
        for node in plan.nodes
    }
    # A node with a filter, or one that counts tokens (its token-length distribution).
    needed = {n for n, rs in refs.items() if any(issubclass(r.cls, Filter) or r.name == "tokenize" for r in rs)}
    read_by_needed: set[str] = set()
    for node in reversed(plan.nodes):  # dependants come later in dependency order
        if node.name in needed:
            upstream = {s.removesuffix(REJECTED_SUFFIX) for s in node.sources} & set(refs)
            needed |= upstream
            read_by_needed |= upstream
    work = [
        NodeWork(n.name, tuple(n.sources), refs[n.name], n.name in read_by_needed, n.route)
        for n in plan.nodes
        if n.name in needed
    ]
    return work, [n.name for n in plan.nodes if n.name not in needed]


def analysis_shard_size(recipe: Recipe, sample: int | None) -> int:
    """Smaller shards than a run's, so that a sample is spread over every worker."""
    if sample is None:
        return recipe.run.shard_size
    per_worker = math.ceil(sample / recipe.run.workers)
    return min(recipe.run.shard_size, max(MIN_ANALYSIS_SHARD, per_worker))


def check_inputs(recipe: Recipe) -> None:
    """Clear errors before Prefect starts: every input names files of a known format."""
    where = recipe.source or "<recipe>"
    for name, spec in recipe.inputs.items():
        try:
            urls = readers.expand_input(spec.path)
            if spec.format is None:
                readers.infer_format(urls[0])
        except readers.InputNotFound as exc:
            raise AnalyzeError(f"{where}: inputs.{name}.path: {exc}") from exc
        except ValueError as exc:
            raise AnalyzeError(f"{where}: inputs.{name}.format: {exc}") from exc


def result_for_stream(shard: ShardAnalysis, stream: str, node: str) -> SampleInput | None:
    """A node's kept or rejected documents of one shard, as input to a later node."""
    path, rows = (shard.kept, shard.kept_rows) if stream == "kept" else (shard.rejected, shard.rejected_rows)
    if path is None:
        return None
    key = f"{node}:{shard.key}" + (REJECTED_SUFFIX if stream == "rejected" else "")
    return SampleInput(ShardInput(key=key, fingerprint=stable_hash([key, path]), parquet=path), rows)


def shard_folder(work_root: str, node: str, inp: ShardInput, limit: int | None) -> str:
    return storage.join(work_root, node, stable_hash([inp.address_part(), inp.key, limit])[:20])
