"""``recipeflow analyze``: what a recipe's filters would drop, without dropping anything.

The recipe runs as one Prefect flow run (``recipeflow-analyze``) over a sample: the first N
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
import os
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from pydantic import BaseModel

from recipeflow.flows import analyze_report, execute, readers, storage, writers
from recipeflow.flows.execute import ShardInput
from recipeflow.flows.flow import ProgressBar, scan_task, slug, task_runner, with_absolute_paths
from recipeflow.flows.planner import OpRef, plan_recipe, stable_hash
from recipeflow.flows.prefect_server import prefect_api
from recipeflow.flows.recipe import REJECTED_SUFFIX, InputSpec, Recipe, RouteSpec, load_recipe, parse_recipe
from recipeflow.operators import document as doc
from recipeflow.operators.base import Filter, Rejection, StreamOperator

DEFAULT_SAMPLE = 10_000
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
HISTOGRAM_BINS = 40
TOP_VALUES = 20
THRESHOLD_PREFIXES = ("min_", "max_")
NO_LIMIT = sys.maxsize  # a bound this large means "no bound"
# Analysis shards: small enough that a sample of 10,000 keeps every worker busy, big enough
# that Prefect's per-task cost (about a second) stays small beside the work.
MIN_ANALYSIS_SHARD = 1000

# Columns of a shard's per-document table (one row per sampled document, in input order).
_ROW = "__analyze_row"  # the document's position in the shard; carried through the steps
_DROPPED_AT = "dropped_at"  # index of the mapper step that dropped the document
_FIRST_REJECTED_AT = "first_rejected_at"  # index of the first step that rejected it


class AnalyzeError(ValueError):
    """The recipe is valid but cannot be analysed (an input matches nothing, a filter lacks
    statistics, the report cannot be written)."""


# ---------------------------------------------------------------------------------------------
# What an analysis finds (JSON-able dataclasses)


@dataclass
class Histogram:
    """Counts of values in ``len(edges) - 1`` bins; ``edges`` ascending."""

    edges: list[float]
    counts: list[int]


@dataclass
class StatisticAnalysis:
    """One statistic of one filter over the documents that reached it."""

    name: str
    kind: str  # "numeric" or "categorical"
    values: int  # documents with a value
    missing: int  # documents that reached the filter with no (or a non-finite) value
    summary: dict[str, float] = field(default_factory=dict)  # p1 ... p99, min, max, mean
    histogram: Histogram | None = None
    top_values: list[tuple[str, int]] = field(default_factory=list)  # categorical
    thresholds: dict[str, float] = field(default_factory=dict)  # parameter -> value
    dropped_alone: int = 0  # rejections that name this statistic
    dropped_in_sequence: int = 0


@dataclass
class StepAnalysis:
    """One operator of a node, in recipe order."""

    step: str  # "main.process[2]"
    index: int
    operator: str
    kind: str  # filter | mapper | generator | deduplicator | selector
    params: dict[str, Any]
    analysed: bool = True  # False for barriers
    docs_in: int = 0  # documents that reached the step (alone)
    docs_in_sequence: int = 0  # of those, the ones every earlier step kept
    dropped_alone: int = 0
    dropped_in_sequence: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # reason -> count (alone)
    statistics: list[StatisticAnalysis] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)  # every min_/max_ parameter
    unmatched_thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def note(self) -> str:
        return "" if self.analysed else "not analysed (barrier)"


@dataclass
class NodeAnalysis:
    """One node of the recipe: its sample and its steps."""

    name: str
    sources: list[str]
    documents: int  # sampled documents
    unreadable: int  # unreadable records met while reading the sample
    kept_in_sequence: int  # documents every analysed step kept
    steps: list[StepAnalysis]
    has_filters: bool


@dataclass
class Analysis:
    """The whole analysis of a recipe."""

    recipe: str
    sample: int  # 0: all documents
    nodes: list[NodeAnalysis]
    skipped_nodes: list[str] = field(default_factory=list)  # nodes with nothing to analyse
    flow_run_id: str | None = None


# ---------------------------------------------------------------------------------------------
# Thresholds from parameters


def threshold_params(params: BaseModel | dict[str, Any]) -> dict[str, float]:
    """The filter's numeric ``min_*`` / ``max_*`` parameters that set a limit: not null, and
    not a "no limit" stand-in (infinity, or ``sys.maxsize`` as Data-Juicer's defaults use)."""
    values = params.model_dump() if isinstance(params, BaseModel) else dict(params)
    return {
        name: value
        for name, value in values.items()
        if name.startswith(THRESHOLD_PREFIXES) and _is_limit(value)
    }


def _is_limit(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return math.isfinite(value) and abs(value) < NO_LIMIT


def _match_score(subject: str, statistic: str) -> int:
    """How well ``min_<subject>`` names ``statistic``: 2 the same name, 1 one name ends the
    other at a word boundary (``length`` and ``text_length``), 0 no match. Conservative on
    purpose: a threshold drawn on the wrong histogram misleads more than one left unmatched."""
    if subject == statistic:
        return 2
    return 1 if statistic.endswith("_" + subject) or subject.endswith("_" + statistic) else 0


def match_thresholds(
    thresholds: dict[str, float], statistics: Sequence[str]
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Thresholds per statistic, and those matching no statistic (or several equally well).

    ``min_length`` of a filter with the single statistic ``text_length`` is that statistic's;
    with several statistics, ``max_symbol_word_ratio`` goes to ``symbol_word_ratio``.
    """
    matched: dict[str, dict[str, float]] = {s: {} for s in statistics}
    unmatched: dict[str, float] = {}
    for name, value in thresholds.items():
        if len(statistics) == 1:
            matched[statistics[0]][name] = value
            continue
        subject = name.split("_", 1)[1]
        scores = {s: _match_score(subject, s) for s in statistics}
        best = max(scores.values(), default=0)
        winners = [s for s, score in scores.items() if score == best]
        if best > 0 and len(winners) == 1:
            matched[winners[0]][name] = value
        else:
            unmatched[name] = value
    return matched, unmatched


# ---------------------------------------------------------------------------------------------
# What one task does: annotate one shard


@dataclass(frozen=True)
class SampleInput:
    """A shard to annotate, with an upper bound of the documents it holds."""

    shard: ShardInput
    records: int


@dataclass(frozen=True)
class ShardAnalysis:
    """One shard's annotate result: file references and counts, never the data itself."""

    key: str
    limit: int | None
    docs: int  # documents annotated (at most ``limit``)
    truncated: bool  # more documents were there beyond ``limit``
    unreadable: int
    table: str  # Parquet: one row per document (statistics and decisions per step)
    kept: str | None = None  # documents every step kept (when a later node reads them)
    kept_rows: int = 0
    rejected: str | None = None  # documents rejected in sequence, as a real run would
    rejected_rows: int = 0

    def covers(self, need: int) -> bool:
        """Whether this result is exactly the shard's first ``need`` documents (or all of them,
        when it holds fewer)."""
        if self.truncated:
            return self.limit == need
        return self.docs <= need


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


def _as_list(values: Any) -> list[Any]:
    """A statistic's values as a Python list, whatever sequence the filter returned."""
    if hasattr(values, "to_pylist"):
        return values.to_pylist()
    if hasattr(values, "tolist"):
        return values.tolist()
    return list(values)


def _filter_step(
    ref: OpRef, op: Filter, batch: pa.Table, columns: _DocumentColumns, rejected: list[pa.Table]
) -> pa.Table:
    """Statistics and decisions of ``op`` for every document of ``batch``; nothing dropped.

    Calls ``compute_stats`` then ``decide``, as ``Filter.annotate`` does, because the names of
    the statistics are needed too."""
    try:
        computed = op.compute_stats(batch)
        decisions: list[Rejection | None] = list(op.decide(computed))  # as computed: may be vectors
    except NotImplementedError as exc:
        raise AnalyzeError(
            f"{ref.step}: filter {ref.name!r} does not implement compute_stats() and decide(), "
            "which analyze needs (see recipeflow/operators/base.py, class Filter)"
        ) from exc
    if len(decisions) != len(batch):
        raise AnalyzeError(
            f"{ref.step}: filter {ref.name!r} decided {len(decisions)} documents of {len(batch)}"
        )
    rows = batch.column(_ROW).to_pylist()
    for name, values in computed.items():
        batch = doc.set_column(batch, doc.stat_column(name), values)
        columns.put(stat_key(ref.index, name), rows, _as_list(values))
    columns.put(reason_key(ref.index), rows, [d.reason if d else None for d in decisions])
    columns.put(reason_statistic_key(ref.index), rows, [d.statistic if d else None for d in decisions])
    first = [
        i for i, (row, d) in enumerate(zip(rows, decisions))
        if d is not None and columns.get(_FIRST_REJECTED_AT, row) is None
    ]
    if first:
        columns.put(_FIRST_REJECTED_AT, [rows[i] for i in first], [ref.index] * len(first))
        taken = batch.take(pa.array(first, pa.int64()))
        rejected.append(doc.with_rejection(taken, ref.name, [decisions[i] for i in first], ref.step))  # type: ignore[misc]
    return batch


def _mapper_step(
    ref: OpRef, op: StreamOperator, batch: pa.Table, columns: _DocumentColumns, rejected: list[pa.Table]
) -> pa.Table:
    """Run a mapper (or generator) as in a real run; record the documents it drops."""
    result = op.process(batch)
    if _ROW not in result.kept.column_names:
        raise AnalyzeError(
            f"{ref.step}: operator {ref.name!r} did not keep the documents' other columns, "
            "so analyze cannot follow documents through it"
        )
    if result.rejected is None or not len(result.rejected):
        return result.kept
    dropped = result.rejected.column(_ROW).to_pylist()
    columns.put(_DROPPED_AT, dropped, [ref.index] * len(dropped))
    first = [row for row in dropped if columns.get(_FIRST_REJECTED_AT, row) is None]
    columns.put(_FIRST_REJECTED_AT, first, [ref.index] * len(first))
    in_sequence = pc.is_in(result.rejected.column(_ROW), value_set=pa.array(first, pa.int64()))
    rejected.append(
        doc.set_column(
            result.rejected.filter(in_sequence), doc.REJECTED_AT, [ref.step] * len(first)
        )
    )
    return result.kept


def _kept_in_sequence(batch: pa.Table, columns: _DocumentColumns) -> pa.Table:
    rows = batch.column(_ROW).to_pylist()
    mask = [columns.get(_FIRST_REJECTED_AT, row) is None for row in rows]
    return batch.filter(pa.array(mask, pa.bool_()))


def _write(tables: list[pa.Table], url: str) -> tuple[str | None, int]:
    """Documents as a node reading them expects (without the internal row column)."""
    tables = [t.drop_columns([_ROW]) for t in tables if len(t)]
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
    for batch, bad in execute.iter_batches(inp):
        if limit is not None and docs >= limit:
            truncated = truncated or len(batch) > 0
            break
        unreadable += len(bad) if bad is not None else 0
        if limit is not None and len(batch) > limit - docs:
            batch, truncated = batch.slice(0, limit - docs), True
        if not len(batch):
            continue
        batch = doc.set_column(batch, _ROW, pa.array(range(docs, docs + len(batch)), pa.int64()))
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


# ---------------------------------------------------------------------------------------------
# Which shards hold the sample


@dataclass(frozen=True)
class MoreFiles:
    """The files of an input not scanned yet: they come next in input order."""

    input_name: str


@dataclass
class Walk:
    """Where the sample stands: shards still to annotate (key, limit), the shards that make it
    up, and the input whose next files must be scanned first (if the sample reaches them)."""

    todo: list[tuple[str, int | None]]
    included: list[str]
    scan_more: str | None = None


def walk_sample(
    entries: Sequence[SampleInput | MoreFiles], sample: int | None, done: dict[str, ShardAnalysis]
) -> Walk:
    """The first ``sample`` documents (all when None) over ``entries`` in order.

    A shard's ``records`` bounds its documents from above (unreadable records count there but
    yield nothing), so a first round may fall short; the next walk then asks a shard that was
    cut short for more, or the following shards for the rest. The sample is settled when the
    walk has nothing to do and no unscanned files to reach.
    """
    walk = Walk(todo=[], included=[])
    before = 0
    for entry in entries:
        need = None if sample is None else sample - before
        if need is not None and need <= 0:
            break
        if isinstance(entry, MoreFiles):
            walk.scan_more = entry.input_name
            break
        key = entry.shard.key
        walk.included.append(key)
        result = done.get(key)
        if result is not None and (need is None or result.covers(need)):
            before += result.docs
        else:
            walk.todo.append((key, need))
            before += entry.records if need is None else min(entry.records, need)
    return walk


@dataclass
class InputFiles:
    """An input's files, scanned in order only as far as the sample needs: a sample of a
    large crawl does not checksum the whole crawl."""

    name: str
    spec: InputSpec
    format: str
    urls: list[str]
    scans: list[readers.FileScan] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return len(self.scans) == len(self.urls)

    @property
    def records(self) -> int:
        return sum(s.records for s in self.scans)

    def entries(self, shard_size: int) -> list[SampleInput | MoreFiles]:
        """Shards of the scanned files (cut as a run cuts them), then the rest, if any."""
        by_url = {s.url: s for s in self.scans}
        cut = readers.cut_shards(
            self.name, self.format, self.spec.text_field, self.spec.id_field,
            readers.input_root(self.spec.path), self.scans, shard_size,
        )
        entries: list[SampleInput | MoreFiles] = [
            SampleInput(execute.source_input(s, by_url), s.records) for s in cut
        ]
        return entries if self.complete else entries + [MoreFiles(self.name)]


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
    dropped_at = _int_column(table, _DROPPED_AT)
    first = _int_column(table, _FIRST_REJECTED_AT)
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
    needed = {n for n, rs in refs.items() if any(issubclass(r.cls, Filter) for r in rs)}
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


# ---------------------------------------------------------------------------------------------
# The Prefect flow


# Results point into a temporary folder removed after the run: never cache them.
@task(name="analyze-shard", cache_policy=NO_CACHE)
def annotate_task(
    refs: tuple[OpRef, ...], inp: ShardInput, limit: int | None, folder: str, keep_streams: bool
) -> ShardAnalysis:
    return annotate_shard(refs, inp, limit, folder, keep_streams)


def open_input(name: str, spec: InputSpec) -> InputFiles:
    urls = readers.expand_input(spec.path)
    return InputFiles(name, spec, spec.format or readers.infer_format(urls[0]), urls)


def _scan_more(files: InputFiles, need: int | None, shard_size: int, workers: int, bar: ProgressBar) -> None:
    """Scan the next files of an input, ``workers`` at a time, until they hold ``need`` more
    records (every remaining file when None)."""
    target = None if need is None else files.records + need
    while not files.complete and (target is None or files.records < target):
        group = files.urls[len(files.scans) : len(files.scans) + (len(files.urls) if target is None else workers)]
        files.scans += bar.wait(
            f"scan {files.name}",
            [
                scan_task.with_options(task_run_name=f"scan {files.name}:{os.path.basename(u)}").submit(
                    u, files.format, shard_size
                )
                for u in group
            ],
        )


@dataclass
class SampleSources:
    """What nodes read: the recipe's inputs (scanned on demand) and earlier nodes' streams."""

    inputs: dict[str, InputFiles]
    streams: dict[str, list[SampleInput]]
    shard_size: int
    workers: int

    def entries(self, sources: Sequence[str], route: RouteSpec | None) -> list[SampleInput | MoreFiles]:
        """A node's shards: the union of its sources in order, each marked with the source it
        is read through and the node's route, as a run marks them."""
        entries: list[SampleInput | MoreFiles] = []
        for source in sources:
            found = self.inputs[source].entries(self.shard_size) if source in self.inputs else self.streams.get(source, [])
            entries += [
                e if isinstance(e, MoreFiles) else replace(e, shard=replace(e.shard, origin=source, route=route))
                for e in found
            ]
        return entries


def _annotate_node(work: NodeWork, sources: SampleSources, sample: int | None, work_root: str, bar: ProgressBar) -> list[ShardAnalysis]:
    """Annotate the node's sample: rounds of tasks (and scans) until the walk is settled."""
    done: dict[str, ShardAnalysis] = {}
    while True:
        entries = sources.entries(work.sources, work.route)
        walk = walk_sample(entries, sample, done)
        if walk.todo:
            shards = {e.shard.key: e.shard for e in entries if isinstance(e, SampleInput)}
            futures = [
                annotate_task.with_options(task_run_name=f"analyze {work.name} {key}").submit(
                    work.refs, shards[key], limit, shard_folder(work_root, work.name, shards[key], limit),
                    work.keep_streams,
                )
                for key, limit in walk.todo
            ]
            for (key, _limit), result in zip(walk.todo, bar.wait(f"analyze {work.name}", futures)):
                done[key] = result
        elif walk.scan_more is not None:
            missing = None if sample is None else sample - sum(done[k].docs for k in walk.included)
            _scan_more(sources.inputs[walk.scan_more], missing, sources.shard_size, sources.workers, bar)
        else:
            return [done[key] for key in walk.included]


def _publish_artifacts(analysis: Analysis) -> None:
    key = slug(analysis.recipe)
    create_table_artifact(
        table=analyze_report.table_rows(analysis),
        key=f"{key}-analyze-table",
        description=f"Statistics and what each threshold drops: {analysis.recipe}",
    )
    create_markdown_artifact(
        markdown=analyze_report.render_markdown(analysis),
        key=f"{key}-analyze-report",
        description=f"Filter analysis: {analysis.recipe}",
    )


@flow(name="recipeflow-analyze", persist_result=False, log_prints=True)
def analyze_flow(
    recipe_data: dict[str, Any],
    recipe_source: str | None = None,
    base_dir: str = ".",
    sample: int = DEFAULT_SAMPLE,
    progress: bool = True,
) -> Analysis:
    """Annotate the first ``sample`` documents (0: all) with every filter; publish the report."""
    logger = get_run_logger()
    recipe = with_absolute_paths(parse_recipe(recipe_data, source=recipe_source or "<recipe>"), base_dir)
    limit = sample or None
    works, skipped = nodes_to_annotate(recipe)
    read_inputs = {s for w in works for s in w.sources if s in recipe.inputs}
    sources = SampleSources(
        inputs={n: open_input(n, spec) for n, spec in recipe.inputs.items() if n in read_inputs},
        streams={},
        shard_size=analysis_shard_size(recipe, limit),
        workers=recipe.run.workers,
    )
    work_root = tempfile.mkdtemp(prefix="recipeflow-analyze-")
    bar = ProgressBar.start(progress)
    nodes: list[NodeAnalysis] = []
    try:
        for files in sources.inputs.values():  # one scan round covers the sample, usually
            _scan_more(files, limit, sources.shard_size, sources.workers, bar)
        for work in works:
            shards = _annotate_node(work, sources, limit, work_root, bar)
            nodes.append(summarise_node(work.name, list(work.sources), work.refs, shards))
            for stream, suffix in (("kept", ""), ("rejected", REJECTED_SUFFIX)):
                sources.streams[work.name + suffix] = [
                    s for shard in shards if (s := result_for_stream(shard, stream, work.name))
                ]
    finally:
        bar.stop()
        shutil.rmtree(work_root, ignore_errors=True)
    run_id = flow_run.get_id()
    analysis = Analysis(recipe.name, sample, nodes, skipped, str(run_id) if run_id else None)
    _publish_artifacts(analysis)
    logger.info(
        "analysed %s: %s", recipe.name,
        "; ".join(f"node {n.name}: {n.documents} documents, {n.kept_in_sequence} kept" for n in nodes),
    )
    return analysis


# ---------------------------------------------------------------------------------------------
# Running it from the command line (embedded Prefect, as `recipeflow run` does)


@dataclass
class AnalyzeResult:
    analysis: Analysis
    report: str  # where the HTML report was written


def default_report_path(recipe: Recipe) -> str:
    return os.path.abspath(f"analyze-{recipe.name}.html")


def _check_report_path(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        raise AnalyzeError(f"--report {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise AnalyzeError(f"--report {path}: cannot write in {folder}")


def analyze_recipe(
    path: str,
    overrides: Sequence[str] = (),
    *,
    sample: int = DEFAULT_SAMPLE,
    report: str | None = None,
    progress: bool = True,
    base_dir: str | None = None,
) -> AnalyzeResult:
    """Analyse the recipe at ``path`` in one Prefect flow run; write the HTML report."""
    if sample < 0:
        raise AnalyzeError(f"--sample must be 0 (all documents) or more, got {sample}")
    recipe = load_recipe(path, overrides)
    base_dir = base_dir or os.getcwd()
    check_inputs(with_absolute_paths(recipe, base_dir))
    report = os.path.abspath(report) if report else default_report_path(recipe)
    _check_report_path(report)
    configured = analyze_flow.with_options(
        task_runner=task_runner(recipe.run), flow_run_name=f"analyze {recipe.name}"
    )
    with prefect_api():
        analysis = configured(
            recipe_data=recipe.resolved(), recipe_source=recipe.source, base_dir=base_dir,
            sample=sample, progress=progress,
        )
    with open(report, "w", encoding="utf-8") as f:
        f.write(analyze_report.render_html(analysis))
    return AnalyzeResult(analysis, report)
